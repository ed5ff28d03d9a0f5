"""The airlock's automatic disclosure checks: what a file is, and the rules for its kind (pure functions).

The rules (``docs/airlock.md`` has them as a table), on ACRO's defaults (``acro``'s ``default.yaml``:
``safe_threshold: 10``, ``safe_dom_n: 2``, ``safe_dom_k: 0.9``, ``safe_pratio_p: 0.1``,
``zeros_are_disclosive: true``):

- Individual-level genomic data is ``block``: a VCF with sample columns (genotypes), BCF, BAM,
  CRAM, SAM, FASTQ, sniffed from the content (gzip/BGZF looked through), never from the name.
- A table (CSV or TSV with a consistent number of columns):
  - ``genotypes``: a column of genotypes (``0/1``, ``1|1``, at least half its cells) is ``block``;
  - ``threshold``: a count (a cell of an integer column) from 1 to ``min_cell_count - 1`` fails;
  - ``zeros``: a count of 0 is flagged (a zero can tell that nobody in a group has a trait);
  - ``dominance`` (N-K, N=2, K=0.9) and ``p_ratio`` (p=0.1), on magnitude columns (numbers that are
    not all integers): the rows as the contributions to the column's total — the largest two above
    90 % of it fails; the total less the largest two below 10 % of the largest fails. ACRO applies
    these to the microdata behind each cell, which an output file does not carry: a tool that needs
    that should run ACRO inside the task;
  - integer columns named as coordinates or identifiers (``pos``, ``start``, ``end``, ``*_id``…) are
    not counts and not checked as counts.
- A sites-only VCF, text that is not a table, and any other binary file are ``flag``: a checker must
  look. An empty file passes.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from genomebus.schemas.airlock import CheckedFile, RuleResult, Verdict

SNIFF_BYTES = 1 << 16
MAX_TABLE_BYTES = 64 << 20
"""A larger table is flagged for a checker rather than parsed here."""
MAX_CELLS_LISTED = 50
_ORDER: dict[Verdict, int] = {"pass": 0, "flag": 1, "fail": 2, "block": 3}
_NOT_COUNTS = re.compile(r"^(pos|position|start|end|begin|stop|chrom|chr|contig|id|.*_id|year|length|len|rank|"
                         r"index|row)$", re.IGNORECASE)
_GENOTYPE = re.compile(r"^(\d{1,2}|\.)([/|](\d{1,2}|\.))+(:.*)?$")  # 0/1, 1|1, ./., 0/1:35 (not dates)
_INTEGER = re.compile(r"^[+-]?\d+$")
_MISSING = {"", "na", "nan", "null", "none", "."}


@dataclass(frozen=True)
class Rules:
    """The thresholds (ACRO's defaults)."""

    min_cell_count: int = 10
    dominance_n: int = 2
    dominance_k: float = 0.9
    p_ratio: float = 0.1


DEFAULT_RULES = Rules()


def worst(verdicts: list[Verdict]) -> Verdict:
    return max(verdicts, key=_ORDER.__getitem__, default="pass")


def check_file(name: str, path: Path, rules: Rules = DEFAULT_RULES) -> CheckedFile:
    """The verdict on one plaintext output file."""
    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES)
    if not head:
        return CheckedFile(path=name, kind="empty", verdict="pass")
    compressed = head[:2] == b"\x1f\x8b"
    inner = _gunzip_head(path) if compressed else head
    kind, finding = _sniff(inner)
    if finding is not None:
        return CheckedFile(path=name, kind=kind, verdict=finding.verdict, findings=(finding,))
    if kind == "table":
        size = path.stat().st_size
        if size > MAX_TABLE_BYTES:
            return _flag(name, "table", "too_large", f"a table of {size} bytes is more than the airlock parses "
                         f"({MAX_TABLE_BYTES}); a checker must look at it")
        text = _read_text(path, compressed)
        if text is None:
            return _flag(name, "text", "unrecognised", "not UTF-8 text; a checker must look at it")
        findings = check_table(text, rules)
        return CheckedFile(path=name, kind="table", verdict=worst([f.verdict for f in findings]),
                           findings=tuple(findings))
    if kind == "text":
        return _flag(name, kind, "unrecognised", "text that is not a table (CSV or TSV); a checker must read it")
    return _flag(name, kind, "unrecognised", "a binary file of no kind the airlock knows; a checker must look at it")


def _flag(name: str, kind: str, rule: str, message: str) -> CheckedFile:
    return CheckedFile(path=name, kind=kind, verdict="flag", findings=(RuleResult(rule=rule, verdict="flag",
                                                                                   message=message),))


def _gunzip_head(path: Path) -> bytes:
    """The first bytes of a gzip (or BGZF, a series of gzip members) file's content."""
    out = bytearray()
    with path.open("rb") as f:
        data = f.read(SNIFF_BYTES * 4)
    while data and len(out) < SNIFF_BYTES:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += d.decompress(data, SNIFF_BYTES)
        except zlib.error:
            break
        data = d.unused_data
        if not d.eof:
            break
    return bytes(out)


def _read_text(path: Path, compressed: bool) -> str | None:
    try:
        raw = gzip.open(path).read() if compressed else path.read_bytes()
        return raw.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError, EOFError):
        return None


def _block(kind: str, rule: str, message: str) -> tuple[str, RuleResult]:
    return kind, RuleResult(rule=rule, verdict="block", message=message)


def _sniff(head: bytes) -> tuple[str, RuleResult | None]:
    """What the content is, and the finding that decides it when its kind alone does."""
    if head.startswith(b"BAM\x01"):
        return _block("bam", "bam", "BAM: reads of individuals never leave the node")
    if head.startswith(b"CRAM"):
        return _block("cram", "cram", "CRAM: reads of individuals never leave the node")
    if head.startswith(b"BCF\x02") or head.startswith(b"BCF\x04"):
        return _block("bcf", "bcf", "BCF: per-sample genotypes may be in it; individual-level data never leaves")
    if b"\x00" in head:
        return "binary", None
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        # a cut in the middle of a multi-byte character at the sniff's end is still text
        try:
            text = head[:-3].decode("utf-8-sig")
        except UnicodeDecodeError:
            return "binary", None
    lines = text.splitlines()
    if text.startswith("##fileformat=VCF") or any(line.startswith("#CHROM\tPOS") for line in lines[:2000]):
        header = next((line for line in lines if line.startswith("#CHROM")), None)
        samples = len(header.split("\t")) - 9 if header else 0
        if samples > 0 or header is None:
            return _block("vcf", "vcf_genotypes", f"a VCF with {samples} sample column(s): per-person genotypes "
                          "never leave the node" if header else "a VCF whose sample columns cannot be seen in its "
                          "first 64 KiB: blocked as individual-level")
        return "vcf", RuleResult(rule="vcf_sites", verdict="flag", message="a sites-only VCF: per-variant records "
                                 "with no genotypes; a checker must judge whether its allele counts are safe")
    if lines and (lines[0].startswith(("@HD\t", "@SQ\t", "@RG\t", "@PG\t")) or _looks_like_sam(lines)):
        return _block("sam", "sam", "SAM: reads of individuals never leave the node")
    if len(lines) >= 4 and lines[0].startswith("@") and lines[2].startswith("+"):
        return _block("fastq", "fastq", "FASTQ: reads of individuals never leave the node")
    whole = lines[:-1] if len(head) >= SNIFF_BYTES and len(lines) > 1 else lines  # the head may end mid-line
    if _dialect(whole) is not None:
        return "table", None
    return "text", None


def _looks_like_sam(lines: list[str]) -> bool:
    rows = [line.split("\t") for line in lines[:20] if line]
    return bool(rows) and all(len(r) >= 11 and r[1].isdigit() and r[3].isdigit() for r in rows)


def _dialect(lines: list[str]) -> str | None:
    """The delimiter of a table: tab or comma, the same number (at least 2) of columns in every line."""
    sample = [line for line in lines[:200] if line.strip()]
    if not sample:
        return None
    for delimiter in ("\t", ","):
        widths = {len(row) for row in csv.reader(sample, delimiter=delimiter)}
        if len(widths) == 1 and widths.pop() >= 2:
            return delimiter
    return None


def _number(cell: str) -> float | None:
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def check_table(text: str, rules: Rules = DEFAULT_RULES) -> list[RuleResult]:
    """ACRO's rules on a CSV/TSV table (its first row a header when it names numeric columns)."""
    lines = text.splitlines()
    delimiter = _dialect(lines) or ("\t" if "\t" in (lines[0] if lines else "") else ",")
    rows = [row for row in csv.reader(io.StringIO(text), delimiter=delimiter) if row]
    if not rows:
        return []
    width = max(len(r) for r in rows)
    if len({len(r) for r in rows}) != 1:
        return [RuleResult(rule="ragged_table", verdict="flag", message="rows have different numbers of columns; "
                           "a checker must look at it")]
    header = rows[0] if _has_header(rows) else None
    body = rows[1:] if header else rows
    names = header or [f"column {i + 1}" for i in range(width)]
    start = 2 if header else 1
    findings: list[RuleResult] = []
    small: list[str] = []
    zeros: list[str] = []
    for col in range(width):
        cells = [(i, row[col].strip()) for i, row in enumerate(body, start)]
        present = [c for _, c in cells if c.lower() not in _MISSING]
        if present and sum(bool(_GENOTYPE.match(c)) for c in present) * 2 >= len(present):
            findings.append(RuleResult(rule="genotypes", verdict="block", cells=(names[col],),
                                       message=f"{names[col]}: genotypes (such as 0/1): individual-level data "
                                               "never leaves the node"))
            continue
        values = [(i, _number(c)) for i, c in cells if c.lower() not in _MISSING]
        if not values or any(v is None for _, v in values):
            continue  # a label column
        numbers: list[tuple[int, float]] = [(i, v) for i, v in values if v is not None]
        if all(_INTEGER.match(c) for _, c in cells if c.lower() not in _MISSING):  # written as whole numbers
            if _NOT_COUNTS.match(names[col].strip()):
                continue
            for i, v in numbers:
                where = f"{i}:{names[col]}"
                if 0 < v < rules.min_cell_count:
                    small.append(where)
                elif v == 0:
                    zeros.append(where)
        else:
            findings.extend(_magnitude(names[col], [v for _, v in numbers], rules))
    if small:
        findings.insert(0, RuleResult(rule="threshold", verdict="fail", cells=tuple(small[:MAX_CELLS_LISTED]),
                                      message=f"{len(small)} count(s) below {rules.min_cell_count} (and above 0): "
                                              "suppress or merge them"))
    if zeros:
        findings.append(RuleResult(rule="zeros", verdict="flag", cells=tuple(zeros[:MAX_CELLS_LISTED]),
                                   message=f"{len(zeros)} zero count(s): a checker must judge whether each is "
                                           "a structural zero"))
    return findings


def _is_number(cell: str) -> bool:
    return cell.strip().lower() in _MISSING or _number(cell) is not None


def _has_header(rows: list[list[str]]) -> bool:
    """A first row is a header when a column is numbers below it and not a number in it."""
    return len(rows) > 1 and any(not _is_number(rows[0][col]) and all(_is_number(r[col]) for r in rows[1:])
                                 for col in range(len(rows[0])))


def dominated(values: list[float], rules: Rules = DEFAULT_RULES) -> tuple[bool, bool]:
    """(N-K dominance, p-ratio) of contributions ``values`` to their total (non-negative ones only)."""
    contributions = sorted((v for v in values if v > 0), reverse=True)
    total = sum(contributions)
    if total <= 0:
        return False, False
    top = contributions[:rules.dominance_n]
    nk = sum(top) > rules.dominance_k * total
    largest = contributions[0]
    second = contributions[1] if len(contributions) > 1 else 0.0
    p = total - largest - second < rules.p_ratio * largest
    return nk, p


def _magnitude(name: str, values: list[float], rules: Rules) -> list[RuleResult]:
    nk, p = dominated(values, rules)
    found = []
    if nk:
        found.append(RuleResult(rule="dominance", verdict="fail", cells=(name,),
                                message=f"{name}: the largest {rules.dominance_n} rows are more than "
                                        f"{rules.dominance_k:.0%} of the column's total"))
    if p:
        found.append(RuleResult(rule="p_ratio", verdict="fail", cells=(name,),
                                message=f"{name}: the total less the largest two rows is less than "
                                        f"{rules.p_ratio:.0%} of the largest: the largest could be estimated"))
    return found
