"""Where the tests find their genomic files: the repository's own ``data/`` folder (see data/README.md)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"

# Every file under data/ that a test opens; tests/unit/test_standalone.py checks that each one is present.
NEEDED = (
    "reads/htsnexus_test_NA12878.bam",
    "reads/htsnexus_test_NA12878.bam.bai",
    "reads/htsnexus_test_NA12878.cram",
    "reads/htsnexus_test_NA12878.cram.crai",
    "variants/HG02102.vcf.gz",
    "variants/HG02102.vcf.gz.tbi",
    "variants/NA18537.vcf.gz",
    "variants/NA18537.vcf.gz.tbi",
    "variants/NA20787.vcf.gz",
    "variants/test.vcf.gz",
    "variants/multisample_1.vcf.gz",
    "variants/sample1-bcbio-cancer.vcf.gz",
    "variants/sample1-bcbio-cancer.vcf.gz.tbi",
    "variants/sample1-bcbio-cancer.bcf",
    "variants/sample1-bcbio-cancer.bcf.csi",
    "variants/spec-v4.3.vcf.gz",
    "variants/spec-v4.3.bcf",
    "variants/spec-v4.3.bcf.csi",
    "crypt4gh/alice.pub",
    "crypt4gh/alice.sec",
    "crypt4gh/bob.sec",
    "crypt4gh/sample1-bcbio-cancer.vcf.gz.c4gh",
)
