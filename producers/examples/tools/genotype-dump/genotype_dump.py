"""Copies a VCF's records with every sample's genotype (GT only) to an uncompressed VCF."""

import sys

import pysam

with pysam.VariantFile(sys.argv[1]) as source:
    header = source.header.copy()
    with pysam.VariantFile(sys.argv[2], "w", header=header) as target:
        for record in source:
            target.write(record)
