cwlVersion: v1.2
class: CommandLineTool
label: Per-sample genotypes of a VCF
baseCommand: [python, /tool/genotype_dump.py]
inputs:
  variants: {type: File, inputBinding: {position: 1}}
  output_name: {type: string, default: genotypes.vcf, inputBinding: {position: 2}}
outputs:
  genotypes: {type: File, outputBinding: {glob: $(inputs.output_name)}}
