"""The access decider's handlers, run by ``TestKafkaBroker``: a command in, its outcomes out.

The read models and the ledger are fakes (``caught_up`` and ``current_state`` patched, the ledger a
dict); the rules themselves are tested in ``test_access_decider.py``. What is asserted is what
the worker published on the access facts topic, as a consumer would decode it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from faststream import Context

from genomebus.consumers import access_decider
from genomebus.consumers.access_decider import ApplicationState, DatasetFacts, Requested
from genomebus.consumers.access_timer import expire_command
from genomebus.infra.settings import Settings
from genomebus.infra.worker import Transient, Worker
from genomebus.schemas.access import (
    AccessApplyRequested,
    AccessDecideRequested,
    AccessExpireRequested,
    AccessSubmitRequested,
    AccessVetoRequested,
    ApplicationText,
    AsRoles,
    grant_id_of,
    veto_subject,
)
from genomebus.schemas.base import EventModel
from genomebus.schemas.envelope import Envelope, decode, derived_id, encode, new_envelope
from tests.unit.test_access_decider import FakeDuo, fake_duo  # noqa: F401 - the DUO check is a fake here too
from tests.unit.test_worker import resources, running
from tests.unit.test_worker import settings as worker_settings

SOURCE = "urn:genomebus:node:FI"
APPLICATION = uuid.UUID("00000000-0000-4000-8000-0000000000a1")
TRIOS, CANCER = "GDI-FI-DATASET-001", "GDI-FI-DATASET-002"
DAC_A, DAC_B = "FI-DAC-A", "FI-DAC-B"
ALICE = "alice@uni.example"
CATALOGUE = {TRIOS: DatasetFacts(TRIOS, "released", DAC_A, ("DUO:0000042",)),
             CANCER: DatasetFacts(CANCER, "released", DAC_B, ("DUO:0000007",), {"diseases": ["MONDO:0004992"]})}
TEXT = ApplicationText(project_title="Trio de novo rates", purpose="Estimate de novo rates",
                       research_use={"terms": ["DUO:0000042"]})


class FakeLedger:
    """``Ledger`` over a dict: the first outcomes recorded for a command are the ones kept."""

    def __init__(self) -> None:
        self.recorded: dict[UUID, list[Envelope[Any]]] = {}
        self.decisions: list[UUID] = []  # one entry per decision taken

    async def outcomes(self, command_id: UUID) -> list[Envelope[Any]] | None:
        return self.recorded.get(command_id)

    async def record(self, command: Envelope[Any], outcomes: list[Envelope[Any]]) -> list[Envelope[Any]]:
        self.decisions.append(command.id)
        return self.recorded.setdefault(command.id, outcomes)


class FakePool:
    """Stands for the PostgreSQL pool: only the patched functions receive it, nothing queries it."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise AssertionError(f"the decider used the pool directly ({name}); the test patches its reads")


class ReadModels:
    """Patches ``caught_up`` and ``current_state``: the application is ``state``; counts what was asked."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, state: ApplicationState, *, lagging: int = 0) -> None:
        self.state, self.lagging = state, lagging
        self.catch_ups = 0
        self.asked: list[tuple[Any, EventModel]] = []
        monkeypatch.setattr(access_decider, "caught_up", self.caught_up)
        monkeypatch.setattr(access_decider, "current_state", self.current_state)

    async def caught_up(self, settings: Settings, pool: Any) -> None:
        self.catch_ups += 1
        if self.catch_ups <= self.lagging:
            raise Transient("access projection still behind offset 41")

    async def current_state(self, pool: Any, command: EventModel) -> ApplicationState:
        self.asked.append((pool, command))
        return self.state


def unknown() -> ApplicationState:
    return ApplicationState(APPLICATION, None, catalogue=CATALOGUE)


def draft(*datasets: str) -> ApplicationState:
    return ApplicationState(APPLICATION, "draft", ALICE, 0, TEXT,
                            tuple(Requested(d, CATALOGUE[d].dac_id or "", "draft") for d in datasets or (TRIOS,)),
                            CATALOGUE)


def pending(*datasets: str) -> ApplicationState:
    return ApplicationState(APPLICATION, "submitted", ALICE, 1, TEXT,
                            tuple(Requested(d, CATALOGUE[d].dac_id or "", "pending") for d in datasets or (TRIOS,)),
                            CATALOGUE)


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
    return access_decider.build(settings, name=f"access-decider-{uuid.uuid4().hex[:6]}",
                                resources=resources(db=pool, ledger=ledger))


async def send(worker: Worker, *commands: Envelope[Any]) -> list[tuple[bytes, Envelope[Any]]]:
    """Publish ``commands`` to the commands topic; return (key, event) of what the worker published."""
    published: list[tuple[bytes, Envelope[Any]]] = []

    @worker.broker.subscriber(worker.settings.topic("access"), group_id="spy")
    async def spy(body: Any, message: Any = Context()) -> None:
        published.append((message.raw_message.key, decode(message.body)))

    async with running(worker) as broker:
        for command in commands:
            await broker.publish(encode(command), worker.settings.topic("access.commands"),
                                 key=command.subject.encode())
    return published


def command(data: EventModel, actor: str = ALICE, subject: str | None = None) -> Envelope[Any]:
    return new_envelope(data, source=SOURCE, actor=actor, subject=subject)


def assert_outcome_of(cmd: Envelope[Any], event: Envelope[Any], event_type: str, actor: str,
                      subject: str = str(APPLICATION)) -> None:
    assert event.type == event_type
    assert event.id == derived_id(cmd.id, event_type)
    assert event.causation_id == cmd.id and event.correlation_id == cmd.correlation_id
    assert event.actor == actor
    assert event.subject == subject


def apply(*datasets: str) -> AccessApplyRequested:
    return AccessApplyRequested(application_id=APPLICATION, datasets=datasets or (TRIOS,), **TEXT.model_dump(),
                                as_roles=AsRoles(researcher=True))


async def test_an_application_is_published_as_the_researchers_fact_keyed_by_its_id(
        monkeypatch: pytest.MonkeyPatch, settings: Settings, ledger: FakeLedger, pool: FakePool) -> None:
    models = ReadModels(monkeypatch, unknown())
    cmd = command(apply(TRIOS, CANCER))
    worker = build(settings, ledger, pool)

    [(key, fact)] = await send(worker, cmd)

    assert key == str(APPLICATION).encode()
    assert_outcome_of(cmd, fact, "access.requested", ALICE)
    assert fact.source == settings.source
    assert fact.data.applicant == ALICE
    assert [(d.dataset_id, d.dac_id) for d in fact.data.datasets] == [(TRIOS, DAC_A), (CANCER, DAC_B)]
    assert models.asked == [(pool, cmd.data)] and models.catch_ups == 1
    assert ledger.recorded == {cmd.id: [fact]}
    assert worker.processed == 1 and worker.letters == []  # type: ignore[attr-defined]


async def test_a_submission_publishes_the_application_then_its_duo_check_in_that_order(
        monkeypatch: pytest.MonkeyPatch, settings: Settings, ledger: FakeLedger, pool: FakePool) -> None:
    ReadModels(monkeypatch, draft(TRIOS, CANCER))
    cmd = command(AccessSubmitRequested(application_id=APPLICATION))

    [(key, submitted), (_, checked)] = await send(build(settings, ledger, pool), cmd)

    assert key == str(APPLICATION).encode()
    assert_outcome_of(cmd, submitted, "access.submitted", ALICE)
    assert_outcome_of(cmd, checked, "access.checked", ALICE)
    assert submitted.time == checked.time
    assert (submitted.data.round, submitted.data.pending) == (1, (TRIOS, CANCER))
    assert checked.data.duo_version == FakeDuo.version
    assert [v.dataset_id for v in checked.data.verdicts] == [TRIOS, CANCER]
    assert ledger.recorded == {cmd.id: [submitted, checked]}


async def test_a_duplicate_command_gets_every_recorded_outcome_again_without_a_second_decision(
        monkeypatch: pytest.MonkeyPatch, settings: Settings, ledger: FakeLedger, pool: FakePool) -> None:
    models = ReadModels(monkeypatch, draft())
    cmd = command(AccessSubmitRequested(application_id=APPLICATION))

    published = await send(build(settings, ledger, pool), cmd, cmd)

    assert [e.type for _, e in published] == ["access.submitted", "access.checked"] * 2
    assert [e for _, e in published[2:]] == [e for _, e in published[:2]]  # the very envelopes
    assert ledger.decisions == [cmd.id] and models.catch_ups == 1 and len(models.asked) == 1


async def test_a_duplicate_after_the_state_changed_still_gets_the_first_outcome(
        monkeypatch: pytest.MonkeyPatch, settings: Settings, ledger: FakeLedger, pool: FakePool) -> None:
    ReadModels(monkeypatch, pending())
    cmd = command(AccessDecideRequested(application_id=APPLICATION, dataset_id=TRIOS, decision="approve",
                                        expires_at=datetime.now(UTC) + timedelta(days=30),
                                        as_roles=AsRoles(dacs=(DAC_A,))), actor="carol@dac.example")
    [(_, first)] = await send(build(settings, ledger, pool), cmd)
    ReadModels(monkeypatch, ApplicationState(APPLICATION, "decided", ALICE, 1, TEXT,
                                             (Requested(TRIOS, DAC_A, "approved"),), CATALOGUE))

    [(_, again)] = await send(build(settings, ledger, pool), cmd)  # a redelivery after a restart

    assert again == first and again.type == "access.decided" and again.actor == "carol@dac.example"
    assert again.data.grant_id == grant_id_of(APPLICATION, TRIOS)
    assert ledger.decisions == [cmd.id]


async def test_a_refusal_is_the_deciders_own_word_with_reasons_and_the_state(
        monkeypatch: pytest.MonkeyPatch, settings: Settings, ledger: FakeLedger, pool: FakePool) -> None:
    ReadModels(monkeypatch, pending(TRIOS, CANCER))
    cmd = command(AccessDecideRequested(application_id=APPLICATION, dataset_id=CANCER, decision="approve",
                                        expires_at=datetime.now(UTC) + timedelta(days=30),
                                        as_roles=AsRoles(dacs=(DAC_A,))), actor="carol@dac-a.example")

    [(key, rejection)] = await send(build(settings, ledger, pool), cmd)

    assert key == str(APPLICATION).encode()
    assert_outcome_of(cmd, rejection, "access.command_rejected", access_decider.ACTOR)
    assert rejection.data.command_id == cmd.id and rejection.data.command_type == "access.decide_requested"
    assert [r.code for r in rejection.data.reasons] == ["not_dac_member"]
    assert (rejection.data.state, rejection.data.aggregate_id) == ("pending", str(APPLICATION))


async def test_a_central_veto_is_keyed_by_dataset_and_user(
        monkeypatch: pytest.MonkeyPatch, settings: Settings, ledger: FakeLedger, pool: FakePool) -> None:
    ReadModels(monkeypatch, ApplicationState(None, None, catalogue=CATALOGUE))
    subject = veto_subject(TRIOS, ALICE)
    cmd = command(AccessVetoRequested(dataset_id=TRIOS, user_id=ALICE, reason="consent",
                                      as_roles=AsRoles(steward=True)), actor="steward@node.example",
                  subject=subject)

    [(key, fact)] = await send(build(settings, ledger, pool), cmd)

    assert key == subject.encode()
    assert_outcome_of(cmd, fact, "access.vetoed", "steward@node.example", subject=subject)
    assert (fact.data.application_id, fact.data.user_id) == (None, ALICE)


async def test_a_veto_in_an_application_is_published_keyed_by_the_application_however_it_came(
        monkeypatch: pytest.MonkeyPatch, settings: Settings, ledger: FakeLedger, pool: FakePool) -> None:
    ReadModels(monkeypatch, pending())
    cmd = command(AccessVetoRequested(application_id=APPLICATION, dataset_id=TRIOS, user_id=ALICE, reason="consent",
                                      as_roles=AsRoles(steward=True)), actor="steward@node.example")
    assert cmd.subject == TRIOS  # the model's default key, not the application's

    [(key, fact)] = await send(build(settings, ledger, pool), cmd)

    assert key == str(APPLICATION).encode()  # with the application's other facts, in their order
    assert_outcome_of(cmd, fact, "access.vetoed", "steward@node.example")
    assert fact.data.grant_id == grant_id_of(APPLICATION, TRIOS)


async def test_the_timers_expiry_command_sent_twice_ends_the_grant_once(
        monkeypatch: pytest.MonkeyPatch, settings: Settings, ledger: FakeLedger, pool: FakePool) -> None:
    expired_at = datetime.now(UTC) - timedelta(minutes=1)
    ReadModels(monkeypatch, ApplicationState(APPLICATION, "decided", ALICE, 1, TEXT,
                                             (Requested(TRIOS, DAC_A, "approved", expired_at),), CATALOGUE))
    grant = {"grant_id": grant_id_of(APPLICATION, TRIOS), "application_id": APPLICATION, "dataset_id": TRIOS,
             "expires_at": expired_at}
    first, second = expire_command(grant, settings), expire_command(grant, settings)  # two ticks, or a restart
    assert first.id == second.id and isinstance(first.data, AccessExpireRequested)

    [(_, expired), (_, again)] = await send(build(settings, ledger, pool), first, second)

    assert again == expired and expired.type == "access.expired" and expired.actor == "worker:access-timer"
    assert ledger.decisions == [first.id]


async def test_read_models_behind_are_waited_for_then_the_command_is_decided(
        monkeypatch: pytest.MonkeyPatch, ledger: FakeLedger, pool: FakePool) -> None:
    settings = worker_settings(consumer_retry_max_attempts=5)
    models = ReadModels(monkeypatch, unknown(), lagging=2)
    cmd = command(apply())
    worker = build(settings, ledger, pool)

    [(_, fact)] = await send(worker, cmd)

    assert models.catch_ups == 3 and len(models.asked) == 1  # never decided on stale state
    assert_outcome_of(cmd, fact, "access.requested", ALICE)
    assert worker.letters == [] and worker.processed == 1  # type: ignore[attr-defined]


async def test_read_models_that_never_catch_up_park_the_command_as_retries_exhausted(
        monkeypatch: pytest.MonkeyPatch, ledger: FakeLedger, pool: FakePool) -> None:
    settings = worker_settings(consumer_retry_max_attempts=3)
    models = ReadModels(monkeypatch, unknown(), lagging=10**6)
    worker = build(settings, ledger, pool)

    assert await send(worker, command(apply())) == []

    [letter] = worker.letters  # type: ignore[attr-defined]
    assert letter["reason"] == "retries_exhausted" and "still behind" in letter["error"]
    assert models.catch_ups == 3 and models.asked == [] and ledger.decisions == []


def test_the_worker_declares_each_command_it_takes_and_each_fact_it_may_publish(settings: Settings) -> None:
    worker = access_decider.build(settings)
    assert set(worker.handles) == {c.model_fields["type"].default for c in access_decider.TRANSITIONS}
    assert set(worker.produces) == {"access.requested", "access.submitted", "access.checked", "access.decided",
                                    "access.vetoed", "access.revoked", "access.expired", "access.closed",
                                    "access.command_rejected"}
    assert {p.topic for p in worker.outputs} == {settings.topic("access")}
