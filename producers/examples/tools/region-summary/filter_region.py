"""Copies the records of a VCF/BCF that overlap a region (chrom:start-end, 1-based, inclusive) to a VCF named
after the input (``HG02102.vcf.gz`` → ``HG02102.vcf``) in the working directory."""

import sys
from pathlib import Path

import pysam


def main(source: str, region: str) -> None:
    target = Path(source).name.split(".")[0] + ".vcf"
    chrom, _, span = region.partition(":")
    start, _, end = span.replace(",", "").partition("-")
    first, last = int(start or 1), int(end or 2**31)
    with pysam.VariantFile(source) as vcf, pysam.VariantFile(target, "w", header=vcf.header) as out:
        for record in vcf:  # no index is staged: read it through, the region's records kept
            if record.chrom == chrom and record.pos <= last and record.stop >= first:
                out.write(record)


if __name__ == "__main__":
    main(*sys.argv[1:3])
