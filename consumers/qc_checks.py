"""QC decisions for one uploaded file: is it what the submitter said it is, and is it whole?

Pure logic over a local file; no Kafka, no object store. ``check_file`` runs, in
order: empty file → checksums → real format from the content → per-format
validation, and returns a ``QcResult`` listing every failure it found cheaply
(capped per code), warnings that do not fail the file, JSON-ready metrics and,
when one was missing and could be built, an index file next to the input.

Per format, in one streaming pass over the records with bounded memory (text VCF
gets a cheap line-level pass first; a missing index is built by htslib after):

- BAM / CRAM: header, end-of-file marker, every record decodes, sort order
  declared in ``@HD SO`` and verified, flagstat-style counts. CRAM records are
  decoded without sequence (``required_fields``), so no reference is needed and
  htslib never tries to fetch one from the network.
- VCF / BCF: header, every record parses, contigs in blocks with positions
  ascending, REF/ALT alleles valid, variant and genotype counts. For text VCF a
  line-level pass first checks what htslib silently accepts (column counts,
  POS), because htslib stops at the first bad record and accepts extra columns.
- FASTQ: four-line records, sequence and quality of equal length, quality
  encoding.

A file whose content is not the declared format, or not a recognised format,
is not validated further: it will be re-uploaded before its records matter.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import re
import warnings
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pysam

from genomebus.schemas.reception import QcReason

CHUNK = 1 << 20
SNIFF_BYTES = 1 << 16
MAX_LINE = 1 << 26
"""Longest text line read at once (64 MiB); longer lines are reported, not buffered."""
MAX_REASONS_PER_CODE = 10
HTS_THREADS = 2
"""htslib threads decompressing BGZF while Python walks BAM/CRAM records, and building indexes."""
MAX_SAMPLES_DETAILED = 1000
"""Per-sample genotype counts are kept for at most this many samples, so the event stays small."""

BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
CRAM3_EOF = bytes.fromhex("0f000000ffffffff0fe0454f4600000000010005bdd94f0001000606010001000100ee63014b")
GZIP_MAGIC = b"\x1f\x8b"

# Fields decoded from CRAM records: FLAG, RNAME, POS, CIGAR. Leaving out SEQ/QUAL/MD means
# slices decode without the reference, so QC never needs (or downloads) one.
_CRAM_REQUIRED_FIELDS = b"required_fields=0x2e"
_UNMAPPED_TID = 1 << 62

_REF = re.compile(r"[ACGTNacgtn]+")
_ALT = re.compile(
    r"[ACGTNacgtn]+"  # bases
    r"|\*"  # allele missing due to an upstream deletion
    r"|<[^<>\s,]+>"  # symbolic, e.g. <DEL>, <*>, <NON_REF>
    r"|[ACGTNacgtn]*[\[\]][^\[\]\s,]+:\d+[\[\]][ACGTNacgtn]*"  # breakend with mate, e.g. G]17:198982]
    r"|\.[ACGTNacgtn]+|[ACGTNacgtn]+\."  # single breakend
)
_BASES = re.compile(r"[ACGTNacgtn]+")
_TRANSITIONS = frozenset({("A", "G"), ("G", "A"), ("C", "T"), ("T", "C")})
_VCF_FIXED = (b"#CHROM", b"POS", b"ID", b"REF", b"ALT", b"QUAL", b"FILTER", b"INFO")
_VCF_LIKE = re.compile(rb"##fileformat=VCF|##[A-Za-z0-9_.-]+=|#CHROM\t")
_SAM_LIKE = re.compile(rb"@(HD|SQ|RG|PG|CO)\t")
_FASTQ_SEQ = re.compile(rb"[A-Za-z.]*")

INDEX_SUFFIXES = {"BAM": (".bai", ".csi"), "CRAM": (".crai",), "VCF": (".tbi", ".csi"), "BCF": (".csi",)}
"""Index file suffixes per format, the one QC builds first."""


@dataclass(frozen=True)
class QcResult:
    passed: bool
    format: str | None
    """The format the content really is (``SAM`` is recognised only to say so), or None."""
    metrics: dict[str, Any] = field(default_factory=dict)
    reasons: tuple[QcReason, ...] = ()
    warnings: tuple[QcReason, ...] = ()
    index_path: Path | None = None
    """An index QC built next to the file (the caller owns it), or None."""


@dataclass(frozen=True)
class Sniffed:
    format: str | None
    compression: str
    """``bgzf``, ``gzip`` or ``none``."""
    detail: str = ""


class _Findings:
    """Failures and warnings collected so far; at most ``MAX_REASONS_PER_CODE`` kept per code."""

    def __init__(self) -> None:
        self._reasons: list[QcReason] = []
        self._warnings: list[QcReason] = []
        self._counts: Counter[str] = Counter()
        self._warning_counts: Counter[str] = Counter()

    def fail(self, code: str, message: str) -> None:
        self._counts[code] += 1
        if self._counts[code] <= MAX_REASONS_PER_CODE:
            self._reasons.append(QcReason(code=code, message=message))

    def warn(self, code: str, message: str) -> None:
        self._warning_counts[code] += 1
        if self._warning_counts[code] <= MAX_REASONS_PER_CODE:
            self._warnings.append(QcReason(code=code, message=message))

    @property
    def failed(self) -> bool:
        return bool(self._reasons)

    def has(self, code: str) -> bool:
        return self._counts[code] > 0

    def result(self, fmt: str | None, metrics: dict[str, Any], index_path: Path | None = None) -> QcResult:
        reasons = list(self._reasons)
        for code, count in self._counts.items():
            if count > MAX_REASONS_PER_CODE:
                more = count - MAX_REASONS_PER_CODE
                reasons.append(QcReason(code=code, message=f"… and {more} more {code} problems"))
        return QcResult(passed=not reasons, format=fmt, metrics=metrics, reasons=tuple(reasons),
                        warnings=tuple(self._warnings), index_path=index_path if not reasons else None)


def check_file(path: Path, declared_format: str, expected_sha256: str, expected_md5: str, *,
               build_index: bool = True) -> QcResult:
    """Decide whether ``path`` is a whole, valid file of ``declared_format`` with the declared checksums."""
    findings = _Findings()
    size = path.stat().st_size
    metrics: dict[str, Any] = {"size": size}
    if size == 0:
        findings.fail("empty_file", "the file is empty (0 bytes)")

    sha256, md5 = file_digests(path)
    metrics |= {"sha256": sha256, "md5": md5}
    if sha256 != expected_sha256.lower():
        findings.fail("checksum_mismatch", f"sha256 of the content is {sha256}, the upload declared {expected_sha256}")
    if md5 != expected_md5.lower():
        findings.fail("checksum_mismatch", f"md5 of the content is {md5}, the upload declared {expected_md5}")
    if size == 0:
        return findings.result(None, metrics)

    sniffed = sniff(path)
    metrics["compression"] = sniffed.compression
    if sniffed.format is None:
        findings.fail("unknown_format", f"the content is not BAM, CRAM, VCF, BCF or FASTQ ({sniffed.detail})")
        return findings.result(None, metrics)
    if sniffed.format != declared_format:
        findings.fail("format_mismatch", f"declared {declared_format}, but the content is {sniffed.format}")
        return findings.result(sniffed.format, metrics)

    if sniffed.compression == "bgzf" and _tail(path, len(BGZF_EOF)) != BGZF_EOF:
        findings.fail("truncated", "the BGZF end-of-file marker is missing: the file is truncated")
    match sniffed.format:
        case "BAM" if sniffed.compression != "bgzf":
            findings.fail("invalid_compression", "BAM must be BGZF-compressed; this is plain gzip")
        case "BAM" | "CRAM":
            metrics |= _check_alignments(path, sniffed.format, findings)
        case "VCF" | "BCF":
            metrics |= _check_variants(path, sniffed, findings)
        case "FASTQ":
            metrics |= _check_fastq(path, sniffed, findings)

    index_path = None
    if sniffed.format in INDEX_SUFFIXES:
        metrics["index"], index_path = _index(path, sniffed, metrics, findings, build=build_index)
    return findings.result(sniffed.format, metrics, index_path)


# -- bytes --------------------------------------------------------------------------------------------------------


def file_digests(path: Path) -> tuple[str, str]:
    """sha256 and md5 of the file, in one streaming pass."""
    sha256, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            sha256.update(chunk)
            md5.update(chunk)
    return sha256.hexdigest(), md5.hexdigest()


def sniff(path: Path) -> Sniffed:
    """The format the first bytes say, looking inside gzip/BGZF compression."""
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if head[:2] == GZIP_MAGIC:
        compression = "bgzf" if _is_bgzf(head) else "gzip"
        try:
            content = _inflate_head(head, 64)
        except zlib.error as exc:
            return Sniffed(None, compression, f"gzip data does not decompress: {exc}")
    else:
        compression, content = "none", head[:64]
    if content.startswith(b"BAM\x01"):
        fmt: str | None = "BAM"
    elif content.startswith(b"BCF\x02"):
        fmt = "BCF"
    elif content.startswith(b"CRAM") and compression == "none":
        fmt = "CRAM"
    elif _VCF_LIKE.match(content):
        fmt = "VCF"
    elif _SAM_LIKE.match(content):
        fmt = "SAM"
    elif content.startswith(b"@"):
        fmt = "FASTQ"
    else:
        fmt = None
    inside = "gzip-compressed content " if compression != "none" else ""
    return Sniffed(fmt, compression, f"{inside}starts with 0x{content[:8].hex()}")


def _is_bgzf(head: bytes) -> bool:
    """A gzip member with the ``BC`` extra subfield (SAM spec §4.1)."""
    if len(head) < 18 or not head[3] & 4:
        return False
    xlen = int.from_bytes(head[10:12], "little")
    extra, i = head[12:12 + xlen], 0
    while i + 4 <= len(extra):
        slen = int.from_bytes(extra[i + 2:i + 4], "little")
        if extra[i:i + 2] == b"BC" and slen == 2:
            return True
        i += 4 + slen
    return False


def _inflate_head(raw: bytes, n: int) -> bytes:
    """The first ``n`` decompressed bytes, across gzip members (BGZF blocks may be tiny)."""
    out = b""
    while raw and len(out) < n:
        inflater = zlib.decompressobj(31)
        out += inflater.decompress(raw, n - len(out))
        if not inflater.eof:
            break
        raw = inflater.unused_data
    return out


def _tail(path: Path, n: int) -> bytes:
    with path.open("rb") as fh:
        fh.seek(max(0, path.stat().st_size - n))
        return fh.read(n)


@contextlib.contextmanager
def _closing(handle: Any) -> Iterator[Any]:
    """Close a pysam file even when htslib reports an error on close (it does after a failed read)."""
    try:
        yield handle
    finally:
        with contextlib.suppress(OSError, ValueError):
            handle.close()


@contextlib.contextmanager
def _eof_reported() -> Iterator[None]:
    """Opening with ``ignore_truncation``: the missing EOF marker is already a ``truncated`` reason.

    (``catch_warnings`` is process-wide before Python 3.14; the worker has one checking thread.)
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="no BGZF EOF marker")
        yield


def _read_lines(fh: BinaryIO) -> Iterator[bytes]:
    """Lines without their end-of-line, each at most ``MAX_LINE`` bytes (a longer line raises ValueError)."""
    while line := fh.readline(MAX_LINE):
        if len(line) == MAX_LINE and not line.endswith(b"\n"):
            raise ValueError(f"a line is longer than {MAX_LINE} bytes")
        yield line.rstrip(b"\r\n")


def _open_text(path: Path, compression: str) -> BinaryIO:
    return gzip.open(path, "rb") if compression != "none" else path.open("rb")  # type: ignore[return-value]


# -- BAM / CRAM ---------------------------------------------------------------------------------------------------


def _check_alignments(path: Path, fmt: str, findings: _Findings) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    if fmt == "CRAM":
        metrics |= _check_cram_container(path, findings)
    truncated = findings.has("truncated")  # pysam refuses extra threads for a file it may find truncated
    try:
        with _eof_reported():
            handle = pysam.AlignmentFile(
                str(path), "rc" if fmt == "CRAM" else "rb", check_sq=False, ignore_truncation=truncated,
                threads=1 if truncated else HTS_THREADS,
                format_options=[_CRAM_REQUIRED_FIELDS] if fmt == "CRAM" else None,
            )
    except (ValueError, OSError, NotImplementedError) as exc:
        findings.fail("invalid_header", f"the {fmt} header does not parse: {exc}")
        return metrics
    with _closing(handle) as alignments:
        header = alignments.header.to_dict()
        sort_order = header.get("HD", {}).get("SO", "unknown")
        metrics |= {
            "sort_order": sort_order,
            "references": len(header.get("SQ", [])),
            "read_groups": [rg.get("ID") for rg in header.get("RG", [])],
        }
        if fmt == "CRAM":
            sq = header.get("SQ", [])
            metrics |= {"reference_available": False, "reference_md5s": sum(1 for s in sq if "M5" in s),
                        "reference_urls": sum(1 for s in sq if "UR" in s)}
            findings.warn("reference_unavailable",
                          "no reference sequence is available to QC: CRAM records were checked without decoding "
                          f"bases ({metrics['reference_md5s']} of {len(sq)} @SQ lines carry an M5 checksum)")
        metrics |= _walk_alignments(alignments, findings)
    if sort_order == "coordinate" and metrics.get("coordinate_sorted") is False:
        findings.fail("unsorted", f"the header says SO:coordinate, but {metrics.pop('first_unsorted')}")
    metrics.pop("first_unsorted", None)
    return metrics


def _check_cram_container(path: Path, findings: _Findings) -> dict[str, Any]:
    with path.open("rb") as fh:
        definition = fh.read(26)
    if len(definition) < 26:
        findings.fail("truncated", "the file ends inside the 26-byte CRAM file definition")
        return {}
    major, minor = definition[4], definition[5]
    if major == 3:
        if _tail(path, len(CRAM3_EOF)) != CRAM3_EOF:
            findings.fail("truncated", "the CRAM end-of-file container is missing: the file is truncated")
    else:
        findings.warn("cram_version", f"CRAM {major}.{minor}: only CRAM 3 end-of-file containers are checked")
    return {"cram_version": f"{major}.{minor}"}


def _walk_alignments(alignments: pysam.AlignmentFile, findings: _Findings) -> dict[str, Any]:
    """One pass: flagstat-style counts and whether records are in coordinate order."""
    reads = mapped = duplicates = secondary = supplementary = 0
    previous = (-1, -1)
    first_unsorted = None
    try:
        for read in alignments.fetch(until_eof=True):
            reads += 1
            flag = read.flag
            mapped += not flag & 0x4
            duplicates += bool(flag & 0x400)
            secondary += bool(flag & 0x100)
            supplementary += bool(flag & 0x800)
            if first_unsorted is None:
                tid = read.reference_id
                key = (tid if tid >= 0 else _UNMAPPED_TID, read.reference_start)
                if key < previous:
                    where = f"{read.reference_name}:{read.reference_start + 1}" if tid >= 0 else "an unplaced read"
                    first_unsorted = f"record {reads} ({read.query_name} at {where}) comes before the record above it"
                previous = key
    except (OSError, ValueError) as exc:
        findings.fail("unparseable_record", f"record {reads + 1} could not be read (htslib: {exc})")
    return {
        "reads": reads,
        "mapped": mapped,
        "mapped_pct": round(100 * mapped / reads, 2) if reads else 0.0,
        "duplicates": duplicates,
        "secondary": secondary,
        "supplementary": supplementary,
        "coordinate_sorted": first_unsorted is None,
        "first_unsorted": first_unsorted,
    }


# -- VCF / BCF ----------------------------------------------------------------------------------------------------


def _check_variants(path: Path, sniffed: Sniffed, findings: _Findings) -> dict[str, Any]:
    if sniffed.compression != "bgzf":
        how = "gzip-compressed, not BGZF" if sniffed.compression == "gzip" else "plain text"
        findings.warn("not_bgzipped", f"the {sniffed.format} is {how}: it cannot be indexed for region queries")
    bad_records: set[int] = set()
    if sniffed.format == "VCF":
        if not _check_vcf_lines(path, sniffed.compression, findings, bad_records):
            return {}
    return _walk_variants(path, sniffed.compression, findings, bad_records)


def _check_vcf_lines(path: Path, compression: str, findings: _Findings, bad_records: set[int]) -> bool:
    """What htslib accepts silently or stops at: header layout, column count and POS of every line.

    Returns whether the header is valid; records are only checked under a valid header.
    """
    expected = None
    record = lineno = 0
    try:
        with _open_text(path, compression) as fh:
            for lineno, line in enumerate(_read_lines(fh), 1):
                if expected is None:
                    if lineno == 1 and not line.startswith(b"##fileformat=VCF"):
                        findings.fail("invalid_header", "the first line is not ##fileformat=VCFv4.x")
                    if line.startswith(b"##"):
                        continue
                    if not line.startswith(b"#CHROM"):
                        findings.fail("invalid_header", f"line {lineno} comes before the #CHROM header line, "
                                                        "which is missing")
                        return False
                    expected = _vcf_columns(line, lineno, findings)
                    if findings.has("invalid_header"):
                        return False
                    continue
                record += 1
                problem = _vcf_line_problem(line, expected)
                if problem:
                    bad_records.add(record)
                    findings.fail("unparseable_record", f"record {record} (line {lineno}): {problem}")
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        if not findings.has("truncated"):
            findings.fail("unparseable_record", f"the text after line {lineno} could not be read: {exc}")
        bad_records.add(record + 1)
    if expected is None:
        findings.fail("invalid_header", "there is no #CHROM header line")
        return False
    return not findings.has("invalid_header")


def _vcf_columns(line: bytes, lineno: int, findings: _Findings) -> int:
    """Columns every record must have, from the #CHROM line; header problems go to ``findings``."""
    columns = line.split(b"\t")
    if tuple(columns[:8]) != _VCF_FIXED:
        findings.fail("invalid_header", f"line {lineno}: the #CHROM line must start with the 8 tab-separated "
                                        "columns #CHROM POS ID REF ALT QUAL FILTER INFO")
    if len(columns) > 8 and columns[8] != b"FORMAT":
        findings.fail("invalid_header", f"line {lineno}: the 9th column must be FORMAT, not {columns[8][:40]!r}")
    samples = columns[9:]
    if len(set(samples)) != len(samples):
        findings.fail("invalid_header", f"line {lineno}: sample names are not unique")
    return len(columns)


def _vcf_line_problem(line: bytes, expected: int) -> str | None:
    if not line:
        return "empty line"
    if line.startswith(b"#"):
        return "header line after the #CHROM line"
    columns = line.count(b"\t") + 1
    if columns != expected and not (columns == 8 and expected == 9):
        return f"{columns} columns, the header has {expected}"
    pos = line.split(b"\t", 2)[1] if columns > 1 else b""
    if not pos.isdigit():
        return f"POS {pos[:40].decode(errors='replace')!r} is not a number"
    return None


def _walk_variants(path: Path, compression: str, findings: _Findings, bad_records: set[int]) -> dict[str, Any]:
    """One pass over the records with htslib: parse, order, alleles, counts."""
    with contextlib.ExitStack() as opened:
        # htslib cannot seek in plain gzip, and pysam seeks when given a path; as a stream it only reads.
        source = opened.enter_context(path.open("rb")) if compression == "gzip" else str(path)
        try:
            with _eof_reported():
                handle = pysam.VariantFile(source, ignore_truncation=True)
        except (ValueError, OSError, NotImplementedError) as exc:
            findings.fail("invalid_header", f"the header does not parse: {exc}")
            return {}
        return _walk_records(opened.enter_context(_closing(handle)), findings, bad_records)


def _walk_records(variants: pysam.VariantFile, findings: _Findings, bad_records: set[int]) -> dict[str, Any]:
    """One pass over the records: parse, order, alleles, counts."""
    contigs = list(variants.header.contigs)
    samples = list(variants.header.samples)
    detailed = samples[:MAX_SAMPLES_DETAILED]
    genotypes = [[0, 0, 0, 0] for _ in detailed]  # het, hom_alt, hom_ref, missing
    counts = Counter[str]()
    order = _ContigOrder(contigs, findings)
    records = 0
    try:
        for rec in variants:
            records += 1
            chrom, pos, ref, alts = rec.chrom, rec.pos, rec.ref, rec.alts or ()
            order.check(records, chrom, pos)
            if not _REF.fullmatch(ref or ""):
                findings.fail("invalid_allele", f"record {records} ({chrom}:{pos}): REF {ref!r:.40} is not "
                                                "A, C, G, T or N")
            for alt in alts:
                if not _ALT.fullmatch(alt):
                    findings.fail("invalid_allele", f"record {records} ({chrom}:{pos}): ALT {alt!r:.40} is not "
                                                    "bases, *, <symbolic> or a breakend")
            _count_variant(ref or "", alts, counts)
            if detailed and "GT" in rec.format:
                for i in range(len(detailed)):
                    genotypes[i][_genotype_class(rec.samples[i].get("GT"))] += 1
    except (OSError, ValueError) as exc:
        if records + 1 not in bad_records:
            findings.fail("unparseable_record", f"record {records + 1} could not be parsed (htslib: {exc})")
    ti, tv = counts["ti"], counts["tv"]
    return {
        "records": records,
        "snv": counts["snv"],
        "indel": counts["indel"],
        "multiallelic": counts["multiallelic"],
        "other": counts["other"],
        "ti": ti,
        "tv": tv,
        "ti_tv": round(ti / tv, 3) if tv else None,
        "contigs": len(contigs),
        "samples": samples[:MAX_SAMPLES_DETAILED],
        "sample_count": len(samples),
        "genotypes": {name: dict(zip(("het", "hom_alt", "hom_ref", "missing"), g, strict=True))
                      for name, g in zip(detailed, genotypes, strict=True)},
    }


class _ContigOrder:
    """Records must come in one block per contig with positions ascending (what tabix/CSI indexing needs).

    Blocks in an order other than the header's are indexable, so that is a warning, not a failure.
    """

    def __init__(self, contigs: list[str], findings: _Findings) -> None:
        self.rank = {name: i for i, name in enumerate(contigs)}
        self.findings = findings
        self.done: set[str] = set()
        self.current: str | None = None
        self.previous_pos = 0
        self.reported = False

    def check(self, record: int, chrom: str, pos: int) -> None:
        if chrom != self.current:
            if chrom not in self.rank:
                self.findings.warn("undeclared_contig", f"contig {chrom!r:.60} is not declared in the header")
                self.rank[chrom] = len(self.rank)
            if chrom in self.done:
                self._unsorted(f"record {record} ({chrom}:{pos}): contig {chrom} starts again after other contigs")
            elif self.current is not None and self.rank[chrom] < self.rank[self.current]:
                self.findings.warn("contig_order", f"contig {chrom} follows {self.current}, unlike the header's order")
            if self.current is not None:
                self.done.add(self.current)
            self.current = chrom
        elif pos < self.previous_pos:
            self._unsorted(f"record {record} ({chrom}:{pos}) comes after {chrom}:{self.previous_pos}")
        self.previous_pos = pos

    def _unsorted(self, message: str) -> None:
        if not self.reported:
            self.reported = True
            self.findings.fail("unsorted", f"records are not sorted: {message}")


def _count_variant(ref: str, alts: tuple[str, ...], counts: Counter[str]) -> None:
    """snv / indel when every ALT is one, else other; ti and tv per SNV allele."""
    kinds = set()
    for alt in alts:
        if not (_BASES.fullmatch(alt) and _BASES.fullmatch(ref)):
            kinds.add("other")
        elif len(ref) == 1 and len(alt) == 1:
            kinds.add("snv")
            counts["ti" if (ref.upper(), alt.upper()) in _TRANSITIONS else "tv"] += 1
        elif len(ref) != len(alt):
            kinds.add("indel")
        else:
            kinds.add("other")  # MNP
    counts[kinds.pop() if len(kinds) == 1 else "other"] += 1
    if len(alts) > 1:
        counts["multiallelic"] += 1


def _genotype_class(gt: tuple[int | None, ...] | None) -> int:
    """Index into (het, hom_alt, hom_ref, missing)."""
    if not gt or None in gt:
        return 3
    if all(allele == 0 for allele in gt):
        return 2
    return 1 if len(set(gt)) == 1 else 0


# -- FASTQ --------------------------------------------------------------------------------------------------------


def _check_fastq(path: Path, sniffed: Sniffed, findings: _Findings) -> dict[str, Any]:
    reads = bases = 0
    qmin, qmax = 255, 0
    min_length: int | None = None
    max_length = 0
    try:
        with _open_text(path, sniffed.compression) as fh:
            lines = _read_lines(fh)
            for name in lines:
                if not name and not any(lines):
                    break  # blank lines at the very end are harmless
                reads += 1
                rest = [line for _, line in zip(range(3), lines, strict=False)]
                if len(rest) < 3:
                    findings.fail("invalid_record", f"record {reads} is incomplete: the file ends after "
                                                    f"{len(rest) + 1} of its 4 lines")
                    break
                seq, plus, qual = rest
                if not name.startswith(b"@") or not plus.startswith(b"+"):
                    findings.fail("invalid_record", f"record {reads}: expected '@name', sequence, '+', quality; "
                                                    "the 4-line structure is broken here")
                    break  # out of step: every later record would be reported too
                if len(plus) > 1 and plus[1:] != name[1:]:
                    findings.fail("invalid_record", f"record {reads}: the '+' line names another read")
                if not _FASTQ_SEQ.fullmatch(seq):
                    findings.fail("invalid_record", f"record {reads}: the sequence has characters other than "
                                                    "letters and '.'")
                if len(seq) != len(qual):
                    findings.fail("invalid_record", f"record {reads}: the sequence has {len(seq)} bases but the "
                                                    f"quality has {len(qual)} characters")
                if qual:
                    lo, hi = min(qual), max(qual)
                    if lo < 33 or hi > 126:
                        findings.fail("invalid_record", f"record {reads}: quality characters outside '!'..'~'")
                    qmin, qmax = min(qmin, lo), max(qmax, hi)
                bases += len(seq)
                min_length = len(seq) if min_length is None else min(min_length, len(seq))
                max_length = max(max_length, len(seq))
    except EOFError as exc:
        findings.fail("truncated", f"the compressed stream ends early, after record {reads}: {exc}")
    except (OSError, zlib.error, ValueError) as exc:
        findings.fail("unparseable_record", f"the data after record {reads} could not be read: {exc}")
    encoding = _quality_encoding(qmin, qmax)
    if encoding == "phred64":
        findings.warn("phred64_quality", "qualities look Phred+64 (Illumina 1.3-1.7); tools today assume Phred+33")
    return {
        "reads": reads,
        "bases": bases,
        "mean_length": round(bases / reads, 2) if reads else 0.0,
        "min_length": min_length or 0,
        "max_length": max_length,
        "quality_encoding": encoding,
    }


def _quality_encoding(qmin: int, qmax: int) -> str | None:
    """Phred+33 unless nothing is below ';' and something is above 'J' (Q41 in Phred+33, rare)."""
    if qmin > qmax:
        return None
    if qmin < 59 or qmax <= 74:
        return "phred33"
    return "phred64"


# -- indexes ------------------------------------------------------------------------------------------------------


def existing_index(path: Path, fmt: str) -> Path | None:
    """An index beside ``path`` (``x.bam.bai`` or ``x.bai``), if there is one."""
    for suffix in INDEX_SUFFIXES.get(fmt, ()):
        for candidate in (path.with_name(path.name + suffix), path.with_suffix(suffix)):
            if candidate != path and candidate.exists():
                return candidate
    return None


def _index(path: Path, sniffed: Sniffed, metrics: dict[str, Any], findings: _Findings, *,
           build: bool) -> tuple[str, Path | None]:
    """(what ``metrics["index"]`` says, the index built now or None)."""
    fmt = sniffed.format
    assert fmt is not None
    if existing_index(path, fmt) is not None:
        return "present", None
    if findings.failed:
        return "missing", None
    if fmt in ("VCF", "BCF") and sniffed.compression != "bgzf":
        return "not_possible", None
    if fmt in ("BAM", "CRAM") and metrics.get("sort_order") != "coordinate":
        findings.warn("not_coordinate_sorted", f"the {fmt} is not coordinate-sorted (SO:{metrics.get('sort_order')}):"
                                               " no index can be built, so region queries will not work")
        return "not_possible", None
    if not build:
        return "missing", None
    target = path.with_name(path.name + INDEX_SUFFIXES[fmt][0])
    try:
        if fmt in ("BAM", "CRAM"):
            pysam.index("-@", str(HTS_THREADS), str(path), str(target))
        else:
            pysam.tabix_index(str(path), preset="vcf" if fmt == "VCF" else "bcf", index=str(target),
                              csi=fmt == "BCF", keep_original=True, force=True)
    except (OSError, ValueError, pysam.SamtoolsError) as exc:
        target.unlink(missing_ok=True)
        findings.warn("index_failed", f"building the {target.suffix} index failed: {exc}")
        return "missing", None
    return "built", target
