"""Variant files read for the index: per-allele rows, counts and carriers, checked against pysam's own reading."""

from __future__ import annotations

import gzip
from pathlib import Path

import pysam
import pytest

from genomebus.infra.discovery.index import copy_text, filtering_terms, sample_rows
from genomebus.infra.discovery.vcf import VariantFileError, VariantFileReader, header_assembly, parse_genotype
from genomebus.schemas.reception import DatasetDescription
from tests.data import DATA
from tests.integration.discovery import pysam_rows

VARIANTS = DATA / "variants"
HEADER = ("##fileformat=VCFv4.3\n"
          '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
          '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">\n'
          '##INFO=<ID=END,Number=1,Type=Integer,Description="End">\n'
          '##INFO=<ID=SVLEN,Number=A,Type=Integer,Description="Length">\n'
          '##INFO=<ID=AC,Number=A,Type=Integer,Description="Allele count">\n'
          '##INFO=<ID=AN,Number=1,Type=Integer,Description="Allele number">\n'
          "##contig=<ID=chr1,length=1000000>\n##contig=<ID=chrX,length=1000000>\n")


def write_vcf(path: Path, samples: list[str], records: list[str], *, compress: str = "bgzf") -> Path:
    """A small VCF: plain text, gzip or BGZF (tabix-indexable)."""
    text = HEADER + "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO",
                               *(["FORMAT", *samples] if samples else [])]) + "\n"
    text += "".join(r.replace(" ", "\t") + "\n" for r in records)
    plain = path.with_suffix("") if path.suffix == ".gz" else path
    plain.write_text(text)
    if compress == "plain":
        return plain
    if compress == "gzip":
        path.write_bytes(gzip.compress(text.encode()))
        return path
    pysam.tabix_compress(str(plain), str(path), force=True)
    return path


def rows(path: Path, offset: int = 0) -> list[tuple]:
    return [tuple(r) for r in VariantFileReader(path, sample_offset=offset).rows()]


@pytest.mark.parametrize("name", ["spec-v4.3.vcf.gz", "spec-v4.3.bcf", "HG02102.vcf.gz", "NA18537.vcf.gz",
                                  "test.vcf.gz", "multisample_1.vcf.gz", "sample1-bcbio-cancer.vcf.gz",
                                  "sample1-bcbio-cancer.bcf"])
def test_rows_agree_with_pysam_records(name: str) -> None:
    assert rows(VARIANTS / name, offset=5) == pysam_rows(VARIANTS / name, offset=5)


def test_multi_allelic_sites_are_split_with_their_own_counts_and_carriers() -> None:
    by_allele = {(r[1], r[4]): r for r in rows(VARIANTS / "spec-v4.3.vcf.gz")}
    # 20 1110696 A G,T  1|2 2|1 2/2: each sample carries T, two carry G
    assert by_allele[(1110695, "G")][6:] == (2, 6, 2, [0, 1])
    assert by_allele[(1110695, "T")][6:] == (4, 6, 3, [0, 1, 2])
    # 20 1234567 GTC G,GTCT  0/1 0/2 1/1: a deletion and an insertion, 0-based half-open over the REF
    assert by_allele[(1234566, "G")][:8] == ("20", 1234566, 1234569, "GTC", "G", "DEL", 3, 6)
    assert by_allele[(1234566, "GTCT")][:9] == ("20", 1234566, 1234569, "GTC", "GTCT", "INS", 1, 6, 1)
    assert (1230236, ".") not in by_allele  # ALT "." is no variant
    assert len(by_allele) == 6


def test_vcf_and_bcf_of_the_same_calls_read_the_same() -> None:
    assert rows(VARIANTS / "spec-v4.3.vcf.gz") == rows(VARIANTS / "spec-v4.3.bcf")
    assert rows(VARIANTS / "sample1-bcbio-cancer.vcf.gz") == rows(VARIANTS / "sample1-bcbio-cancer.bcf")


@pytest.mark.parametrize(("gt", "parsed"), [
    ("0/1", (2, ((1, 1),))), ("1|1", (2, ((1, 2),))), ("0|0", (2, ())), ("./.", (0, ())), (".", (0, ())),
    ("./1", (1, ((1, 1),))), ("1", (1, ((1, 1),))), ("0", (1, ())), ("0/1/2", (3, ((1, 1), (2, 1)))),
    ("2/2/2/1", (4, ((1, 1), (2, 3)))), ("|0/1", (2, ((1, 1),))), ("1|.", (1, ((1, 1),))),
])
def test_genotypes_haploid_polyploid_missing_phased(gt: str, parsed: tuple) -> None:
    assert parse_genotype(gt) == parsed


def test_ploidy_missing_calls_and_formats_beyond_gt(tmp_path: Path) -> None:
    path = write_vcf(tmp_path / "calls.vcf.gz", ["A", "B", "C", "D"], [
        "chrX 100 . C T . PASS . GT:DP 1:9 0:3 ./.:0 0/1/1:12",  # haploid, haploid, missing, triploid
        "chrX 200 . G A . PASS . GT 0|1 .|1 1/1 0/0",
    ])
    assert rows(path, offset=10) == [
        ("X", 99, 100, "C", "T", "SNP", 3, 5, 2, [10, 13]),
        ("X", 199, 200, "G", "A", "SNP", 4, 7, 3, [10, 11, 12]),
    ]


def test_spanning_deletions_and_reference_blocks_are_no_variants(tmp_path: Path) -> None:
    path = write_vcf(tmp_path / "g.vcf.gz", ["A", "B"], [
        "chr1 100 . A G,* . PASS . GT 1/2 2/2",
        "chr1 101 . C <NON_REF> . PASS END=150 GT 0/0 0/0",
        "chr1 200 . T *,<NON_REF> . PASS . GT 0/1 0/0",
        "chr1 300 . G <*> . PASS END=310 GT 0/0 0/0",
    ])
    assert rows(path) == [("1", 99, 100, "A", "G", "SNP", 1, 4, 1, [0])]


def test_symbolic_alleles_end_at_info_end_or_svlen(tmp_path: Path) -> None:
    path = write_vcf(tmp_path / "sv.vcf.gz", ["A"], [
        "chr1 1000 . N <DEL> . PASS END=1500 GT 0/1",
        "chr1 2000 . N <DUP:TANDEM>,<INV> . PASS SVLEN=300,-40 GT 1/2",
        "chr1 3000 . G G]chr1:5000] . PASS . GT 0/1",
        "chr1 4000 . N <CNV> . PASS . GT 0/1",
        "chr1 5000 . T <INS:ME:ALU> . PASS SVLEN=244 GT 0/1",  # an insertion spans no reference bases
    ])
    assert [r[:6] for r in rows(path)] == [
        ("1", 999, 1500, "N", "<DEL>", "DEL"),  # VCF END (1-based, inclusive) is the 0-based exclusive end
        ("1", 1999, 2300, "N", "<DUP:TANDEM>", "DUP"),
        ("1", 1999, 2040, "N", "<INV>", "INV"),
        ("1", 2999, 3000, "G", "G]chr1:5000]", "BND"),
        ("1", 3999, 4000, "N", "<CNV>", "CNV"),
        ("1", 4999, 5000, "T", "<INS:ME:ALU>", "INS"),
    ]


def test_without_genotypes_info_counts_are_used(tmp_path: Path) -> None:
    path = write_vcf(tmp_path / "sites.vcf.gz", [], [
        "chr1 100 . A G,T . PASS AC=3,1;AN=10",
        "chr1 200 . A C . PASS .",
        "chr1 300 . A C . PASS AC=.;AN=8",
    ])
    assert [r[6:] for r in rows(path)] == [(3, 10, 0, []), (1, 10, 0, []), (0, 0, 0, []), (0, 8, 0, [])]


def test_samples_without_gt_count_as_no_calls(tmp_path: Path) -> None:
    path = write_vcf(tmp_path / "dp.vcf.gz", ["A"], ["chr1 100 . A G . PASS AC=1;AN=2 DP 7"])
    assert rows(path)[0][6:] == (1, 2, 0, [])


def test_the_same_allele_twice_in_a_file_is_one_row(tmp_path: Path) -> None:
    path = write_vcf(tmp_path / "dup.vcf.gz", ["A", "B"], [
        "chr1 100 . A G . PASS . GT 0/1 0/0",
        "chr1 100 . A G,T . PASS . GT 0/0 1/2",
        "chr1 101 . A G . PASS . GT 0/1 0/0",
    ])
    assert rows(path) == [
        ("1", 99, 100, "A", "G", "SNP", 2, 8, 2, [0, 1]),
        ("1", 99, 100, "A", "T", "SNP", 1, 4, 1, [1]),
        ("1", 100, 101, "A", "G", "SNP", 1, 4, 1, [0]),
    ]


@pytest.mark.parametrize("compress", ["plain", "gzip", "bgzf"])
def test_plain_gzip_and_bgzf_text_read_alike(tmp_path: Path, compress: str) -> None:
    path = write_vcf(tmp_path / "x.vcf.gz", ["A"], ["chr1 100 . a g . PASS . GT 0/1"], compress=compress)
    reader = VariantFileReader(path)
    assert reader.header.samples == ("A",)
    assert list(reader.rows()) == [("1", 99, 100, "A", "G", "SNP", 1, 2, 1, [0])]


def test_batches_never_split_a_site_and_keep_every_row(tmp_path: Path) -> None:
    records = [f"chr1 {100 + i // 3} . A {'CGT'[i % 3]} . PASS . GT 0/1" for i in range(30)]
    path = write_vcf(tmp_path / "b.vcf.gz", ["A"], records)
    batches = list(VariantFileReader(path).batches(size=4))
    assert sum(len(b) for b in batches) == 30
    assert all(len({r[1] for r in b}) * 3 == len(b) for b in batches)
    assert [r for b in batches for r in b] == rows(path)


@pytest.mark.parametrize(("lines", "assembly"), [
    (["##assembly=GRCh38.p14", "##contig=<ID=1,assembly=b37>"], "GRCh38.p14"),
    (["##contig=<ID=1,length=249250621,assembly=b37>"], "b37"),
    (["##reference=GRCh38"], "GRCh38"),
    (["##reference=file:///refs/human_g1k_v37_hs37d5.fasta"], "hs37d5"),
    (["##reference=file:///seq/references/1000GenomesPilot-NCBI36.fasta"], "NCBI36"),
    (["##reference=file:///refs/genome.fa"], None),
    ([], None),
])
def test_the_header_names_the_assembly(lines: list[str], assembly: str | None) -> None:
    assert header_assembly(lines) == assembly


def test_files_that_are_not_variant_files_are_refused_with_a_code(tmp_path: Path) -> None:
    junk = tmp_path / "junk.vcf"
    junk.write_text("hello\nworld\n")
    with pytest.raises(VariantFileError) as refused:
        VariantFileReader(junk)
    assert refused.value.code == "invalid_header"
    broken = write_vcf(tmp_path / "broken.vcf", ["A"], ["chr1 100 . A G . PASS . GT 0/1 0/1"], compress="plain")
    with pytest.raises(VariantFileError) as refused:
        list(VariantFileReader(broken).rows())
    assert refused.value.code == "unparseable_record"
    wrong = write_vcf(tmp_path / "wrong.vcf", ["A"], ["chr1 100 . A G . PASS . GT 0/3"], compress="plain")
    with pytest.raises(VariantFileError) as refused:
        list(VariantFileReader(wrong).rows())
    assert refused.value.code == "invalid_genotype"


def test_copy_text_is_what_postgres_reads() -> None:
    assert copy_text([("1", 99, 100, "A", "G", "SNP", 1, 2, 1, [0, 7]), ("X", 5, 6, "C", "<DEL>", "DEL", 0, 0, 0, [])]) \
        == b"1\t99\t100\tA\tG\tSNP\t1\t2\t1\t{0,7}\nX\t5\t6\tC\t<DEL>\tDEL\t0\t0\t0\t{}\n"
    shared = [1, 2]  # one list for every row with the same calls: written the same each time
    assert copy_text([("1", 1, 2, "A", "G", "SNP", 1, 2, 2, shared), ("1", 3, 4, "A", "T", "SNP", 1, 2, 2, shared),
                      ("1", 5, 6, "A", "C", "SNP", 1, 2, 1, [9])]).decode().split("\n")[:3] == [
        "1\t1\t2\tA\tG\tSNP\t1\t2\t2\t{1,2}", "1\t3\t4\tA\tT\tSNP\t1\t2\t2\t{1,2}", "1\t5\t6\tA\tC\tSNP\t1\t2\t1\t{9}"]
    assert copy_text([("1", 1, 2, "A", "G]chr\\1:5]", "BND", 0, 0, 0, [])]) == \
        b"1\t1\t2\tA\tG]chr\\\\1:5]\tBND\t0\t0\t0\t{}\n"  # a backslash is escaped for COPY


DESCRIPTION = DatasetDescription(
    title="t", data_use=("DUO:0000042",), keywords=("Rare", "rare "),
    individuals=({"id": "P1", "sex": "female", "phenotypes": [{"id": "HP:0001250", "label": "Seizure"}]},
                 {"id": "P2", "sex": "male", "diseases": [{"id": "MONDO:0005148"}]}),
    biosamples=({"id": "BS2", "individual_id": "P2", "sample_type": {"id": "UBERON:0000178", "label": "blood"}},))


def test_vcf_columns_map_to_biosamples_then_individuals() -> None:
    assert sample_rows(7, [("F1", "BS2"), ("F1", "P1"), ("F2", "NA1")], DESCRIPTION) == [
        (7, 0, "F1", "BS2", "P2", "BS2"), (7, 1, "F1", "P1", "P1", None), (7, 2, "F2", "NA1", None, None)]


def test_filtering_terms_hold_what_the_description_says() -> None:
    assert sorted(filtering_terms(DESCRIPTION)) == sorted([
        ("NCIT:C16576", "female", "ontology", "individuals"), ("NCIT:C20197", "male", "ontology", "individuals"),
        ("HP:0001250", "Seizure", "ontology", "individuals"), ("MONDO:0005148", None, "ontology", "individuals"),
        ("UBERON:0000178", "blood", "ontology", "biosamples"),
        ("keyword:rare", "datasets described with keyword 'Rare'", "custom", "datasets")])
