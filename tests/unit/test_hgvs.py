"""Genomic HGVS short forms read as alleles in Beacon's 0-based half-open coordinates."""

from __future__ import annotations

import pytest

from genomebus.infra.discovery.hgvs import HgvsAllele, HgvsError, parse


@pytest.mark.parametrize(("form", "allele"), [
    ("NC_000017.11:g.43045703G>A", HgvsAllele("17", "substitution", 43045702, 43045703, "G", "A")),
    ("chr17:g.43045703g>a", HgvsAllele("17", "substitution", 43045702, 43045703, "G", "A")),
    ("NC_000023.11:g.1000C>T", HgvsAllele("X", "substitution", 999, 1000, "C", "T")),
    ("17:g.123del", HgvsAllele("17", "deletion", 122, 123, None, "")),
    ("chr17:g.123_125del", HgvsAllele("17", "deletion", 122, 125, None, "")),
    ("17:g.123_125delACT", HgvsAllele("17", "deletion", 122, 125, "ACT", "")),
    ("17:g.123_124insAT", HgvsAllele("17", "insertion", 123, 123, "", "AT")),
    ("17:g.123delinsAG", HgvsAllele("17", "delins", 122, 123, None, "AG")),
    ("17:g.123_125delinsAG", HgvsAllele("17", "delins", 122, 125, None, "AG")),
    ("chrUn_KI270302v1:g.5A>C", HgvsAllele("chrUn_KI270302v1", "substitution", 4, 5, "A", "C")),
])
def test_forms_become_alleles(form: str, allele: HgvsAllele) -> None:
    assert parse(form) == allele


@pytest.mark.parametrize(("form", "says"), [
    ("43045703G>A", "not a genomic HGVS short form"),
    ("NC_000017.11:c.43G>A", "not a genomic HGVS short form"),
    ("NC_000017.11:g.43045703G>G", "by itself"),
    ("17:g.0G>A", "start at 1"),
    ("17:g.125_123del", "ends before it starts"),
    ("17:g.123_125delAC", "2 deleted bases for 3 positions"),
    ("17:g.123_125insAT", "adjacent positions"),
    ("17:g.123_125dup", "is not one this node reads"),
    ("17:g.123_125inv", "is not one this node reads"),
    ("17:g.(120_123)del", "is not one this node reads"),
    ("17:g.123+5G>A", "is not one this node reads"),
    ("17:g.[123G>A;125del]", "is not one this node reads"),
])
def test_other_forms_are_refused_with_what_is_understood(form: str, says: str) -> None:
    with pytest.raises(HgvsError, match=says.replace("(", r"\(").replace("[", r"\[")):
        parse(form)
    with pytest.raises(ValueError):
        parse(form)
