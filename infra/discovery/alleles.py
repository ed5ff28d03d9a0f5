"""Names and kinds of alleles, shared by the loader and the queries so both speak one language.

Reference names are normalised so that ``chr21``, ``21`` and ``NC_000021.9`` (any RefSeq version of a
GRCh37/GRCh38 chromosome) meet: the index stores ``1``..``22``, ``X``, ``Y``, ``MT``; any other name
(a decoy, an unplaced contig) is kept as written. Variant types are Beacon v2's ``variantType``
vocabulary, derived from REF and ALT as VCF writes them.
"""

from __future__ import annotations

import re

CHROMOSOMES = tuple(str(i) for i in range(1, 23)) + ("X", "Y", "MT")
_REFSEQ = re.compile(r"^NC_0000(?P<n>[0-2][0-9])\.\d+$")
_REFSEQ_NAMES = {**{f"{i:02d}": str(i) for i in range(1, 23)}, "23": "X", "24": "Y"}
_MITO_REFSEQ = {"NC_012920.1", "NC_001807.4"}
_SYMBOLIC = re.compile(r"^<(?P<kind>[A-Z]+)[0-9]*(?::[A-Za-z0-9:_]+)?>$")  # <DEL>, <DUP:TANDEM>, <CN0>
SYMBOLIC_TYPES = {"DEL": "DEL", "INS": "INS", "DUP": "DUP", "INV": "INV", "CNV": "CNV", "CN": "CNV", "BND": "BND"}
VARIANT_TYPES = ("SNP", "MNP", "INS", "DEL", "DUP", "INV", "CNV", "BND", "SV")
"""What the index stores. A query for ``INDEL`` matches INS and DEL; ``SNV`` is taken as SNP."""


def normalise_contig(name: str) -> str:
    """``chr21``/``21``/``NC_000021.9`` → ``21``; ``chrM``/``M``/``MT``/``NC_012920.1`` → ``MT``."""
    text = name.strip()
    if text in _MITO_REFSEQ:
        return "MT"
    if match := _REFSEQ.match(text):
        return _REFSEQ_NAMES.get(match["n"], text)
    bare = text[3:] if text.lower().startswith("chr") else text
    upper = bare.upper()
    if upper in ("M", "MT"):
        return "MT"
    if upper in ("X", "Y"):
        return upper
    if bare.isdigit() and 1 <= int(bare) <= 22:
        return str(int(bare))
    return text


def variant_type(ref: str, alt: str) -> str:
    """The Beacon ``variantType`` of one REF/ALT pair (one allele of a VCF record)."""
    if match := _SYMBOLIC.match(alt):
        return SYMBOLIC_TYPES.get(match["kind"], "SV")
    if "[" in alt or "]" in alt or alt.startswith(".") or alt.endswith("."):
        return "BND"
    if len(ref) == len(alt):
        return "SNP" if len(ref) == 1 else "MNP"
    return "DEL" if len(alt) < len(ref) else "INS"


def query_types(requested: str) -> tuple[str, ...]:
    """The stored types a query's ``variantType`` matches (``INDEL`` → INS and DEL; ``SNV`` → SNP)."""
    wanted = requested.strip().upper()
    if wanted == "INDEL":
        return ("INS", "DEL")
    if wanted == "SNV":
        return ("SNP",)
    return (wanted,)
