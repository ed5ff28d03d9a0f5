"""The reception decider's rules: each command against each state of a dataset, as a pure function."""

from __future__ import annotations

import uuid

import pytest

from genomebus.consumers.reception_decider import AliasHolder, DatasetState, FileFacts, decide
from genomebus.schemas.reception import (
    CommandRejected,
    DatasetRegistered,
    DatasetRegisterRequested,
    DatasetReleased,
    DatasetReleaseRequested,
    DatasetUpdated,
    DatasetUpdateRequested,
    DatasetWithdrawn,
    DatasetWithdrawRequested,
    FileSubmitRequested,
    FileUploaded,
)

DATASET = "GDI-FI-DATASET-001"
COMMAND_ID = uuid.uuid4()


def state(lifecycle: str | None, *files: FileFacts) -> DatasetState:
    return DatasetState(DATASET, lifecycle, files)


def archived(name: str, accession: str) -> FileFacts:
    return FileFacts(uuid.uuid4(), name, "archived", accession)


def register(**fields: object) -> DatasetRegisterRequested:
    return DatasetRegisterRequested(**{"dataset_id": DATASET, "title": "Finnish trios",
                                       "data_use": ("DUO:0000042",), **fields})


def submit(file_id: uuid.UUID | None = None, alias: str | None = None) -> FileSubmitRequested:
    return FileSubmitRequested(dataset_id=DATASET, file_id=file_id or uuid.uuid4(), filename="a.bam",
                               bucket="inbox", object_key=f"{DATASET}/x/a.bam", size=10, sha256="a" * 64,
                               md5="b" * 32, declared_format="BAM", alias=alias)


def codes(outcome: object) -> list[str]:
    assert isinstance(outcome, CommandRejected), outcome
    assert outcome.command_id == COMMAND_ID
    return [r.code for r in outcome.reasons]


def test_register_a_new_dataset_carries_the_whole_description():
    fact = decide(state(None), register(keywords=("trio",), description="d"), COMMAND_ID)
    assert isinstance(fact, DatasetRegistered)
    assert (fact.dataset_id, fact.title, fact.keywords, fact.description) == (DATASET, "Finnish trios", ("trio",), "d")


@pytest.mark.parametrize("lifecycle", ["registered", "released", "withdrawn"])
def test_a_second_registration_is_rejected_and_names_update(lifecycle: str):
    outcome = decide(state(lifecycle), register(title="another title"), COMMAND_ID)
    assert codes(outcome) == ["already_registered"]
    assert "dataset update" in outcome.reasons[0].message
    assert outcome.state == lifecycle


def test_update_replaces_the_description_of_a_registered_or_released_dataset():
    command = DatasetUpdateRequested(dataset_id=DATASET, title="New title", data_use=("DUO:0000007",))
    for lifecycle in ("registered", "released"):
        fact = decide(state(lifecycle), command, COMMAND_ID)
        assert isinstance(fact, DatasetUpdated) and fact.title == "New title"
    assert codes(decide(state(None), command, COMMAND_ID)) == ["unknown_dataset"]
    assert codes(decide(state("withdrawn"), command, COMMAND_ID)) == ["dataset_withdrawn"]


def test_release_lists_the_sorted_accessions_when_every_file_is_archived():
    fact = decide(state("registered", archived("b.vcf.gz", "GDI-FI-FILE-00000002"),
                        archived("a.bam", "GDI-FI-FILE-00000001")), DatasetReleaseRequested(dataset_id=DATASET),
                  COMMAND_ID)
    assert isinstance(fact, DatasetReleased)
    assert fact.files == ("GDI-FI-FILE-00000001", "GDI-FI-FILE-00000002")


def test_release_with_files_not_archived_names_each_and_why():
    outcome = decide(state("registered", archived("a.bam", "GDI-FI-FILE-1"),
                           FileFacts(uuid.uuid4(), "b.vcf.gz", "qc_failed", None, ("unsorted", "invalid_allele")),
                           FileFacts(uuid.uuid4(), "c.cram", "uploaded"),
                           FileFacts(uuid.uuid4(), "d.bcf", "qc_passed")),
                     DatasetReleaseRequested(dataset_id=DATASET), COMMAND_ID)
    assert codes(outcome) == ["file_not_archived"] * 3
    assert [r.message for r in outcome.reasons] == [
        "b.vcf.gz: qc_failed (unsorted, invalid_allele)",
        "c.cram: uploaded (waiting for QC)",
        "d.bcf: qc_passed (waiting for the archive)",
    ]


@pytest.mark.parametrize(("lifecycle", "files", "code"), [
    (None, (), "unknown_dataset"),
    ("registered", (), "no_files"),
    ("released", (), "already_released"),
    ("withdrawn", (), "dataset_withdrawn"),
])
def test_release_refusals(lifecycle: str | None, files: tuple[FileFacts, ...], code: str):
    assert codes(decide(state(lifecycle, *files), DatasetReleaseRequested(dataset_id=DATASET), COMMAND_ID)) == [code]


def test_withdraw_is_allowed_once_from_registered_or_released():
    command = DatasetWithdrawRequested(dataset_id=DATASET, reason="  consent withdrawn  ")
    for lifecycle in ("registered", "released"):
        fact = decide(state(lifecycle), command, COMMAND_ID)
        assert isinstance(fact, DatasetWithdrawn) and fact.reason == "consent withdrawn"
    assert codes(decide(state("withdrawn"), command, COMMAND_ID)) == ["already_withdrawn"]
    assert codes(decide(state(None), command, COMMAND_ID)) == ["unknown_dataset"]


def test_a_blank_withdrawal_reason_is_not_a_command():
    with pytest.raises(ValueError, match="reason"):
        DatasetWithdrawRequested(dataset_id=DATASET, reason="   ")


def test_a_file_joins_only_a_registered_dataset():
    command = submit()
    fact = decide(state("registered"), command, COMMAND_ID)
    assert isinstance(fact, FileUploaded)
    assert fact.model_dump(exclude={"type", "accession"}) == command.model_dump(exclude={"type"})
    assert fact.accession is None  # the handler gives it the node's next accession (Ledger.accession)
    assert codes(decide(state(None), command, COMMAND_ID)) == ["unknown_dataset"]
    assert codes(decide(state("released"), command, COMMAND_ID)) == ["dataset_released"]
    assert codes(decide(state("withdrawn"), command, COMMAND_ID)) == ["dataset_withdrawn"]


def test_the_same_bytes_already_archived_are_not_taken_twice_but_a_failed_file_may_come_again():
    done = archived("a.bam", "GDI-FI-FILE-00000042")
    outcome = decide(state("registered", done), submit(done.file_id), COMMAND_ID)
    assert codes(outcome) == ["already_archived"]
    assert "GDI-FI-FILE-00000042" in outcome.reasons[0].message
    failed = FileFacts(uuid.uuid4(), "a.bam", "qc_failed", None, ("object_missing",))
    assert isinstance(decide(state("registered", failed), submit(failed.file_id), COMMAND_ID), FileUploaded)


def holding(*holders: AliasHolder, lifecycle: str = "registered") -> DatasetState:
    return DatasetState(DATASET, lifecycle, (), holders)


def test_an_alias_another_file_holds_is_refused_naming_the_holders_accession():
    other = AliasHolder(uuid.uuid4(), "GDI-FI-DATASET-002", "GDI-FI-FILE-00000007")

    outcome = decide(holding(other), submit(alias="NA12878"), COMMAND_ID)

    assert codes(outcome) == ["alias_taken"]
    assert outcome.reasons[0].message == ("alias 'NA12878' is already GDI-FI-FILE-00000007's, in "
                                          "GDI-FI-DATASET-002; submit with another --alias")
    assert outcome.state == "registered" and outcome.command_type == "file.submit_requested"


def test_a_holder_not_yet_accessioned_is_named_by_its_file_id():
    other = AliasHolder(uuid.uuid4(), DATASET)  # in this very dataset, a moment ago

    outcome = decide(holding(other), submit(alias="proband"), COMMAND_ID)

    assert codes(outcome) == ["alias_taken"]
    assert f"file {other.file_id} (not yet accessioned)" in outcome.reasons[0].message
    assert "\n" not in outcome.reasons[0].message  # one plain line for the submitter


def test_the_same_file_submitted_again_with_its_own_alias_is_accepted():
    file_id = uuid.uuid4()
    mine = AliasHolder(file_id, DATASET, "GDI-FI-FILE-00000003")

    fact = decide(holding(mine), submit(file_id, alias="proband"), COMMAND_ID)

    assert isinstance(fact, FileUploaded) and fact.alias == "proband"


def test_the_alias_is_refused_when_held_by_another_file_beside_the_submitted_one():
    file_id = uuid.uuid4()
    holders = (AliasHolder(file_id, DATASET), AliasHolder(uuid.uuid4(), "GDI-FI-DATASET-002", "GDI-FI-FILE-00000009"))

    outcome = decide(holding(*holders), submit(file_id, alias="proband"), COMMAND_ID)

    assert codes(outcome) == ["alias_taken"] and "GDI-FI-FILE-00000009" in outcome.reasons[0].message


def test_a_file_without_an_alias_never_meets_an_alias_rule():
    fact = decide(holding(AliasHolder(uuid.uuid4(), "GDI-FI-DATASET-002", "GDI-FI-FILE-00000007")), submit(),
                  COMMAND_ID)
    assert isinstance(fact, FileUploaded) and fact.alias is None


@pytest.mark.parametrize(("lifecycle", "code"), [(None, "unknown_dataset"), ("released", "dataset_released")])
def test_a_dataset_that_takes_no_files_is_the_reason_before_the_alias(lifecycle: str | None, code: str):
    taken = AliasHolder(uuid.uuid4(), "GDI-FI-DATASET-002", "GDI-FI-FILE-00000007")
    assert codes(decide(holding(taken, lifecycle=lifecycle), submit(alias="proband"), COMMAND_ID)) == [code]


def test_every_rejection_is_keyed_by_the_dataset():
    outcome = decide(state(None), DatasetReleaseRequested(dataset_id=DATASET), COMMAND_ID)
    assert outcome.aggregate_id == DATASET and outcome.command_type == "dataset.release_requested"
