"""The reception decider's handlers, run by ``TestKafkaBroker``: a command in, its one outcome out.

The read models and the ledger are fakes (``caught_up`` and ``current_state`` patched, the ledger a
dict); the rules themselves are tested in ``test_reception_decider.py``. What is asserted is what
the worker published on the facts topic, as a consumer would decode it.
"""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import pytest
from faststream import Context

from genomebus.consumers import reception_decider
from genomebus.consumers.reception_decider import AliasHolder, DatasetState, FileFacts
from genomebus.infra.settings import Settings
from genomebus.infra.worker import Transient, Worker
from genomebus.schemas.base import EventModel
from genomebus.schemas.envelope import Envelope, decode, derived_id, encode, new_envelope
from genomebus.schemas.reception import (
    DatasetRegisterRequested,
    DatasetReleaseRequested,
    DatasetUpdateRequested,
    DatasetWithdrawRequested,
    FileSubmitRequested,
)
from tests.unit.test_worker import resources, running
from tests.unit.test_worker import settings as worker_settings

DATASET = "GDI-FI-DATASET-001"
SOURCE = "urn:genomebus:node:FI"
STEWARD = "steward@example.org"


class FakeLedger:
    """``Ledger`` over a dict: the first outcome recorded for a command is the one kept."""

    def __init__(self) -> None:
        self.outcomes: dict[UUID, Envelope[Any]] = {}
        self.recorded: list[UUID] = []  # one entry per decision taken

    async def outcome(self, command_id: UUID) -> Envelope[Any] | None:
        return self.outcomes.get(command_id)

    async def accession(self, file_id: UUID, node_id: str, pool: Any) -> str:
        """The real one numbers files under a lock in PostgreSQL; here, in order of first request."""
        self.numbers = getattr(self, "numbers", {})
        number = self.numbers.setdefault(file_id, len(self.numbers) + 1)
        return f"GDI-{node_id}-FILE-{number:08d}"

    async def claim_alias(self, alias: str, file_id: UUID, dataset_id: str, node_id: str,
                          pool: Any) -> AliasHolder | None:
        """The real one claims under a lock in PostgreSQL; here the first claim of an alias wins."""
        self.aliases = getattr(self, "aliases", {})
        holder = self.aliases.setdefault(alias, AliasHolder(file_id, dataset_id))
        return holder if holder.file_id != file_id else None

    async def record(self, command: Envelope[Any], outcome: Envelope[Any]) -> Envelope[Any]:
        self.recorded.append(command.id)
        return self.outcomes.setdefault(command.id, outcome)


class FakePool:
    """Stands for the PostgreSQL pool: only the patched functions receive it, nothing queries it."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise AssertionError(f"the decider used the pool directly ({name}); the test patches its reads")


class ReadModels:
    """Patches ``caught_up`` and ``current_state``: the dataset is ``state``; counts what was asked."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, state: DatasetState, *, lagging: int = 0) -> None:
        self.state, self.lagging = state, lagging
        self.catch_ups = 0
        self.asked: list[tuple[Any, str]] = []
        self.aliases_asked: list[str | None] = []
        monkeypatch.setattr(reception_decider, "caught_up", self.caught_up)
        monkeypatch.setattr(reception_decider, "current_state", self.current_state)

    async def caught_up(self, settings: Settings, pool: Any) -> None:
        self.catch_ups += 1
        if self.catch_ups <= self.lagging:
            raise Transient("datasets projection still behind offset 41")

    async def current_state(self, pool: Any, dataset_id: str, *, alias: str | None = None) -> DatasetState:
        self.asked.append((pool, dataset_id))
        self.aliases_asked.append(alias)
        return self.state


@pytest.fixture
def settings() -> Settings:
    return worker_settings()  # a fresh topic prefix; retries after a millisecond


@pytest.fixture
def ledger() -> FakeLedger:
    return FakeLedger()


@pytest.fixture
def pool() -> FakePool:
    return FakePool()


def build(settings: Settings, ledger: FakeLedger, pool: FakePool) -> Worker:
    return reception_decider.build(settings, name=f"reception-decider-{uuid.uuid4().hex[:6]}",
                                   resources=resources(db=pool, ledger=ledger))


async def send(worker: Worker, *commands: Envelope[Any]) -> list[tuple[bytes, Envelope[Any]]]:
    """Publish ``commands`` to the commands topic; return (key, event) of what the worker published."""
    facts = worker.settings.topic("reception")
    published: list[tuple[bytes, Envelope[Any]]] = []

    @worker.broker.subscriber(facts, group_id="spy")
    async def spy(body: Any, message: Any = Context()) -> None:
        published.append((message.raw_message.key, decode(message.body)))

    async with running(worker) as broker:
        for command in commands:
            await broker.publish(encode(command), worker.settings.topic("reception.commands"),
                                 key=command.subject.encode())
    return published


def command(data: EventModel, actor: str = STEWARD) -> Envelope[Any]:
    return new_envelope(data, source=SOURCE, actor=actor)


def register(**fields: Any) -> DatasetRegisterRequested:
    return DatasetRegisterRequested(**{"dataset_id": DATASET, "title": "Finnish trios",
                                       "data_use": ("DUO:0000042",), **fields})


def submit() -> FileSubmitRequested:
    return FileSubmitRequested(dataset_id=DATASET, file_id=uuid.uuid4(), filename="a.bam", bucket="genomebus-inbox",
                               object_key=f"{DATASET}/{'a' * 64}/a.bam", size=10, sha256="a" * 64, md5="b" * 32,
                               declared_format="BAM", alias="proband")


def assert_outcome_of(cmd: Envelope[Any], event: Envelope[Any], event_type: str, actor: str,
                      subject: str = DATASET) -> None:
    assert event.type == event_type
    assert event.id == derived_id(cmd.id, event_type)
    assert event.causation_id == cmd.id and event.correlation_id == cmd.correlation_id
    assert event.actor == actor
    assert event.subject == subject


async def test_a_registration_of_a_new_dataset_is_published_as_the_stewards_fact(
        monkeypatch: pytest.MonkeyPatch, settings: Settings, ledger: FakeLedger, pool: FakePool) -> None:
    models = ReadModels(monkeypatch, DatasetState(DATASET, None))
    cmd = command(register(keywords=("trio",)))
    worker = build(settings, ledger, pool)

    [(key, fact)] = await send(worker, cmd)

    assert key == DATASET.encode()
    assert_outcome_of(cmd, fact, "dataset.registered", STEWARD)
    assert fact.source == settings.source
    assert (fact.data.dataset_id, fact.data.title, fact.data.keywords) == (DATASET, "Finnish trios", ("trio",))
    assert models.asked == [(pool, DATASET)] and models.catch_ups == 1
    assert ledger.outcomes == {cmd.id: fact}
    assert worker.processed == 1 and worker.letters == []  # type: ignore[attr-defined]


async def test_a_registration_of_an_existing_dataset_is_rejected_by_the_decider(
        monkeypatch: pytest.MonkeyPatch, settings: Settings, ledger: FakeLedger, pool: FakePool) -> None:
    ReadModels(monkeypatch, DatasetState(DATASET, "released"))
    cmd = command(register(title="another title"))

    [(key, rejection)] = await send(build(settings, ledger, pool), cmd)

    assert key == DATASET.encode()
    assert_outcome_of(cmd, rejection, "reception.command_rejected", reception_decider.ACTOR)
    assert rejection.actor == "worker:reception-decider"
    assert rejection.data.command_id == cmd.id and rejection.data.command_type == "dataset.register_requested"
    assert [r.code for r in rejection.data.reasons] == ["already_registered"]
    assert rejection.data.state == "released"


async def test_a_release_with_a_file_not_archived_is_rejected_naming_the_file(
        monkeypatch: pytest.MonkeyPatch, settings: Settings, ledger: FakeLedger, pool: FakePool) -> None:
    ReadModels(monkeypatch, DatasetState(DATASET, "registered", (
        FileFacts(uuid.uuid4(), "a.bam", "archived", "GDI-FI-FILE-1"),
        FileFacts(uuid.uuid4(), "calls.vcf.gz", "uploaded"),
    )))
    cmd = command(DatasetReleaseRequested(dataset_id=DATASET))

    [(_, rejection)] = await send(build(settings, ledger, pool), cmd)

    assert_outcome_of(cmd, rejection, "reception.command_rejected", reception_decider.ACTOR)
    assert [(r.code, r.message) for r in rejection.data.reasons] == [
        ("file_not_archived", "calls.vcf.gz: uploaded (waiting for QC)")]
    assert rejection.data.state == "registered"


async def test_a_duplicate_command_gets_the_recorded_outcome_again_without_a_second_decision(
        monkeypatch: pytest.MonkeyPatch, settings: Settings, ledger: FakeLedger, pool: FakePool) -> None:
    models = ReadModels(monkeypatch, DatasetState(DATASET, None))
    cmd = command(register())

    [(_, first), (_, second)] = await send(build(settings, ledger, pool), cmd, cmd)

    assert second == first  # the very envelope: same id, same time, same data
    assert_outcome_of(cmd, first, "dataset.registered", STEWARD)
    assert ledger.recorded == [cmd.id]  # decided once
    assert len(models.asked) == 1 and models.catch_ups == 1  # the redelivery read nothing


async def test_a_duplicate_after_the_state_changed_still_gets_the_first_outcome(
        monkeypatch: pytest.MonkeyPatch, settings: Settings, ledger: FakeLedger, pool: FakePool) -> None:
    ReadModels(monkeypatch, DatasetState(DATASET, None))
    cmd = command(register())
    [(_, first)] = await send(build(settings, ledger, pool), cmd)
    ReadModels(monkeypatch, DatasetState(DATASET, "registered"))  # its own fact is applied by now

    [(_, again)] = await send(build(settings, ledger, pool), cmd)  # a redelivery after a restart

    assert again == first and again.type == "dataset.registered"
    assert ledger.recorded == [cmd.id]


async def test_an_accepted_file_submission_is_published_as_file_uploaded_with_the_same_fields(
        monkeypatch: pytest.MonkeyPatch, settings: Settings, ledger: FakeLedger, pool: FakePool) -> None:
    ReadModels(monkeypatch, DatasetState(DATASET, "registered"))
    cmd = command(submit(), actor="node-system-1")

    [(key, fact)] = await send(build(settings, ledger, pool), cmd)

    # The command is keyed by its dataset; the fact, like every file event, by the file.
    assert key == str(cmd.data.file_id).encode()
    assert_outcome_of(cmd, fact, "file.uploaded", "node-system-1", subject=str(cmd.data.file_id))
    assert fact.data.model_dump(exclude={"type", "accession"}) == cmd.data.model_dump(exclude={"type"})
    assert fact.data.accession == "GDI-FI-FILE-00000001"  # the node's first, eight digits wide


async def test_a_file_submitted_again_keeps_the_accession_the_log_gave_it(
        monkeypatch: pytest.MonkeyPatch, settings: Settings, ledger: FakeLedger, pool: FakePool) -> None:
    data = submit()
    earlier = FileFacts(data.file_id, data.filename, "qc_failed", "GDI-FI-FILE-00000042", ("object_missing",))
    ReadModels(monkeypatch, DatasetState(DATASET, "registered", (earlier,)))

    [(_, fact)] = await send(build(settings, ledger, pool), command(data, actor="node-system-1"))

    assert fact.type == "file.uploaded" and fact.data.accession == "GDI-FI-FILE-00000042"
    assert getattr(ledger, "numbers", {}) == {}  # no new number handed out


async def test_a_submission_whose_alias_another_file_holds_is_rejected_and_given_no_accession(
        monkeypatch: pytest.MonkeyPatch, settings: Settings, ledger: FakeLedger, pool: FakePool) -> None:
    holder = AliasHolder(uuid.uuid4(), "GDI-FI-DATASET-002", "GDI-FI-FILE-00000005")
    models = ReadModels(monkeypatch, DatasetState(DATASET, "registered", (), (holder,)))
    cmd = command(submit(), actor="node-system-1")

    [(key, rejection)] = await send(build(settings, ledger, pool), cmd)

    assert models.aliases_asked == ["proband"]  # the read models were asked who holds it
    assert key == DATASET.encode()
    assert_outcome_of(cmd, rejection, "reception.command_rejected", reception_decider.ACTOR)
    [reason] = rejection.data.reasons
    assert reason.code == "alias_taken" and "GDI-FI-FILE-00000005" in reason.message
    assert getattr(ledger, "numbers", {}) == {} and getattr(ledger, "aliases", {}) == {}


async def test_an_alias_another_decider_claimed_a_moment_ago_is_refused_too(
        monkeypatch: pytest.MonkeyPatch, settings: Settings, ledger: FakeLedger, pool: FakePool) -> None:
    ReadModels(monkeypatch, DatasetState(DATASET, "registered"))  # its fact has not reached the read models
    first = command(submit(), actor="node-system-1")
    second = command(submit(), actor="node-system-1")  # other bytes, so another file, the same alias

    [(_, accepted), (_, refused)] = await send(build(settings, ledger, pool), first, second)

    assert accepted.type == "file.uploaded" and accepted.data.alias == "proband"
    assert ledger.aliases["proband"].file_id == first.data.file_id
    assert refused.type == "reception.command_rejected"
    assert [r.code for r in refused.data.reasons] == ["alias_taken"]
    assert f"file {first.data.file_id} (not yet accessioned)" in refused.data.reasons[0].message
    assert list(ledger.numbers) == [first.data.file_id]  # the refused file was given no accession


async def test_the_same_file_again_with_its_alias_is_accepted_and_keeps_its_claim(
        monkeypatch: pytest.MonkeyPatch, settings: Settings, ledger: FakeLedger, pool: FakePool) -> None:
    data = submit()
    ReadModels(monkeypatch, DatasetState(DATASET, "registered", (), (AliasHolder(data.file_id, DATASET),)))

    outcomes = await send(build(settings, ledger, pool), command(data), command(data))  # two commands, one file

    assert [e.type for _, e in outcomes] == ["file.uploaded", "file.uploaded"]
    assert ledger.aliases == {"proband": AliasHolder(data.file_id, DATASET)}


async def test_commands_without_an_alias_ask_for_no_holders(
        monkeypatch: pytest.MonkeyPatch, settings: Settings, ledger: FakeLedger, pool: FakePool) -> None:
    models = ReadModels(monkeypatch, DatasetState(DATASET, "registered"))
    data = submit().model_copy(update={"alias": None})

    [(_, fact), (_, released)] = await send(build(settings, ledger, pool), command(data),
                                            command(DatasetReleaseRequested(dataset_id=DATASET)))

    assert fact.type == "file.uploaded" and released.type == "reception.command_rejected"
    assert models.aliases_asked == [None, None] and getattr(ledger, "aliases", {}) == {}


@pytest.mark.parametrize(("data", "state", "fact_type"), [
    (DatasetUpdateRequested(dataset_id=DATASET, title="New title", data_use=("DUO:0000007",)), "released",
     "dataset.updated"),
    (DatasetWithdrawRequested(dataset_id=DATASET, reason="consent withdrawn"), "registered", "dataset.withdrawn"),
    (DatasetWithdrawRequested(dataset_id=DATASET, reason="consent withdrawn"), "withdrawn",
     "reception.command_rejected"),
])
async def test_updates_and_withdrawals_get_their_outcome_too(
        monkeypatch: pytest.MonkeyPatch, settings: Settings, ledger: FakeLedger, pool: FakePool,
        data: EventModel, state: str, fact_type: str) -> None:
    ReadModels(monkeypatch, DatasetState(DATASET, state))
    cmd = command(data)

    [(_, outcome)] = await send(build(settings, ledger, pool), cmd)

    actor = reception_decider.ACTOR if fact_type == "reception.command_rejected" else STEWARD
    assert_outcome_of(cmd, outcome, fact_type, actor)


async def test_read_models_behind_are_waited_for_then_the_command_is_decided(
        monkeypatch: pytest.MonkeyPatch, ledger: FakeLedger, pool: FakePool) -> None:
    settings = worker_settings(consumer_retry_max_attempts=5)
    models = ReadModels(monkeypatch, DatasetState(DATASET, None), lagging=2)
    cmd = command(register())
    worker = build(settings, ledger, pool)

    [(_, fact)] = await send(worker, cmd)

    assert models.catch_ups == 3 and len(models.asked) == 1  # never decided on stale state
    assert_outcome_of(cmd, fact, "dataset.registered", STEWARD)
    assert worker.letters == [] and worker.processed == 1  # type: ignore[attr-defined]


async def test_read_models_that_never_catch_up_park_the_command_as_retries_exhausted(
        monkeypatch: pytest.MonkeyPatch, ledger: FakeLedger, pool: FakePool) -> None:
    settings = worker_settings(consumer_retry_max_attempts=3)
    models = ReadModels(monkeypatch, DatasetState(DATASET, None), lagging=10**6)
    worker = build(settings, ledger, pool)

    assert await send(worker, command(register())) == []

    [letter] = worker.letters  # type: ignore[attr-defined]
    assert letter["reason"] == "retries_exhausted" and "still behind" in letter["error"]
    assert models.catch_ups == 3 and models.asked == [] and ledger.recorded == []
