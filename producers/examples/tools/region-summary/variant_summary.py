"""Counts per chromosome and variant type from a VCF/BCF, written as TSV: chrom, variant_type, count."""

import collections
import sys

import pysam


def kind(ref: str, alt: str) -> str:
    if alt.startswith("<") or "[" in alt or "]" in alt or alt in ("*", "."):
        return "other"
    if len(ref) == len(alt):
        return "SNV" if len(ref) == 1 else "MNV"
    return "INS" if len(alt) > len(ref) else "DEL"


def main(source: str, target: str) -> None:
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    with pysam.VariantFile(source) as vcf:
        for record in vcf:
            for alt in record.alts or ():
                counts[record.chrom, kind(record.ref, alt)] += 1
    with open(target, "w") as out:
        out.write("chrom\tvariant_type\tcount\n")
        for (chrom, variant_type), n in sorted(counts.items()):
            out.write(f"{chrom}\t{variant_type}\t{n}\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
