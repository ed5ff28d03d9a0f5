"""The release decision: a dataset goes public only when every file is archived."""

from __future__ import annotations

from genomebus.producers.datasets import decide_release


def file(name: str, state: str, accession: str | None = None, reasons: list[dict] | None = None) -> dict:
    return {"filename": name, "alias": None, "state": state, "accession": accession, "qc_reasons": reasons}


def test_every_file_archived_allows_the_release_with_sorted_accessions():
    decision = decide_release("registered", [file("b.vcf.gz", "archived", "GDI-FI-FILE-2"),
                                             file("a.bam", "archived", "GDI-FI-FILE-1")])
    assert decision.allowed
    assert decision.accessions == ("GDI-FI-FILE-1", "GDI-FI-FILE-2")
    assert decision.missing == ()


def test_files_not_archived_are_listed_with_their_state_and_why():
    decision = decide_release("registered", [
        file("a.bam", "archived", "GDI-FI-FILE-1"),
        file("b.vcf.gz", "qc_failed", reasons=[{"code": "unsorted", "message": "…"},
                                               {"code": "invalid_allele", "message": "…"}]),
        file("c.cram", "uploaded"),
        file("d.bcf", "qc_passed"),
    ])
    assert not decision.allowed
    assert decision.reason == "3 of 4 files are not archived"
    assert [(m.file, m.state, m.detail) for m in decision.missing] == [
        ("b.vcf.gz", "qc_failed", "unsorted; invalid_allele"),
        ("c.cram", "uploaded", "waiting for QC"),
        ("d.bcf", "qc_passed", "waiting for the archive"),
    ]


def test_a_dataset_without_files_or_registration_is_not_released():
    assert decide_release("registered", []).reason == "the dataset has no files yet"
    assert not decide_release(None, [file("a.bam", "archived", "GDI-FI-FILE-1")]).allowed
    assert "released" in decide_release("released", [file("a.bam", "archived", "GDI-FI-FILE-1")]).reason
    assert "withdrawn" in decide_release("withdrawn", [file("a.bam", "archived", "GDI-FI-FILE-1")]).reason
