"""Reference names and variant types: the one vocabulary of the loader and the queries."""

from __future__ import annotations

import pytest

from genomebus.infra.discovery.alleles import normalise_contig, query_types, variant_type


@pytest.mark.parametrize(("name", "expected"), [
    ("chr21", "21"), ("21", "21"), ("NC_000021.9", "21"), ("NC_000021.8", "21"), ("chr01", "1"),
    ("chrX", "X"), ("x", "X"), ("NC_000023.11", "X"), ("NC_000024.10", "Y"),
    ("chrM", "MT"), ("M", "MT"), ("MT", "MT"), ("NC_012920.1", "MT"),
    ("chrUn_gl000220", "chrUn_gl000220"), ("GL000192.1", "GL000192.1"), ("23", "23"), ("chr0", "chr0"),
])
def test_reference_names_meet_whatever_the_naming(name: str, expected: str) -> None:
    assert normalise_contig(name) == expected


@pytest.mark.parametrize(("ref", "alt", "expected"), [
    ("A", "G", "SNP"), ("AC", "GT", "MNP"), ("AT", "A", "DEL"), ("A", "AT", "INS"),
    ("N", "<DEL>", "DEL"), ("N", "<DUP:TANDEM>", "DUP"), ("N", "<INS:ME:ALU>", "INS"), ("N", "<INV>", "INV"),
    ("N", "<CNV>", "CNV"), ("N", "<CN0>", "CNV"), ("N", "<CN2>", "CNV"), ("N", "<FOO>", "SV"),
    ("G", "G]17:198982]", "BND"), ("T", "]13:123456]T", "BND"), ("A", ".A", "BND"),
])
def test_variant_types_follow_ref_and_alt(ref: str, alt: str, expected: str) -> None:
    assert variant_type(ref, alt) == expected


def test_query_types_widen_indel_and_snv() -> None:
    assert query_types("indel") == ("INS", "DEL")
    assert query_types("SNV") == ("SNP",)
    assert query_types("del") == ("DEL",)
