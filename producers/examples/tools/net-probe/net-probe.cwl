cwlVersion: v1.2
class: CommandLineTool
label: Try to reach the network
baseCommand: [python, /tool/net_probe.py]
inputs:
  name: {type: string, default: example.org, inputBinding: {position: 1}}
  host: {type: string, default: 127.0.0.1, inputBinding: {position: 2}}
  port: {type: int, default: 80, inputBinding: {position: 3}}
outputs: []
