"""QC decisions on real genomic files, and on copies of them broken the ways uploads break."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pysam
import pytest

from genomebus.consumers.qc_checks import BGZF_EOF, MAX_REASONS_PER_CODE, QcResult, check_file, file_digests
from tests.data import DATA

BAM = "reads/htsnexus_test_NA12878.bam"
CRAM = "reads/htsnexus_test_NA12878.cram"
HG02102 = "variants/HG02102.vcf.gz"
SPEC_VCF = "variants/spec-v4.3.vcf.gz"
SPEC_BCF = "variants/spec-v4.3.bcf"


@pytest.fixture(scope="module")
def data() -> Path:
    if not (DATA / BAM).exists():
        pytest.fail(f"the test data is missing: expected {DATA / BAM} (data/ in the repository)")
    return DATA


def copy(data: Path, name: str, into: Path, *, with_index: bool = False) -> Path:
    target = into / Path(name).name
    shutil.copyfile(data / name, target)
    if with_index:
        for suffix in (".bai", ".crai", ".tbi", ".csi"):
            if (data / (name + suffix)).exists():
                shutil.copyfile(data / (name + suffix), into / (target.name + suffix))
    return target


def check(path: Path, declared: str, **kwargs: object) -> QcResult:
    """``check_file`` with the checksums the file really has, as an honest uploader declares them."""
    sha256, md5 = file_digests(path)
    return check_file(path, declared, sha256, md5, **kwargs)  # type: ignore[arg-type]


def codes(result: QcResult) -> list[str]:
    return [r.code for r in result.reasons]


def vcf_lines(data: Path, name: str = SPEC_VCF) -> tuple[list[str], list[str]]:
    """(header lines, record lines) of a bgzipped VCF from the test data."""
    with gzip.open(data / name, "rt") as fh:
        lines = fh.read().splitlines(keepends=True)
    return [line for line in lines if line.startswith("#")], [line for line in lines if not line.startswith("#")]


def write_vcf(path: Path, lines: list[str], *, bgzip: bool = False) -> Path:
    if not bgzip:
        path.write_text("".join(lines))
        return path
    plain = path.with_suffix(".plain")
    plain.write_text("".join(lines))
    pysam.tabix_compress(str(plain), str(path), force=True)
    plain.unlink()
    return path


# -- every upload -------------------------------------------------------------------------------------------------


def test_an_empty_file_fails_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "nothing.bam"
    path.touch()

    result = check(path, "BAM")

    assert not result.passed
    assert codes(result) == ["empty_file"]
    assert result.format is None


def test_checksums_that_differ_fail_with_one_reason_each(data: Path, tmp_path: Path) -> None:
    path = copy(data, SPEC_VCF, tmp_path)
    sha256, md5 = file_digests(path)

    both = check_file(path, "VCF", "0" * 64, "0" * 32)
    only_md5 = check_file(path, "VCF", sha256, "f" * 32)

    assert codes(both) == ["checksum_mismatch", "checksum_mismatch"]
    assert "sha256" in both.reasons[0].message and sha256 in both.reasons[0].message
    assert "md5" in both.reasons[1].message and md5 in both.reasons[1].message
    assert codes(only_md5) == ["checksum_mismatch"] and "md5" in only_md5.reasons[0].message
    assert both.index_path is None and not (tmp_path / (path.name + ".tbi")).exists()


def test_content_in_no_known_format_is_unknown(data: Path, tmp_path: Path) -> None:
    path = copy(data, BAM, tmp_path)
    with path.open("r+b") as fh:
        fh.write(b"JUNKJUNK")

    result = check(path, "BAM")

    assert codes(result) == ["unknown_format"]
    assert "4a554e4b" in result.reasons[0].message  # the bytes it found, for the submitter


def test_a_bam_declared_as_vcf_is_a_format_mismatch(data: Path, tmp_path: Path) -> None:
    path = copy(data, BAM, tmp_path)

    result = check(path, "VCF")

    assert codes(result) == ["format_mismatch"]
    assert result.format == "BAM"
    assert "declared VCF" in result.reasons[0].message


def test_sam_text_declared_as_fastq_is_a_format_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "reads.fastq"
    path.write_text("@HD\tVN:1.6\tSO:unsorted\n@SQ\tSN:1\tLN:100\n")

    result = check(path, "FASTQ")

    assert codes(result) == ["format_mismatch"]
    assert result.format == "SAM"


def test_a_corrupt_download_lists_every_cheap_reason(data: Path, tmp_path: Path) -> None:
    path = copy(data, BAM, tmp_path)
    sha256, md5 = file_digests(path)
    with path.open("r+b") as fh:
        fh.truncate(path.stat().st_size // 2)

    result = check_file(path, "BAM", sha256, md5)

    assert {"checksum_mismatch", "truncated", "unparseable_record"} <= set(codes(result))


# -- BAM ----------------------------------------------------------------------------------------------------------


def test_the_na12878_bam_passes_with_flagstat_metrics(data: Path, tmp_path: Path) -> None:
    path = copy(data, BAM, tmp_path, with_index=True)

    result = check(path, "BAM")

    assert result.passed, result.reasons
    m = result.metrics
    # the same numbers `samtools flagstat` prints for this file
    assert (m["reads"], m["mapped"], m["duplicates"], m["secondary"], m["supplementary"]) == (39918, 27214, 2645, 0, 0)
    assert m["mapped_pct"] == 68.17
    assert m["sort_order"] == "coordinate" and m["coordinate_sorted"] is True
    assert m["references"] == 86 and m["read_groups"] == ["SRR098401"]
    assert m["index"] == "present" and result.index_path is None


def test_a_bam_without_index_gets_one_that_answers_region_queries(data: Path, tmp_path: Path) -> None:
    path = copy(data, BAM, tmp_path)

    result = check(path, "BAM")

    assert result.passed and result.metrics["index"] == "built"
    assert result.index_path is not None and result.index_path.exists()
    with pysam.AlignmentFile(str(path), index_filename=str(result.index_path)) as built, \
            pysam.AlignmentFile(str(data / BAM), index_filename=str(data / (BAM + ".bai"))) as shipped:
        assert built.mapped == 27214
        assert built.count("11", 5_000_000, 5_100_000) == shipped.count("11", 5_000_000, 5_100_000) > 0


def test_build_index_false_leaves_the_directory_alone(data: Path, tmp_path: Path) -> None:
    path = copy(data, BAM, tmp_path)

    result = check(path, "BAM", build_index=False)

    assert result.passed and result.index_path is None and result.metrics["index"] == "missing"
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_a_bam_cut_in_the_middle_is_truncated(data: Path, tmp_path: Path) -> None:
    path = copy(data, BAM, tmp_path)
    with path.open("r+b") as fh:
        fh.truncate(1_300_000)

    result = check(path, "BAM")

    assert codes(result) == ["truncated", "unparseable_record"]
    assert result.reasons[1].message.startswith("record 16806 ")
    assert result.index_path is None


def test_a_bam_missing_only_its_eof_block_is_truncated(data: Path, tmp_path: Path) -> None:
    path = copy(data, BAM, tmp_path)
    with path.open("r+b") as fh:
        fh.truncate(path.stat().st_size - len(BGZF_EOF))

    result = check(path, "BAM")

    assert codes(result) == ["truncated"]
    assert result.metrics["reads"] == 39918


def reordered_bam(data: Path, target: Path, *, sort_order: str, reverse: bool) -> Path:
    with pysam.AlignmentFile(str(data / BAM)) as source:
        header = source.header.to_dict()
        header["HD"]["SO"] = sort_order
        reads = [r.to_dict() for _, r in zip(range(200), source.fetch(until_eof=True), strict=False)]
    with pysam.AlignmentFile(str(target), "wb", header=header) as out:
        for read in reversed(reads) if reverse else reads:
            out.write(pysam.AlignedSegment.from_dict(read, out.header))
    return target


def test_a_bam_claiming_coordinate_order_but_out_of_order_is_unsorted(data: Path, tmp_path: Path) -> None:
    path = reordered_bam(data, tmp_path / "reversed.bam", sort_order="coordinate", reverse=True)

    result = check(path, "BAM")

    assert codes(result) == ["unsorted"]
    assert "record 2 " in result.reasons[0].message
    assert result.index_path is None


def test_a_queryname_sorted_bam_passes_without_an_index(data: Path, tmp_path: Path) -> None:
    path = reordered_bam(data, tmp_path / "byname.bam", sort_order="queryname", reverse=True)

    result = check(path, "BAM")

    assert result.passed
    assert result.metrics["sort_order"] == "queryname" and result.metrics["index"] == "not_possible"
    assert [w.code for w in result.warnings] == ["not_coordinate_sorted"]
    assert result.index_path is None


# -- CRAM ---------------------------------------------------------------------------------------------------------


def test_the_cram_passes_without_its_reference(data: Path, tmp_path: Path) -> None:
    path = copy(data, CRAM, tmp_path, with_index=True)

    result = check(path, "CRAM")

    assert result.passed, result.reasons
    assert result.metrics["reference_available"] is False
    assert result.metrics["reference_md5s"] == 86
    assert result.metrics["reads"] == 39918 and result.metrics["mapped"] == 27214
    assert [w.code for w in result.warnings] == ["reference_unavailable"]


def test_a_cram_without_index_gets_a_crai(data: Path, tmp_path: Path) -> None:
    path = copy(data, CRAM, tmp_path)

    result = check(path, "CRAM")

    assert result.passed and result.index_path == tmp_path / (path.name + ".crai")
    assert result.index_path.read_bytes() == (data / (CRAM + ".crai")).read_bytes()


def test_a_cram_without_its_eof_container_is_truncated(data: Path, tmp_path: Path) -> None:
    path = copy(data, CRAM, tmp_path)
    with path.open("r+b") as fh:
        fh.truncate(1_000_000)

    result = check(path, "CRAM")

    assert codes(result)[0] == "truncated"
    assert set(codes(result)) <= {"truncated", "unparseable_record"}


# -- VCF / BCF ----------------------------------------------------------------------------------------------------


def test_the_hg02102_vcf_passes_with_variant_metrics(data: Path, tmp_path: Path) -> None:
    path = copy(data, HG02102, tmp_path, with_index=True)

    result = check(path, "VCF")

    assert result.passed, result.reasons
    m = result.metrics
    assert m["records"] == 60694  # as the data README says
    assert m["snv"] + m["indel"] + m["other"] == m["records"]
    assert 1.9 < m["ti_tv"] < 2.2  # whole-genome germline SNVs
    assert m["ti"] + m["tv"] == m["snv"]  # all biallelic here
    assert m["samples"] == ["HG02102"] and m["contigs"] == 86
    genotypes = m["genotypes"]["HG02102"]
    assert sum(genotypes.values()) == m["records"] and genotypes["het"] > genotypes["hom_alt"] > 0
    assert m["index"] == "present"


def test_a_bgzipped_vcf_without_index_gets_a_tbi(data: Path, tmp_path: Path) -> None:
    path = copy(data, SPEC_VCF, tmp_path)

    result = check(path, "VCF")

    assert result.passed and result.index_path == tmp_path / (path.name + ".tbi")
    with pysam.VariantFile(str(path), index_filename=str(result.index_path)) as vcf:
        assert [r.pos for r in vcf.fetch("20", 1_000_000, 1_300_000)] == [1110696, 1230237, 1234567]


def test_the_bcf_passes_and_gets_a_csi(data: Path, tmp_path: Path) -> None:
    path = copy(data, SPEC_BCF, tmp_path)

    result = check(path, "BCF")

    assert result.passed, result.reasons
    assert result.metrics["records"] == 5 and result.metrics["multiallelic"] == 2
    assert result.metrics["samples"] == ["NA00001", "NA00002", "NA00003"]
    assert result.metrics["genotypes"]["NA00003"] == {"het": 0, "hom_alt": 3, "hom_ref": 2, "missing": 0}
    assert result.index_path == tmp_path / (path.name + ".csi")
    with pysam.VariantFile(str(path), index_filename=str(result.index_path)) as bcf:
        assert [r.pos for r in bcf.fetch("20", 1_000_000, 1_200_000)] == [1110696]


def test_a_plain_text_vcf_passes_with_a_warning_and_no_index(data: Path, tmp_path: Path) -> None:
    header, records = vcf_lines(data)
    path = write_vcf(tmp_path / "plain.vcf", header + records)

    result = check(path, "VCF")

    assert result.passed
    assert [w.code for w in result.warnings] == ["not_bgzipped"]
    assert result.metrics["index"] == "not_possible" and result.index_path is None


@pytest.mark.parametrize("missing", ["##fileformat", "#CHROM"])
def test_a_vcf_header_without_a_required_line_is_invalid(data: Path, tmp_path: Path, missing: str) -> None:
    header, records = vcf_lines(data)
    path = write_vcf(tmp_path / "broken.vcf.gz", [h for h in header if not h.startswith(missing)] + records,
                     bgzip=True)

    result = check(path, "VCF")

    assert not result.passed
    assert set(codes(result)) == {"invalid_header"}


def test_swapped_records_are_unsorted_with_the_offending_position(data: Path, tmp_path: Path) -> None:
    header, records = vcf_lines(data)
    records[1], records[2] = records[2], records[1]
    path = write_vcf(tmp_path / "swapped.vcf.gz", header + records, bgzip=True)

    result = check(path, "VCF")

    assert codes(result) == ["unsorted"]
    assert "record 3 (20:17330)" in result.reasons[0].message
    assert result.index_path is None and not (tmp_path / "swapped.vcf.gz.tbi").exists()


def test_a_contig_that_comes_back_is_unsorted(data: Path, tmp_path: Path) -> None:
    header, records = vcf_lines(data)
    contig = '##contig=<ID=21,length=48129895>\n'
    other = records[0].replace("20\t", "21\t", 1)
    path = write_vcf(tmp_path / "blocks.vcf", [*header[:5], contig, *header[5:], records[0], other, *records[1:]])

    result = check(path, "VCF")

    assert codes(result) == ["unsorted"]
    assert "contig 20 starts again" in result.reasons[0].message


def test_contigs_out_of_header_order_or_undeclared_only_warn(data: Path, tmp_path: Path) -> None:
    header, records = vcf_lines(data)
    contigs = ['##contig=<ID=19,length=59128983>\n']
    on_19 = records[0].replace("20\t", "19\t", 1)
    on_x = records[0].replace("20\t", "X\t", 1)
    path = write_vcf(tmp_path / "order.vcf.gz", [*header[:4], *contigs, *header[4:], *records, on_19, on_x],
                     bgzip=True)

    result = check(path, "VCF")

    assert result.passed, result.reasons
    assert [w.code for w in result.warnings] == ["contig_order", "undeclared_contig"]
    assert result.metrics["index"] == "built"


def test_a_gzip_but_not_bgzip_vcf_passes_unindexed(data: Path, tmp_path: Path) -> None:
    path = tmp_path / "gzip.vcf.gz"
    path.write_bytes(gzip.compress(gzip.decompress((data / SPEC_VCF).read_bytes())))

    result = check(path, "VCF")

    assert result.passed and result.metrics["compression"] == "gzip"
    assert [w.code for w in result.warnings] == ["not_bgzipped"] and result.index_path is None


@pytest.mark.parametrize(("bad_line", "expected"), [
    ("this is garbage\n", "1 columns"),
    ("20\t1000000\t.\tA\n", "4 columns"),
    ("20\tabc\t.\tA\tC\t50\tPASS\t.\tGT\t0|0\t0|1\t1|1\n", "POS 'abc'"),
    ("20\t1000000\t.\tA\tC\t50\tPASS\t.\tGT\t0|0\t0|1\t1|1\t0|0\n", "13 columns"),  # htslib accepts this one
    ("\n", "empty line"),
])
def test_a_record_that_does_not_parse_is_reported_with_its_number(data: Path, tmp_path: Path, bad_line: str,
                                                                  expected: str) -> None:
    header, records = vcf_lines(data)
    path = write_vcf(tmp_path / "bad.vcf.gz", header + records[:2] + [bad_line] + records[2:], bgzip=True)

    result = check(path, "VCF")

    assert codes(result) == ["unparseable_record"]
    assert result.reasons[0].message.startswith("record 3 ")
    assert expected in result.reasons[0].message


def test_every_bad_record_is_listed_up_to_a_limit(data: Path, tmp_path: Path) -> None:
    header, records = vcf_lines(data)
    garbage = [f"junk line {i}\n" for i in range(MAX_REASONS_PER_CODE + 5)]
    two_bad = write_vcf(tmp_path / "two.vcf", header + records[:1] + ["x\n"] + records[1:3] + ["y\n"] + records[3:])
    many_bad = write_vcf(tmp_path / "many.vcf", header + garbage + records)

    two = check(two_bad, "VCF")
    many = check(many_bad, "VCF")

    assert [r.message.split(" (")[0] for r in two.reasons] == ["record 2", "record 5"]
    assert codes(many) == ["unparseable_record"] * (MAX_REASONS_PER_CODE + 1)
    assert "5 more" in many.reasons[-1].message


def test_a_genotype_htslib_cannot_read_is_unparseable(data: Path, tmp_path: Path) -> None:
    header, records = vcf_lines(data)
    records[0] = records[0].replace("0|0:48", "x|y:48", 1)
    path = write_vcf(tmp_path / "gt.vcf", header + records)

    result = check(path, "VCF")

    assert codes(result) == ["unparseable_record"]
    assert result.reasons[0].message.startswith("record 1 could not be parsed")


@pytest.mark.parametrize(("field", "value"), [("REF", "XZ"), ("REF", "G-"), ("ALT", "Q!"), ("ALT", "A,<DEL")])
def test_an_invalid_allele_is_reported(data: Path, tmp_path: Path, field: str, value: str) -> None:
    header, records = vcf_lines(data)
    columns = records[0].split("\t")
    columns[3 if field == "REF" else 4] = value
    records[0] = "\t".join(columns)
    path = write_vcf(tmp_path / "allele.vcf.gz", header + records, bgzip=True)

    result = check(path, "VCF")

    assert codes(result) == ["invalid_allele"]
    assert field in result.reasons[0].message and "20:14370" in result.reasons[0].message


def test_symbolic_breakend_and_spanning_alleles_are_valid(data: Path, tmp_path: Path) -> None:
    header, records = vcf_lines(data)
    template = records[0].split("\t")
    alts = ["<DEL>", "G]17:198982]", "]13:123456]G", ".G", "G.", "*,A", "<*>"]
    extra = ["\t".join([template[0], str(14370 + i), ".", "G", alt, *template[5:]]) for i, alt in enumerate(alts, 1)]
    path = write_vcf(tmp_path / "symbolic.vcf", header + records[:1] + extra + records[1:])

    result = check(path, "VCF")

    assert result.passed, result.reasons
    assert result.metrics["records"] == 5 + len(alts)


def test_a_truncated_bgzipped_vcf_is_truncated(data: Path, tmp_path: Path) -> None:
    path = copy(data, HG02102, tmp_path)
    with path.open("r+b") as fh:
        fh.truncate(path.stat().st_size // 2)

    result = check(path, "VCF")

    assert codes(result)[0] == "truncated"
    assert set(codes(result)) <= {"truncated", "unparseable_record"}


# -- FASTQ --------------------------------------------------------------------------------------------------------

FASTQ = (
    "@r1 first\nACGTACGTAC\n+\nIIIIIIIIII\n"
    "@r2\nACGTNACG\n+r2\n#####III\n"
    "@r3\nAC\n+\n!!\n"
)


def test_a_fastq_passes_with_read_metrics(tmp_path: Path) -> None:
    plain = tmp_path / "reads.fastq"
    plain.write_text(FASTQ)
    compressed = tmp_path / "reads.fastq.gz"
    compressed.write_bytes(gzip.compress(FASTQ.encode()))

    results = [check(plain, "FASTQ"), check(compressed, "FASTQ")]

    for result in results:
        assert result.passed, result.reasons
        assert result.metrics["reads"] == 3 and result.metrics["bases"] == 20
        assert result.metrics["mean_length"] == 6.67
        assert result.metrics["quality_encoding"] == "phred33"
    assert results[1].metrics["compression"] == "gzip"


def test_phred64_qualities_are_recognised(tmp_path: Path) -> None:
    path = tmp_path / "old.fastq"
    path.write_text("@r1\nACGT\n+\nhhgB\n@r2\nACGT\n+\nhhhh\n")

    result = check(path, "FASTQ")

    assert result.passed and result.metrics["quality_encoding"] == "phred64"
    assert [w.code for w in result.warnings] == ["phred64_quality"]


@pytest.mark.parametrize(("text", "expected"), [
    (FASTQ.replace("#####III", "#####II"), "record 2: the sequence has 8 bases but the quality has 7"),
    (FASTQ + "@r4\nACGT\n", "record 4 is incomplete"),
    (FASTQ.replace("+r2", "-r2"), "record 2: expected '@name'"),
    (FASTQ.replace("+r2", "+r9"), "record 2: the '+' line names another read"),
])
def test_a_broken_fastq_record_is_invalid(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.fastq"
    path.write_text(text)

    result = check(path, "FASTQ")

    assert codes(result) == ["invalid_record"]
    assert result.reasons[0].message.startswith(expected)


def test_a_truncated_gzip_fastq_is_truncated(tmp_path: Path) -> None:
    path = tmp_path / "cut.fastq.gz"
    path.write_bytes(gzip.compress((FASTQ * 200).encode())[:-20])

    result = check(path, "FASTQ")

    assert "truncated" in codes(result)
