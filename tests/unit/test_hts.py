"""htsget cuts: the blocks ``plan`` returns, fetched and concatenated, are a file htslib reads, with the region's records.

Each cut is checked the way a client uses it: the blocks are read from the stored file (or taken
from ``data``), written one after another, opened with pysam, and the records overlapping the
region are compared with pysam's ``fetch`` on the original, as a multiset, so a missing record and
a record sent twice both fail. CRAM is read without its reference (REF_PATH points nowhere, and only
name, flag, position and CIGAR are decoded), so nothing is ever downloaded.
"""

from __future__ import annotations

import asyncio
import io
import os
from collections import Counter
from pathlib import Path

import pysam
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genomebus.infra.hts import FORMATS, Block, HtsError, Query, Region, open_file, plan
from genomebus.infra.hts.indexes import reg2bins
from tests.data import DATA
from tests.htsget_records import overlaps

BAM = ("BAM", "reads/htsnexus_test_NA12878.bam", "reads/htsnexus_test_NA12878.bam.bai")
CRAM = ("CRAM", "reads/htsnexus_test_NA12878.cram", "reads/htsnexus_test_NA12878.cram.crai")
HG02102 = ("VCF", "variants/HG02102.vcf.gz", "variants/HG02102.vcf.gz.tbi")
BCBIO_VCF = ("VCF", "variants/sample1-bcbio-cancer.vcf.gz", "variants/sample1-bcbio-cancer.vcf.gz.tbi")
BCBIO_BCF = ("BCF", "variants/sample1-bcbio-cancer.bcf", "variants/sample1-bcbio-cancer.bcf.csi")
SPEC_BCF = ("BCF", "variants/spec-v4.3.bcf", "variants/spec-v4.3.bcf.csi")
FILES = (BAM, CRAM, HG02102, BCBIO_VCF, BCBIO_BCF, SPEC_BCF)

CRAM_FIELDS = b"required_fields=0x2f"  # QNAME, FLAG, RNAME, POS, CIGAR: no bases, so no reference


@pytest.fixture(autouse=True)
def _no_reference_download(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REF_PATH", str(tmp_path / "no-reference" / "%s"))
    monkeypatch.setenv("REF_CACHE", str(tmp_path / "no-reference-cache" / "%s"))


class LocalFile:
    """A stored file read by range, counting the bytes read (the gateway's ArchivedObject stands here)."""

    def __init__(self, path: Path) -> None:
        self.path, self.size, self.bytes_read = path, path.stat().st_size, 0

    async def read(self, start: int, end: int) -> bytes:
        with self.path.open("rb") as fh:
            fh.seek(start)
            data = fh.read(max(0, min(end, self.size) - start))
        self.bytes_read += len(data)
        return data


def run(coroutine):
    return asyncio.run(coroutine)


async def fetch(obj, blocks: list[Block]) -> bytes:
    """What a client gets: each block's bytes, in order."""
    return b"".join([b.data if b.data is not None else await obj.read(b.start, b.end) for b in blocks])


def cut(spec, query: Query, directory: Path, index: bool = True) -> tuple[Path, list[Block]]:
    fmt, path, index_path = spec
    obj = LocalFile(DATA / path)
    blocks = run(plan(obj, (DATA / index_path).read_bytes() if index else None, query))
    out = directory / f"cut-{len(list(directory.iterdir()))}{Path(path).suffix}"
    out.write_bytes(run(fetch(obj, blocks)))
    return out, blocks


def opened(fmt: str, path: Path):
    if fmt in FORMATS["reads"]:
        options = [CRAM_FIELDS] if fmt == "CRAM" else None
        return pysam.AlignmentFile(str(path), check_sq=False, format_options=options)
    return pysam.VariantFile(str(path))


def key(fmt: str, record) -> tuple:
    if fmt in FORMATS["reads"]:
        return (record.query_name, record.flag, record.reference_id, record.reference_start)
    return (record.contig, record.pos, record.ref, record.alts)


def expected(spec, contig: str, start: int | None, end: int | None) -> Counter:
    fmt, path, _ = spec
    with opened(fmt, DATA / path) as original:
        return Counter(key(fmt, r) for r in original.fetch(contig, start, end))


def found(spec, path: Path, contig: str, start: int | None, end: int | None) -> Counter:
    fmt = spec[0]
    lo, hi = start or 0, end if end is not None else 1 << 40
    with opened(fmt, path) as copy:
        records = copy.fetch(until_eof=True) if fmt in FORMATS["reads"] else copy.fetch()
        return Counter(key(fmt, r) for r in records if overlaps(fmt, r, contig, lo, hi))


def header_text(fmt: str, path: Path) -> str:
    with opened(fmt, path) as f:
        return str(f.header)


def all_records(fmt: str, path: Path) -> Counter:
    with opened(fmt, path) as f:
        return Counter(key(fmt, r) for r in (f.fetch(until_eof=True) if fmt in FORMATS["reads"] else f.fetch()))


# -- regions --------------------------------------------------------------------------------------------------------

REGIONS = [
    (BAM, "11", 5015000, 5050000),
    (BAM, "20", None, None),
    (BAM, "11", 4999900, 5000100),
    (CRAM, "11", 5015000, 5050000),
    (CRAM, "20", 0, None),
    (HG02102, "21", 20_000_000, 20_100_000),
    (HG02102, "21", None, 9_500_000),
    (BCBIO_VCF, "chrM", 180, 2_300),
    (BCBIO_VCF, "chr22", 152, 153),
    (BCBIO_BCF, "chrM", None, None),
    (BCBIO_BCF, "chr22", 100, None),
    (SPEC_BCF, "20", 14_000, 1_200_000),
]


@pytest.mark.parametrize(("spec", "contig", "start", "end"), REGIONS,
                         ids=[f"{s[0]}-{c}:{a}-{b}" for s, c, a, b in REGIONS])
@pytest.mark.parametrize("exact", [True, False], ids=["exact", "stored-only"])
def test_a_region_cut_has_the_records_fetch_finds_each_once(spec, contig, start, end, exact: bool, tmp_path: Path) -> None:
    path, blocks = cut(spec, Query(spec[0], regions=(Region(contig, start, end),), exact=exact), tmp_path)

    want = expected(spec, contig, start, end)
    assert want, "the region was chosen to hold records"
    assert found(spec, path, contig, start, end) == want
    assert header_text(spec[0], path) == header_text(spec[0], DATA / spec[1])
    klasses = [b.klass for b in blocks]
    assert klasses[0] == "header" and klasses == sorted(klasses, key=["header", "body"].index)
    assert exact or all(b.data is None for b in blocks)


def test_a_region_cut_reads_a_small_part_of_the_file() -> None:
    obj = LocalFile(DATA / BAM[1])
    run(plan(obj, (DATA / BAM[2]).read_bytes(), Query("BAM", regions=(Region("11", 5015000, 5016000),))))
    assert obj.bytes_read < obj.size // 10


def test_stored_ranges_never_overlap_and_follow_the_file_order(tmp_path: Path) -> None:
    regions = (Region("20", 0, 10**8), Region("11", 5015000, 5050000), Region("11", 5000000, 5020000), Region("*"))
    _, blocks = cut(BAM, Query("BAM", regions=regions), tmp_path)
    ranges = [(b.start, b.end) for b in blocks if b.data is None]
    assert ranges == sorted(ranges)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(ranges, ranges[1:], strict=False))


REFERENCES = {spec: run(open_file(LocalFile(DATA / spec[1]), None, spec[0])).header.contigs for spec in FILES}


@st.composite
def regions(draw):
    spec = draw(st.sampled_from(FILES))
    contig = draw(st.sampled_from([c for c in REFERENCES[spec] if c.length]))
    start = draw(st.none() | st.integers(0, contig.length + 1000))
    end = draw(st.none() | st.integers(start or 0, contig.length + 1000))
    return spec, contig.name, start, end


@settings(derandomize=True, max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(regions(), st.booleans())
def test_any_region_cut_has_the_records_fetch_finds_each_once(region, exact: bool) -> None:
    spec, contig, start, end = region
    with _scratch() as directory:
        path, blocks = cut(spec, Query(spec[0], regions=(Region(contig, start, end),), exact=exact), directory)
        if not exact:
            assert all(b.data is None for b in blocks)
        assert found(spec, path, contig, start, end) == expected(spec, contig, start, end)


class _scratch:
    """A temporary directory per hypothesis example (pytest's tmp_path is one per test)."""

    def __enter__(self) -> Path:
        import tempfile

        self._dir = tempfile.TemporaryDirectory(prefix="hts-")
        return Path(self._dir.name)

    def __exit__(self, *exc) -> None:
        self._dir.cleanup()


# -- header, whole file, unplaced reads, empty answers ---------------------------------------------------------------

@pytest.mark.parametrize("spec", FILES, ids=[s[1] for s in FILES])
@pytest.mark.parametrize("exact", [True, False], ids=["exact", "stored-only"])
def test_header_only_is_the_header(spec, exact: bool, tmp_path: Path) -> None:
    path, blocks = cut(spec, Query(spec[0], header_only=True, exact=exact), tmp_path)

    assert header_text(spec[0], path) == header_text(spec[0], DATA / spec[1])
    assert all(b.klass == "header" for b in blocks)
    if exact:
        assert not all_records(spec[0], path)
    else:
        assert all(b.data is None for b in blocks)


@pytest.mark.parametrize("spec", FILES, ids=[s[1] for s in FILES])
@pytest.mark.parametrize("exact", [True, False], ids=["exact", "stored-only"])
def test_the_whole_file_has_every_record_once(spec, exact: bool, tmp_path: Path) -> None:
    path, blocks = cut(spec, Query(spec[0], exact=exact), tmp_path, index=False)

    assert all_records(spec[0], path) == all_records(spec[0], DATA / spec[1])
    assert header_text(spec[0], path) == header_text(spec[0], DATA / spec[1])


@pytest.mark.parametrize("spec", [BAM, CRAM], ids=["BAM", "CRAM"])
def test_star_is_every_unplaced_unmapped_read_once(spec, tmp_path: Path) -> None:
    path, _ = cut(spec, Query(spec[0], regions=(Region("*"),)), tmp_path)

    unplaced = Counter(k for k in all_records(spec[0], path).elements() if k[2] == -1)
    original = Counter(k for k in all_records(spec[0], DATA / spec[1]).elements() if k[2] == -1)
    assert sum(original.values()) == 12475  # of the 12,704 unmapped reads, 229 are placed beside their mate
    assert unplaced == original


@pytest.mark.parametrize(("spec", "contig"), [(BAM, "11"), (CRAM, "11"), (HG02102, "21"), (BCBIO_BCF, "chr22")],
                         ids=["BAM", "CRAM", "VCF", "BCF"])
def test_a_start_past_the_reference_end_is_an_empty_file(spec, contig: str, tmp_path: Path) -> None:
    length = next(c.length for c in REFERENCES[spec] if c.name == contig)
    path, blocks = cut(spec, Query(spec[0], regions=(Region(contig, length + 5, length + 100),)), tmp_path)

    assert header_text(spec[0], path) == header_text(spec[0], DATA / spec[1])
    assert not all_records(spec[0], path)
    assert len(blocks) <= 3  # header (maybe split in two) and EOF


def test_a_reference_without_records_is_an_empty_file_not_an_error(tmp_path: Path) -> None:
    path, _ = cut(BAM, Query("BAM", regions=(Region("1", 0, 1000),)), tmp_path)
    assert not expected(BAM, "1", 0, 1000)
    assert not all_records("BAM", path)


def test_the_eof_marker_is_the_files_own_last_bytes(tmp_path: Path) -> None:
    for spec in (BAM, CRAM, BCBIO_VCF):
        _, blocks = cut(spec, Query(spec[0], regions=(Region(REFERENCES[spec][0].name, 0, 10),)), tmp_path)
        size = (DATA / spec[1]).stat().st_size
        assert blocks[-1].end == size and blocks[-1].data is None


# -- refusals --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "error"), [
    (Query("BAM", regions=(Region("11", 200, 100),)), "InvalidRange"),
    (Query("BAM", regions=(Region("no-such-contig"),)), "NotFound"),
    (Query("VCF", regions=(Region("chr1"),)), "NotFound"),
    (Query("SAM"), "UnsupportedFormat"),
    (Query("BAM", regions=(Region("", 1, 10),)), "InvalidInput"),
    (Query("BAM", regions=(Region("*", 0, 10),)), "InvalidInput"),
    (Query("VCF", regions=(Region("*"),)), "InvalidInput"),
    (Query("BAM", regions=()), "InvalidInput"),
    (Query("BAM", header_only=True, regions=(Region("11"),)), "InvalidInput"),
    (Query("BAM", regions=(Region("11", -1, 10),)), "InvalidInput"),
], ids=["start>end", "unknown-reference", "unknown-contig", "SAM", "range-without-name", "star-with-range",
        "star-for-variants", "no-regions", "header-with-region", "negative"])
def test_refusals_carry_the_htsget_error_name(query: Query, error: str) -> None:
    spec = HG02102 if query.format == "VCF" else BAM
    obj = LocalFile(DATA / spec[1])
    with pytest.raises(HtsError) as refused:
        run(plan(obj, (DATA / spec[2]).read_bytes(), query))
    assert refused.value.error == error and refused.value.message


def test_a_region_of_a_file_without_index_is_not_found_and_the_whole_file_still_works(tmp_path: Path) -> None:
    obj = LocalFile(DATA / BAM[1])
    with pytest.raises(HtsError) as refused:
        run(plan(obj, None, Query("BAM", regions=(Region("11", 0, 100),))))
    assert refused.value.error == "NotFound" and "index" in refused.value.message
    assert run(plan(obj, None, Query("BAM", header_only=True)))


def test_a_query_for_another_format_than_the_files_is_refused() -> None:
    hts_file = run(open_file(LocalFile(DATA / BAM[1]), None, "BAM"))
    with pytest.raises(HtsError) as refused:
        run(hts_file.plan(Query("CRAM")))
    assert refused.value.error == "UnsupportedFormat"


def test_reg2bins_names_one_bin_per_level_for_one_base() -> None:
    assert reg2bins(0, 1, 14, 5) == [0, 1, 9, 73, 585, 4681]
    assert reg2bins(1 << 14, (1 << 14) + 1, 14, 5) == [0, 1, 9, 73, 585, 4682]


# -- the archive's own reader ----------------------------------------------------------------------------------------

def test_plan_runs_over_the_archived_crypt4gh_object(tmp_path: Path) -> None:
    import crypt4gh.lib
    from crypt4gh import sodium

    from genomebus.infra.archive_store import ArchivedObject, BytesSource

    secret = os.urandom(32)
    encrypted = io.BytesIO()
    with (DATA / BAM[1]).open("rb") as plain:
        crypt4gh.lib.encrypt([(0, os.urandom(32), sodium.derive_pk(secret))], plain, encrypted)
    obj = run(ArchivedObject.open(BytesSource(encrypted.getvalue()), secret))
    region = Region("11", 5015000, 5050000)

    async def ticket() -> bytes:
        return await fetch(obj, await plan(obj, (DATA / BAM[2]).read_bytes(), Query("BAM", regions=(region,), exact=False)))

    out = tmp_path / "cut.bam"
    out.write_bytes(run(ticket()))
    assert found(BAM, out, "11", 5015000, 5050000) == expected(BAM, "11", 5015000, 5050000)
