"""The genomic HGVS short form of a Beacon query (``genomicAlleleShortForm``), read as an allele.

Understood: ``<sequence>:g.<change>`` where the sequence is a RefSeq chromosome accession
(``NC_000017.11``), a chromosome name (``17``, ``chr17``, ``X``) or any contig name, and the change
is one of

- ``123G>A`` — a substitution of one base;
- ``123del``, ``123_125del``, ``123_125delACT`` — a deletion (its bases optional);
- ``123_124insAT`` — an insertion between two adjacent positions;
- ``123delinsAG``, ``123_125delinsAG`` — a deletion-insertion.

HGVS positions are 1-based and inclusive; the result is in Beacon's 0-based, half-open
coordinates: ``start``/``end`` bound the changed reference bases (an insertion has ``start ==
end``). Anything else (another coordinate system, a duplication, an inversion, uncertain or
intronic positions, a range of alleles) is refused with an ``HgvsError`` naming what is
understood.

HGVS shifts indels to their 3'-most position, VCF to their 5'-most: in a repeat the two name
different positions for the same allele, and telling them apart needs the reference sequence,
which the node does not hold. A query therefore matches the allele at the place it names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from genomebus.infra.discovery.alleles import normalise_contig

_FORM = re.compile(r"^(?P<sequence>[A-Za-z0-9_.\-]+):g\.(?P<change>.+)$")
_SUBSTITUTION = re.compile(r"^(?P<pos>\d+)(?P<ref>[ACGTN])>(?P<alt>[ACGTN])$", re.IGNORECASE)
_DELETION = re.compile(r"^(?P<pos>\d+)(?:_(?P<last>\d+))?del(?P<ref>[ACGTN]*)$", re.IGNORECASE)
_INSERTION = re.compile(r"^(?P<pos>\d+)_(?P<next>\d+)ins(?P<alt>[ACGTN]+)$", re.IGNORECASE)
_DELINS = re.compile(r"^(?P<pos>\d+)(?:_(?P<last>\d+))?delins(?P<alt>[ACGTN]+)$", re.IGNORECASE)

UNDERSTOOD = ("NC_000017.11:g.43045703G>A, 17:g.123del, chr17:g.123_125del, g.123_124insAT, "
              "g.123delinsAG, g.123_125delinsAG")

Kind = Literal["substitution", "deletion", "insertion", "delins"]


class HgvsError(ValueError):
    """Not a genomic HGVS short form this node reads; the message says what is understood."""


@dataclass(frozen=True)
class HgvsAllele:
    """One allele named in HGVS, in 0-based half-open coordinates over the reference."""

    reference_name: str   # normalised (alleles.normalise_contig)
    kind: Kind
    start: int            # first changed reference base (0-based); an insertion: the gap's position
    end: int              # one past the last changed reference base; == start for an insertion
    ref: str | None       # the replaced reference bases, when the form states them
    alt: str              # the new bases ("" for a deletion)


def parse(short_form: str) -> HgvsAllele:
    """Read ``NC_000017.11:g.43045703G>A`` and the other forms listed above, or raise HgvsError."""
    text = short_form.strip()
    form = _FORM.match(text)
    if form is None:
        raise HgvsError(f"{short_form!r} is not a genomic HGVS short form (<sequence>:g.<change>); "
                        f"understood: {UNDERSTOOD}")
    contig = normalise_contig(form["sequence"])
    change = form["change"]
    if m := _SUBSTITUTION.match(change):
        pos = _position(m["pos"], short_form)
        ref, alt = m["ref"].upper(), m["alt"].upper()
        if ref == alt:
            raise HgvsError(f"{short_form!r} substitutes a base by itself")
        return HgvsAllele(contig, "substitution", pos - 1, pos, ref, alt)
    if m := _DELINS.match(change):
        first, last = _span(m["pos"], m["last"], short_form)
        return HgvsAllele(contig, "delins", first - 1, last, None, m["alt"].upper())
    if m := _DELETION.match(change):
        first, last = _span(m["pos"], m["last"], short_form)
        ref = m["ref"].upper() or None
        if ref is not None and len(ref) != last - first + 1:
            raise HgvsError(f"{short_form!r} names {len(ref)} deleted bases for {last - first + 1} positions")
        return HgvsAllele(contig, "deletion", first - 1, last, ref, "")
    if m := _INSERTION.match(change):
        first, after = _span(m["pos"], m["next"], short_form)
        if after != first + 1:
            raise HgvsError(f"{short_form!r}: an insertion lies between two adjacent positions (e.g. 123_124insAT)")
        return HgvsAllele(contig, "insertion", first, first, "", m["alt"].upper())
    raise HgvsError(f"{short_form!r}: the change {form['change']!r} is not one this node reads; "
                    f"understood: {UNDERSTOOD}")


def _position(text: str, short_form: str) -> int:
    pos = int(text)
    if pos < 1:
        raise HgvsError(f"{short_form!r}: HGVS positions start at 1")
    return pos


def _span(first_text: str, last_text: str | None, short_form: str) -> tuple[int, int]:
    first = _position(first_text, short_form)
    last = _position(last_text, short_form) if last_text else first
    if last < first:
        raise HgvsError(f"{short_form!r}: the range ends before it starts")
    return first, last
