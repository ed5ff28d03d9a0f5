"""Variant files read for the discovery index: one row per (site, alternate allele), with counts and carriers.

``VariantFileReader(path, sample_offset)`` opens a VCF (plain, gzip or BGZF) or a BCF and gives
its header (``samples``, ``assembly``) and ``rows()``: tuples in the column order of
``discovery.variants`` without the dataset (``ROW_COLUMNS``)::

    (contig, start, end, ref, alt, variant_type, allele_count, allele_number, carriers, carrier_samples)

- Coordinates are Beacon v2's: 0-based, half-open. VCF ``POS`` p and ``REF`` r give ``start = p - 1``
  and ``end = p - 1 + len(r)``; a symbolic allele (``<DEL>``, ``<DUP:TANDEM>``...) ends at ``INFO/END``
  (VCF's END is 1-based inclusive, so it is the exclusive 0-based end as it stands), else at
  ``POS + |SVLEN|`` (not for ``<INS...>``, whose SVLEN is the inserted length), else where its REF ends. Reference names go through ``alleles.normalise_contig``.
- Multi-allelic sites are split: one row per alternate allele. ``*`` (a deletion spanning the site),
  ``<NON_REF>``, ``<*>`` and the missing ALT ``.`` are no variants and give no row.
- With genotypes (``GT`` first in FORMAT, as VCF requires): ``allele_number`` counts the called
  alleles at the site (``.`` is not called; haploid, diploid and polyploid calls, phased or not),
  ``allele_count`` the copies of this allele, ``carriers`` the samples with at least one copy and
  ``carrier_samples`` their indexes (``sample_offset`` + the column's position). Without
  genotypes: ``INFO/AC`` and ``INFO/AN`` when present (no carriers), else 0.
- The same allele written twice in one file (two records at one position) is one row: counts
  summed, carriers joined.

Speed (the bench loads 10 M alleles): every file is read as VCF text lines, so there is one
parser. VCF text is decompressed by htslib (``pysam.BGZFile``) in 4 MiB pieces and split with
``str.split``; a BCF is decoded by htslib and printed as VCF text (``str(record)``, about 3 µs).
Genotypes cost one dictionary lookup per record, not per sample, whenever the record's calls were
seen before: when FORMAT is just ``GT`` the whole genotype part of the line is the key, otherwise
the tuple of GT fields. A cohort of a few samples repeats few call patterns, so the per-sample
work is done once per pattern.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pysam

from genomebus.infra.discovery.alleles import normalise_contig, variant_type

ROW_COLUMNS = ("contig", "start", "end", "ref", "alt", "variant_type", "allele_count", "allele_number",
               "carriers", "carrier_samples")
"""What ``rows()`` yields, in order: the columns of ``discovery.variants`` after ``dataset_key``."""

Row = tuple[str, int, int, str, str, str, int, int, int, list[int]]

NOT_VARIANTS = frozenset({"*", "<NON_REF>", "<*>", "."})
"""ALT alleles that name no variant: a spanning deletion, gVCF's reference blocks, no ALT at all."""

_CHUNK = 4 << 20
_CACHE_LIMIT = 200_000
_ASSEMBLY = re.compile(r"(GRCh3[78](?:\.p\d+)?|hg1[89]|hg38|b3[678]|hs37d5|NCBI3[456]|GC[AF]_\d+\.\d+)",
                       re.IGNORECASE)
_BCF_MAGIC = b"BCF\x02"


class VariantFileError(ValueError):
    """A variant file this reader cannot read (not VCF/BCF, a malformed record): ``code`` names why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.accession: str | None = None
        """The file's accession, when the loader knows it (``index.index_dataset`` sets it)."""


@dataclass(frozen=True)
class VcfHeader:
    samples: tuple[str, ...]
    assembly: str | None
    """The reference assembly the header names (``##assembly``, ``##contig=<...,assembly=>``,
    ``##reference``), as written there, or None."""


def header_assembly(lines: list[str]) -> str | None:
    """The assembly a VCF header names: ``##assembly=``, then a contig's ``assembly=``, then ``##reference=``.

    ``##reference`` is often a path (``file:///refs/human_g1k_v37.fasta``): only a known assembly
    name inside it counts (GRCh37/38, hg19/hg38, b37, hs37d5, NCBI36, a GenBank/RefSeq assembly
    accession); a bare name (``##reference=GRCh38``) is taken as written.
    """
    contig_assembly = reference = None
    for line in lines:
        if line.startswith("##assembly="):
            return line.split("=", 1)[1].strip() or None
        if contig_assembly is None and line.startswith("##contig=<"):
            match = re.search(r"[<,]assembly=\"?([^,>\"]+)", line)
            contig_assembly = match.group(1).strip() if match else None
        elif reference is None and line.startswith("##reference="):
            reference = line.split("=", 1)[1].strip()
    if contig_assembly:
        return contig_assembly
    if reference:
        if "/" not in reference and ":" not in reference:
            return reference
        match = _ASSEMBLY.search(reference)
        return match.group(1) if match else None
    return None


def parse_genotype(gt: str) -> tuple[int, tuple[tuple[int, int], ...]]:
    """A GT field → (called alleles, ((allele index, copies), ...) for the non-reference alleles).

    ``0/1`` → (2, ((1, 1),)); ``1|1`` → (2, ((1, 2),)); ``./1`` → (1, ((1, 1),)); ``1`` (haploid) →
    (1, ((1, 1),)); ``.`` → (0, ()); ``0/1/2`` → (3, ((1, 1), (2, 1))). A leading phase mark
    (VCF 4.4: ``|0/1``) is ignored.
    """
    called = 0
    copies: dict[int, int] = {}
    for allele in re.split(r"[/|]", gt.lstrip("/|")):
        if allele in (".", ""):
            continue
        try:
            index = int(allele)
        except ValueError:
            raise VariantFileError("invalid_genotype", f"GT {gt!r} is not allele indexes separated by / or |") from None
        called += 1
        if index > 0:
            copies[index] = copies.get(index, 0) + 1
    return called, tuple(sorted(copies.items()))


class _Calls:
    """Genotype calls of one file's records → per-allele AC, AN, carriers; cached by call pattern."""

    def __init__(self, sample_offset: int) -> None:
        self.offset = sample_offset
        self.genotypes: dict[str, tuple[int, tuple[tuple[int, int], ...]]] = {}
        self.patterns: dict[Any, tuple[int, list[int], list[list[int]]]] = {}

    def count(self, key: Any, gts: list[str] | tuple[str, ...], alleles: int) \
            -> tuple[int, list[int], list[list[int]]]:
        """(AN, AC per allele index, carrier sample indexes per allele index) for one record's calls."""
        cache_key = (key, alleles)
        found = self.patterns.get(cache_key)
        if found is not None:
            return found
        an = 0
        ac = [0] * (alleles + 1)
        carriers: list[list[int]] = [[] for _ in range(alleles + 1)]
        for column, gt in enumerate(gts):
            parsed = self.genotypes.get(gt)
            if parsed is None:
                parsed = self.genotypes[gt] = parse_genotype(gt)
            an += parsed[0]
            for index, copies in parsed[1]:
                if index > alleles:
                    raise VariantFileError("invalid_genotype",
                                           f"GT {gt!r} names allele {index}; the record has {alleles} ALT alleles")
                ac[index] += copies
                carriers[index].append(self.offset + column)
        if len(self.patterns) >= _CACHE_LIMIT:
            self.patterns.clear()
        self.patterns[cache_key] = found = (an, ac, carriers)
        return found


def _info_value(info: str, key: str) -> str | None:
    if info == ".":
        return None
    for item in info.split(";"):
        if item.startswith(key) and item[len(key):len(key) + 1] == "=":
            return item[len(key) + 1:]
    return None


def _info_ints(info: str, key: str) -> list[int | None] | None:
    value = _info_value(info, key)
    if value is None:
        return None
    out: list[int | None] = []
    for part in value.split(","):
        try:
            out.append(int(part))
        except ValueError:
            out.append(None)
    return out


class VariantFileReader:
    """One VCF/BCF file: ``header`` now, ``rows()`` once (see the module docstring)."""

    def __init__(self, path: Path | str, *, sample_offset: int = 0) -> None:
        self.path = Path(path)
        self.sample_offset = sample_offset
        self.records = 0
        try:
            with self.path.open("rb") as fh:
                magic = fh.read(4)
            if magic[:2] == b"\x1f\x8b":
                with pysam.BGZFile(str(self.path), "rb") as bgzf:
                    magic = bgzf.read(4)
        except OSError as exc:
            raise VariantFileError("unreadable", f"{self.path.name}: {exc}") from exc
        self._bcf = magic == _BCF_MAGIC
        self._header_lines = self._read_header()
        columns = self._header_lines[-1].rstrip("\n").split("\t") if self._header_lines else []
        if not columns or columns[0] != "#CHROM":
            raise VariantFileError("invalid_header", f"{self.path.name}: no #CHROM header line")
        self.header = VcfHeader(samples=tuple(columns[9:]), assembly=header_assembly(self._header_lines))

    def _read_header(self) -> list[str]:
        if self._bcf:
            try:
                with pysam.VariantFile(str(self.path)) as vf:
                    return str(vf.header).splitlines()
            except (OSError, ValueError) as exc:
                raise VariantFileError("invalid_header", f"{self.path.name}: {exc}") from exc
        lines = []
        for line in self._text_lines():
            if not line.startswith("#"):
                break
            lines.append(line)
            if line.startswith("#CHROM"):
                break
        return lines

    def _text_chunks(self) -> Iterator[list[str]]:
        """The lines of a VCF (plain, gzip or BGZF), header included, a few MiB at a time."""
        try:
            with pysam.BGZFile(str(self.path), "rb") as fh:
                rest = ""
                while chunk := fh.read(_CHUNK):
                    text = rest + chunk.decode()
                    cut = text.rfind("\n") + 1
                    rest = text[cut:]
                    yield text[:cut].splitlines()
                if rest:
                    yield rest.splitlines()
        except UnicodeDecodeError as exc:
            raise VariantFileError("invalid_encoding", f"{self.path.name} is not UTF-8 text: {exc}") from exc
        except OSError as exc:
            raise VariantFileError("unreadable", f"{self.path.name}: {exc}") from exc

    def _text_lines(self) -> Iterator[str]:
        for lines in self._text_chunks():
            yield from lines

    def _record_chunks(self) -> Iterator[list[str]]:
        """The record lines (no header), in lists of many."""
        if self._bcf:
            try:
                with pysam.VariantFile(str(self.path)) as vf:
                    lines = []
                    for record in vf:
                        lines.append(str(record))
                        if len(lines) == 10_000:
                            yield lines
                            lines = []
                    yield lines
            except (OSError, ValueError) as exc:
                raise VariantFileError("unparseable_record", f"{self.path.name}: {exc}") from exc
            return
        for lines in self._text_chunks():
            if lines and lines[0][:1] == "#" or lines and lines[-1][:1] == "#":
                lines = [line for line in lines if line and line[0] != "#"]
            yield lines

    def rows(self) -> Iterator[Row]:
        """The file's alleles, in file order, one row per (site, ALT); duplicates at one site merged."""
        for batch in self.batches():
            yield from batch

    def batches(self, size: int = 20_000) -> Iterator[list[Row]]:
        """``rows()`` in lists of about ``size`` (never splitting a site), for COPY and threads."""
        calls = _Calls(self.sample_offset)
        contigs: dict[str, str] = {}
        types: dict[tuple[str, str], str] = {}
        samples = len(self.header.samples)
        out: list[Row] = []
        site: tuple[str, int] | None = None
        site_rows = 0  # how many rows at the end of ``out`` share ``site``
        for lines in self._record_chunks():
            for line in lines:
                if not line:
                    continue
                self.records += 1
                fields = line.split("\t", 8)
                if len(fields) < 8:
                    raise VariantFileError("unparseable_record", f"{self.path.name}: record {self.records} has "
                                                                 f"{len(fields)} columns, not 8 or more")
                alt_field = fields[4]
                if alt_field in NOT_VARIANTS:
                    continue
                chrom = fields[0]
                contig = contigs.get(chrom)
                if contig is None:
                    contig = contigs[chrom] = normalise_contig(chrom)
                try:
                    start = int(fields[1]) - 1
                except ValueError:
                    raise VariantFileError("unparseable_record", f"{self.path.name}: record {self.records} has "
                                                                 f"POS {fields[1]!r}") from None
                if (contig, start) != site:
                    if len(out) >= size:
                        yield out
                        out = []
                    site, site_rows = (contig, start), 0
                ref = fields[3].upper()
                info = fields[7]
                ref_end = start + len(ref)
                alts = alt_field.split(",")
                an, ac, carriers = self._counts(calls, fields, info, len(alts), samples)
                index = 0
                for alt in alts:
                    index += 1
                    if alt in NOT_VARIANTS:
                        continue
                    if alt[0] == "<":
                        end = _symbolic_end(info, start, ref_end, index, alt)
                    else:
                        if not alt.isupper() and alt.isalpha():
                            alt = alt.upper()
                        end = ref_end
                    kind = types.get((ref, alt))
                    if kind is None:
                        kind = variant_type(ref, alt)
                        if len(ref) + len(alt) <= 4:
                            types[(ref, alt)] = kind
                    allele_carriers = carriers[index]
                    row = (contig, start, end, ref, alt, kind, ac[index], an, len(allele_carriers), allele_carriers)
                    if site_rows and _merge_into(out, site_rows, row):
                        continue
                    out.append(row)
                    site_rows += 1
        if out:
            yield out

    def _counts(self, calls: _Calls, fields: list[str], info: str, alleles: int,
                samples: int) -> tuple[int, list[int], list[list[int]]]:
        if samples and len(fields) == 9:
            genotype_part = fields[8]
            fmt_end = genotype_part.find("\t")
            fmt = genotype_part[:fmt_end] if fmt_end >= 0 else genotype_part
            if fmt == "GT" or fmt.startswith("GT:"):
                tail = genotype_part[fmt_end + 1:] if fmt_end >= 0 else ""
                if fmt == "GT":
                    found = calls.patterns.get((tail, alleles))
                    if found is not None:
                        return found
                    gts: list[str] | tuple[str, ...] = tail.split("\t")
                    key: Any = tail
                else:
                    gts = tuple(s.split(":", 1)[0] for s in tail.split("\t"))
                    key = gts
                if len(gts) != samples:
                    raise VariantFileError("unparseable_record", f"{self.path.name}: record {self.records} has "
                                                                 f"{len(gts)} sample columns, the header {samples}")
                return calls.count(key, gts, alleles)
        ac_info = _info_ints(info, "AC") or []
        an_info = _info_ints(info, "AN") or [0]
        ac = [0] + [(ac_info[i] if i < len(ac_info) else None) or 0 for i in range(alleles)]
        return an_info[0] or 0, ac, [[] for _ in range(alleles + 1)]


def _symbolic_end(info: str, start: int, ref_end: int, index: int, alt: str) -> int:
    """Where a symbolic allele ends: INFO/END, else POS + |SVLEN| (the allele's own value) for an allele that
    spans reference bases (not an insertion: its SVLEN is the inserted length), else REF's end."""
    end = _info_ints(info, "END")
    if end and end[0] is not None:
        return max(end[0], start + 1)
    if alt.startswith("<INS"):
        return ref_end
    svlen = _info_ints(info, "SVLEN")
    if svlen:
        value = svlen[index - 1] if index - 1 < len(svlen) else svlen[0]
        if value is not None:
            return max(start + 1 + abs(value), ref_end)
    return ref_end


def _merge_into(out: list[Row], site_rows: int, row: Row) -> bool:
    """Fold ``row`` into an earlier row of its site at the end of ``out`` holding the same allele; False if none."""
    for i in range(len(out) - site_rows, len(out)):
        seen = out[i]
        if seen[3] == row[3] and seen[4] == row[4] and seen[2] == row[2]:
            carriers = sorted(set(seen[9]) | set(row[9]))
            out[i] = (*seen[:6], seen[6] + row[6], seen[7] + row[7], len(carriers), carriers)  # type: ignore[assignment]
            return True
    return False
