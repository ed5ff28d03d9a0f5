cwlVersion: v1.2
class: Workflow
label: Variant counts of a region, per VCF
doc: |
  Two steps, each VCF on its own (scattered): keep the records of a region (pysam), then count them
  per chromosome and variant type into a TSV table (chrom, variant_type, count). Aggregate counts
  only, nothing per sample. Runs in the node's python-pysam runtime; its scripts are at /tool.
requirements:
  ScatterFeatureRequirement: {}
inputs:
  variants: File[]
  region: string
outputs:
  tables:
    type: File[]
    outputSource: summarise/table
steps:
  filter:
    scatter: vcf
    in: {vcf: variants, region: region}
    out: [records]
    run:
      class: CommandLineTool
      baseCommand: [python, /tool/filter_region.py]
      inputs:
        vcf: {type: File, inputBinding: {position: 1}}
        region: {type: string, inputBinding: {position: 2}}
      outputs:
        records: {type: File, outputBinding: {glob: "*.vcf"}}
  summarise:
    scatter: vcf
    in: {vcf: filter/records}
    out: [table]
    run:
      class: CommandLineTool
      baseCommand: [python, /tool/variant_summary.py]
      inputs:
        vcf: {type: File, inputBinding: {position: 1}}
      arguments:
        - position: 2
          valueFrom: $(inputs.vcf.nameroot).summary.tsv
      outputs:
        table: {type: File, outputBinding: {glob: "*.summary.tsv"}}
