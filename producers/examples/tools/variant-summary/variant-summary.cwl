cwlVersion: v1.2
class: CommandLineTool
label: Variant counts per chromosome and type
doc: |
  Counts the variants of a VCF or BCF per chromosome and variant type and writes a TSV table
  (chrom, variant_type, count). Runs in the node's python-pysam runtime; its script is the
  version's file variant_summary.py, staged at /tool.
baseCommand: [python, /tool/variant_summary.py]
inputs:
  variants:
    type: File
    inputBinding: {position: 1}
  output_name:
    type: string
    default: summary.tsv
    inputBinding: {position: 2}
outputs:
  summary:
    type: File
    outputBinding: {glob: $(inputs.output_name)}
