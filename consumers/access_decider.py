"""Access decider: the one place where Data Access Management's commands become facts.

- in: ``genomebus.access.commands`` (consumer group ``genomebus-access-decider``):
  ``access.apply_requested``, ``access.submit_requested``, ``access.decide_requested``,
  ``access.veto_requested``, ``access.revoke_requested``, ``access.expire_requested`` (from the
  access timer), ``access.close_requested``; keyed by the application id, a veto of a grant given
  elsewhere by ``<dataset>/<user>`` (``veto_subject``)
- out: on ``genomebus.access``, keyed like the command, with ids derived from it: the fact
  (``access.requested``, ``access.submitted`` followed by ``access.checked``, ``access.decided``,
  ``access.vetoed``, ``access.revoked``, ``access.expired``, ``access.closed``) carrying the asker
  as ``actor``, or ``access.command_rejected`` (actor ``worker:access-decider``) with
  machine-readable reasons and the state of the application (or of the dataset in it)
- decides: ``decide(state, command, ...)``, a pure function; the rules are the transition table
  ``TRANSITIONS`` and the checks of who may ask beside it. A submission is checked against each
  pending dataset's DUO conditions (``duo.check_all``): advice for the DACs, never a refusal
- state: the ``access`` read model (the application, its datasets, vetoes) once it has applied
  everything on ``genomebus.access``, and the ``datasets`` read model (state, DAC, DUO terms) once
  it has applied everything on ``genomebus.reception``; its own ledger ``decider_access.decisions``
  (migration ``0004``) keeps the outcomes of every command
- settings: ``read_your_writes_timeout_s`` (how long to wait for the read models), ``grant_max_days``
  (the longest grant a DAC may approve)

As in the reception decider, an application's commands share a partition and are decided one at
a time, in order, each against the outcome of the one before (published and acknowledged before
that command's offset was committed). A redelivered command re-publishes the outcomes recorded in
the ledger, unchanged: all of them, in the same order, with the same ids and times, so the timer's
expiry command (its id derived from the grant) is decided once however often it is sent.

The one subtle case: a veto of a grant given elsewhere (no application here) is keyed by dataset
and user, so it is not ordered with the applications of that user. It does not need to be: a veto
lives in its own table that ``active_grant`` consults, so an approval decided a moment before the
veto was projected is still never active after it, and an approval decided after it is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from faststream import Context

from genomebus.infra import db, kafka, telemetry
from genomebus.infra.ledger import OutcomesLedger
from genomebus.infra.projection import wait_for_position
from genomebus.infra.readmodels import access, datasets
from genomebus.infra.readmodels.access import AccessProjection
from genomebus.infra.readmodels.datasets import DatasetsProjection
from genomebus.infra.settings import Settings
from genomebus.infra.worker import Resources, Transient, Worker, WorkerSettings
from genomebus.schemas import duo
from genomebus.schemas.access import (
    AccessApplyRequested,
    AccessChecked,
    AccessClosed,
    AccessCloseRequested,
    AccessCommandRejected,
    AccessDecided,
    AccessDecideRequested,
    AccessExpired,
    AccessExpireRequested,
    AccessRequested,
    AccessRevoked,
    AccessRevokeRequested,
    AccessSubmitted,
    AccessSubmitRequested,
    AccessVetoed,
    AccessVetoRequested,
    ApplicationText,
    DatasetDac,
    grant_id_of,
    veto_subject,
)
from genomebus.schemas.base import EventModel
from genomebus.schemas.envelope import Envelope, new_envelope
from genomebus.schemas.reception import Reason

ACTOR = "worker:access-decider"
LEDGER = "decider_access.decisions"


# -- the decision: pure ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetFacts:
    """A dataset of this node as the ``datasets`` read model has it: what access to it depends on."""

    dataset_id: str
    state: str | None  # registered, released, withdrawn; None: not a dataset of this node
    dac_id: str | None = None
    data_use: tuple[str, ...] = ()
    data_use_parameters: Mapping[str, Any] = field(default_factory=dict)

    def conditions(self) -> duo.DataUseConditions:
        return duo.DataUseConditions(terms=self.data_use, **self.data_use_parameters)


@dataclass(frozen=True)
class Requested:
    """One dataset in an application and where it stands there."""

    dataset_id: str
    dac_id: str
    state: str  # draft, pending, approved, rejected, returned, vetoed, revoked, expired, closed
    expires_at: datetime | None = None


@dataclass(frozen=True)
class ApplicationState:
    """What a command is decided against: the application (``state`` None: unknown), and the node's datasets.

    ``catalogue`` holds the node's datasets that the command or the application names (a dataset
    absent from it is unknown here); ``vetoed`` the (dataset, user) pairs a steward vetoed, among
    those the command is about.
    """

    application_id: UUID | None
    state: str | None
    applicant: str | None = None
    round: int = 0
    text: ApplicationText | None = None
    datasets: tuple[Requested, ...] = ()
    catalogue: Mapping[str, DatasetFacts] = field(default_factory=dict)
    vetoed: frozenset[tuple[str, str]] = frozenset()

    def dataset(self, dataset_id: str) -> Requested | None:
        return next((d for d in self.datasets if d.dataset_id == dataset_id), None)

    def facts(self, dataset_id: str) -> DatasetFacts:
        return self.catalogue.get(dataset_id) or DatasetFacts(dataset_id, None)


@dataclass(frozen=True)
class Limits:
    """What settings bound in a decision."""

    grant_max_days: int

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(grant_max_days=settings.grant_max_days)


@dataclass(frozen=True)
class Transition:
    """Which states a command may act on (of the application, of the dataset in it) and what it makes of them."""

    fact: str
    application: tuple[str | None, ...] | None = None  # None: any
    dataset: tuple[str, ...] | None = None
    refusal: str = "illegal_transition"  # the reason code when the state does not allow it


_ENDED = ("rejected", "revoked", "expired")

TRANSITIONS: dict[type[EventModel], Transition] = {
    # who may ask: a researcher                           → an application in draft, each dataset draft
    AccessApplyRequested: Transition("access.requested", application=(None,)),
    # the applicant; datasets draft or returned           → pending (round + 1), and the DUO check
    AccessSubmitRequested: Transition("access.submitted + access.checked", application=("draft", "returned")),
    # a member of the dataset's DAC                       → approved (a grant until expires_at) | rejected | returned
    AccessDecideRequested: Transition("access.decided", application=("submitted",), dataset=("pending",)),
    # a steward of this node; a veto wins over any state  → vetoed
    AccessVetoRequested: Transition("access.vetoed", dataset=("draft", "pending", "returned", "approved", *_ENDED)),
    # a steward or a member of the dataset's DAC          → revoked
    AccessRevokeRequested: Transition("access.revoked", dataset=("approved",)),
    # the access timer, once expires_at has passed        → expired
    AccessExpireRequested: Transition("access.expired", dataset=("approved",), refusal="not_active"),
    # the applicant or a steward                          → closed, with the grants still active (ended)
    AccessCloseRequested: Transition("access.closed", application=("draft", "submitted", "returned", "decided")),
}
"""The transition table: every command, the states it may act on, the fact it yields."""


def aggregate_of(command: EventModel) -> str:
    """The key of a command and of its outcomes: the application id, or ``<dataset>/<user>`` for a central veto."""
    application_id = getattr(command, "application_id", None)
    if application_id is not None:
        return str(application_id)
    if isinstance(command, AccessVetoRequested):
        return veto_subject(command.dataset_id, command.user_id)
    raise TypeError(f"{type(command).__name__} names no application")


def decide(state: ApplicationState, command: EventModel, command_id: UUID, *, asker: str, now: datetime,
           limits: Limits) -> list[EventModel]:
    """The facts a command yields (one; two for a submission), or one ``AccessCommandRejected`` saying why not.

    ``asker`` is the command envelope's ``actor`` (the gateway put the verified caller there) and
    ``now`` the moment of deciding (an aware datetime).
    """
    refusal = _Refusal(state, command, command_id, state.state)
    match command:
        case AccessApplyRequested():
            return _apply(state, command, asker, refusal)
        case AccessVetoRequested():
            return _veto(state, command, refusal)
    if state.state is None:
        return refusal.of("unknown_application", f"there is no application {state.application_id} on this node")
    match command:
        case AccessSubmitRequested():
            return _submit(state, command, asker, now, refusal)
        case AccessCloseRequested():
            return _close(state, command, asker, now, refusal)
        case AccessDecideRequested() | AccessRevokeRequested() | AccessExpireRequested():
            requested = state.dataset(command.dataset_id)
            if requested is None:
                return refusal.of("not_in_application", f"{command.dataset_id} is not in application "
                                                        f"{state.application_id}")
            refusal = refusal.about(requested.state)
            if isinstance(command, AccessDecideRequested):
                return _decide(state, command, requested, now, limits, refusal)
            if isinstance(command, AccessRevokeRequested):
                return _revoke(state, command, requested, now, refusal)
            return _expire(state, command, requested, now, refusal)
    raise TypeError(f"the access decider has no rule for {type(command).__name__}")


def _apply(state: ApplicationState, command: AccessApplyRequested, asker: str,
           refusal: _Refusal) -> list[EventModel]:
    if not command.as_roles.researcher:
        return refusal.of("not_researcher", "only a researcher may apply for access")
    if illegal := refusal.unless(TRANSITIONS[AccessApplyRequested].application, state.state,
                                 f"application {command.application_id}"):
        return illegal
    wanted = tuple(dict.fromkeys(command.datasets))
    reasons = [r for d in wanted if (r := _not_requestable(state.facts(d)))]
    if reasons:
        return refusal.reasons(reasons)
    return [AccessRequested(application_id=command.application_id, applicant=asker,
                            datasets=tuple(DatasetDac(dataset_id=d, dac_id=state.facts(d).dac_id) for d in wanted),
                            **_text(command))]


def _not_requestable(facts: DatasetFacts) -> Reason | None:
    """Why access to a dataset cannot be asked for now, if it cannot."""
    if facts.state is None:
        return Reason(code="unknown_dataset", message=f"{facts.dataset_id} is not a dataset of this node")
    if facts.state == "withdrawn":
        return Reason(code="dataset_withdrawn", message=f"{facts.dataset_id} is withdrawn")
    if facts.state != "released":
        return Reason(code="dataset_not_released", message=f"{facts.dataset_id} is not released yet")
    if facts.dac_id is None:
        return Reason(code="no_dac", message=f"no Data Access Committee decides access to {facts.dataset_id} yet")
    return None


def _submit(state: ApplicationState, command: AccessSubmitRequested, asker: str, now: datetime,
            refusal: _Refusal) -> list[EventModel]:
    if asker != state.applicant:
        return refusal.of("not_applicant", "only the applicant may submit the application")
    if illegal := refusal.unless(TRANSITIONS[AccessSubmitRequested].application, state.state,
                                 f"application {state.application_id}"):
        return illegal
    pending = tuple(d.dataset_id for d in state.datasets if d.state in ("draft", "returned"))
    if not pending:
        return refusal.of("illegal_transition", f"application {state.application_id} has no dataset left to submit")
    reasons = [r for d in pending if (r := _not_requestable(state.facts(d)))]
    if reasons:
        return refusal.reasons(reasons)
    text = command.changes or state.text
    assert text is not None, "a known application has its text"
    round_ = state.round + 1
    verdicts = duo.check_all(text.research_use, {d: state.facts(d).conditions() for d in pending},
                             applicant=state.applicant, today=now.date())
    return [AccessSubmitted(application_id=state.application_id, round=round_, pending=pending, **_text(text)),
            AccessChecked(application_id=state.application_id, round=round_, verdicts=tuple(verdicts),
                          duo_version=duo.DUO_VERSION)]


_DECISIONS = {"approve": "approved", "reject": "rejected", "return": "returned"}


def _decide(state: ApplicationState, command: AccessDecideRequested, requested: Requested, now: datetime,
            limits: Limits, refusal: _Refusal) -> list[EventModel]:
    if requested.dac_id not in command.as_roles.dacs:
        return refusal.of("not_dac_member", f"only a member of {requested.dac_id} may decide {requested.dataset_id}")
    if requested.state == "vetoed":
        return refusal.of("dataset_vetoed", f"this node's steward vetoed {requested.dataset_id} in this application")
    rule = TRANSITIONS[AccessDecideRequested]
    if illegal := (refusal.unless(rule.dataset, requested.state, requested.dataset_id)
                   or refusal.unless(rule.application, state.state, f"application {state.application_id}")):
        return illegal
    reason = (command.reason or "").strip() or None
    if command.decision != "approve":
        if reason is None:
            return refusal.of("reason_required", f"to {command.decision} a dataset, say why")
        return [AccessDecided(application_id=command.application_id, dataset_id=requested.dataset_id,
                              dac_id=requested.dac_id, decision=_DECISIONS[command.decision], reason=reason)]
    if (requested.dataset_id, state.applicant) in state.vetoed:
        return refusal.of("dataset_vetoed", f"this node's steward vetoed {state.applicant}'s access to "
                                            f"{requested.dataset_id}")
    if (facts := state.facts(requested.dataset_id)).state != "released":
        return refusal.reasons([_not_requestable(facts)])  # type: ignore[list-item]
    if command.expires_at is None:
        return refusal.of("expiry_required", "an approval needs the grant's expiry (expires_at)")
    expires_at = command.expires_at if command.expires_at.tzinfo else command.expires_at.replace(tzinfo=UTC)
    if expires_at <= now:
        return refusal.of("expiry_in_past", f"the expiry {expires_at.isoformat()} is not in the future")
    if expires_at > now + timedelta(days=limits.grant_max_days):
        return refusal.of("expiry_too_far", f"a grant may last at most {limits.grant_max_days} days")
    return [AccessDecided(application_id=command.application_id, dataset_id=requested.dataset_id,
                          dac_id=requested.dac_id, decision="approved",
                          grant_id=grant_id_of(command.application_id, requested.dataset_id),
                          expires_at=expires_at, reason=reason)]


def _veto(state: ApplicationState, command: AccessVetoRequested, refusal: _Refusal) -> list[EventModel]:
    if not command.as_roles.steward:
        return refusal.of("not_steward", "only a data steward of this node may veto access")
    if state.facts(command.dataset_id).state is None:
        return refusal.of("unknown_dataset", f"{command.dataset_id} is not a dataset of this node")
    reason = command.reason.strip()
    if command.application_id is None:  # a grant given elsewhere: the veto is of the user and the dataset
        if (command.dataset_id, command.user_id) in state.vetoed:
            return refusal.about("vetoed").of("illegal_transition", f"{command.user_id}'s access to "
                                                                    f"{command.dataset_id} is vetoed already")
        return [AccessVetoed(dataset_id=command.dataset_id, user_id=command.user_id, reason=reason)]
    if state.state is None:
        return refusal.of("unknown_application", f"there is no application {command.application_id} on this node")
    requested = state.dataset(command.dataset_id)
    if requested is None:
        return refusal.of("not_in_application", f"{command.dataset_id} is not in application {command.application_id}")
    refusal = refusal.about(requested.state)
    if command.user_id != state.applicant:
        return refusal.of("user_not_applicant", f"{command.user_id} is not the applicant of {command.application_id}")
    if illegal := refusal.unless(TRANSITIONS[AccessVetoRequested].dataset, requested.state, requested.dataset_id):
        return illegal
    return [AccessVetoed(dataset_id=command.dataset_id, user_id=command.user_id,
                         application_id=command.application_id,
                         grant_id=grant_id_of(command.application_id, command.dataset_id), reason=reason)]


def _revoke(state: ApplicationState, command: AccessRevokeRequested, requested: Requested, now: datetime,
            refusal: _Refusal) -> list[EventModel]:
    if not (command.as_roles.steward or requested.dac_id in command.as_roles.dacs):
        return refusal.of("not_dac_member", f"only a steward or a member of {requested.dac_id} may revoke "
                                            f"a grant of {requested.dataset_id}")
    if illegal := refusal.unless(TRANSITIONS[AccessRevokeRequested].dataset, requested.state, requested.dataset_id):
        return illegal
    if requested.expires_at is not None and requested.expires_at <= now:
        return refusal.of("illegal_transition", f"the grant of {requested.dataset_id} expired at "
                                                f"{requested.expires_at.isoformat()}")
    return [AccessRevoked(application_id=command.application_id, dataset_id=requested.dataset_id,
                          grant_id=grant_id_of(command.application_id, requested.dataset_id),
                          reason=command.reason.strip())]


def _expire(state: ApplicationState, command: AccessExpireRequested, requested: Requested, now: datetime,
            refusal: _Refusal) -> list[EventModel]:
    if illegal := refusal.unless(TRANSITIONS[AccessExpireRequested].dataset, requested.state, requested.dataset_id):
        return illegal
    if requested.expires_at is None or requested.expires_at > now:
        return refusal.of("not_due", f"the grant of {requested.dataset_id} runs until "
                                     f"{requested.expires_at.isoformat() if requested.expires_at else 'never'}")
    return [AccessExpired(application_id=command.application_id, dataset_id=requested.dataset_id,
                          grant_id=grant_id_of(command.application_id, requested.dataset_id))]


def _close(state: ApplicationState, command: AccessCloseRequested, asker: str, now: datetime,
           refusal: _Refusal) -> list[EventModel]:
    if asker != state.applicant and not command.as_roles.steward:
        return refusal.of("not_applicant", "only the applicant or a steward may close the application")
    if illegal := refusal.unless(TRANSITIONS[AccessCloseRequested].application, state.state,
                                 f"application {state.application_id}"):
        return illegal
    ended = tuple(grant_id_of(command.application_id, d.dataset_id) for d in state.datasets
                  if _active(d, state.applicant, now, state.vetoed))
    return [AccessClosed(application_id=command.application_id, reason=(command.reason or "").strip() or None,
                         ended=ended)]


def _active(requested: Requested, user: str | None, now: datetime, vetoed: frozenset[tuple[str, str]]) -> bool:
    """A grant is active while approved, not expired and not vetoed (as the read model's ``active_grant``)."""
    return (requested.state == "approved" and requested.expires_at is not None and requested.expires_at > now
            and (requested.dataset_id, user) not in vetoed)


def _text(source: ApplicationText) -> dict[str, Any]:
    return {name: getattr(source, name) for name in ApplicationText.model_fields}


@dataclass(frozen=True)
class _Refusal:
    """Builds the one ``AccessCommandRejected`` of a command, naming the state it met (``current``)."""

    state: ApplicationState
    command: EventModel
    command_id: UUID
    current: str | None

    def about(self, current: str | None) -> _Refusal:
        """The same refusal naming another state: the dataset's in the application, not the application's."""
        return replace(self, current=current)

    def of(self, code: str, message: str) -> list[EventModel]:
        return self.reasons([Reason(code=code, message=message)])

    def reasons(self, reasons: list[Reason]) -> list[EventModel]:
        return [AccessCommandRejected(aggregate_id=aggregate_of(self.command), command_id=self.command_id,
                                      command_type=self.command.type, reasons=tuple(reasons), state=self.current)]

    def unless(self, allowed: tuple[str | None, ...] | None, current: str | None, what: str) -> list[EventModel] | None:
        """None if the transition table allows ``current``; else its refusal (``illegal_transition`` mostly)."""
        if allowed is None or current in allowed:
            return None
        if allowed == (None,):
            message = f"{what} exists already ({current})"
        else:
            message = f"{what} is {current}; {self.command.type} needs {' or '.join(map(str, allowed))}"
        return self.of(TRANSITIONS[type(self.command)].refusal, message)


# -- the handler: I/O around the decision ---------------------------------------------------------------


def clock() -> datetime:
    """The moment of deciding (a function, so tests can hold the clock)."""
    return datetime.now(UTC)


async def current_state(pool: asyncpg.Pool, command: EventModel) -> ApplicationState:
    """The application the command is about, the node's datasets it names, and the vetoes that matter."""
    application_id: UUID | None = getattr(command, "application_id", None)
    async with pool.acquire() as conn:
        row = await access.application_state(conn, application_id) if application_id is not None else None
        named = dict.fromkeys([*getattr(command, "datasets", ()),
                               *([command.dataset_id] if hasattr(command, "dataset_id") else []),
                               *(d["dataset_id"] for d in (row or {}).get("datasets", ()))])
        catalogue = {}
        for dataset_id in named:
            found = await datasets.dataset_access(conn, dataset_id)
            if found is not None:
                catalogue[dataset_id] = DatasetFacts(dataset_id, found["state"], found["dac_id"],
                                                     tuple(found["data_use"]), found["data_use_parameters"])
        vetoed = {(d, row["applicant"]) for d in row["vetoed"]} if row else set()
        if isinstance(command, AccessVetoRequested) and await access.is_vetoed(conn, command.user_id,
                                                                               command.dataset_id):
            vetoed.add((command.dataset_id, command.user_id))
    if row is None:
        return ApplicationState(application_id, None, catalogue=catalogue, vetoed=frozenset(vetoed))
    return ApplicationState(
        application_id, row["state"], row["applicant"], row["round"],
        ApplicationText(project_title=row["project_title"], purpose=row["purpose"],
                        research_use=row["research_use"], collaborators=tuple(row["collaborators"])),
        tuple(Requested(d["dataset_id"], d["dac_id"], d["state"], d["expires_at"]) for d in row["datasets"]),
        catalogue, frozenset(vetoed))


async def caught_up(settings: Settings, pool: asyncpg.Pool) -> None:
    """Wait until ``access`` has applied everything on the access facts topic now, and ``datasets`` on reception's."""
    wanted = {settings.topic("access"): AccessProjection, settings.topic("reception"): DatasetsProjection}
    ends = await kafka.end_offsets(settings, list(wanted))
    try:
        for tp, end in ends.items():
            if end > 0:
                await wait_for_position(pool, wanted[tp.topic], tp.topic, tp.partition, end - 1,
                                        settings.read_your_writes_timeout_s)
    except TimeoutError as exc:  # the projector is behind or down: decide later, never on stale state
        raise Transient(str(exc)) from exc


class Ledger(OutcomesLedger):
    """The outcomes of every command decided, so that a redelivery re-publishes them unchanged."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool, LEDGER)


async def decide_command(command: Envelope[Any], settings: Settings, pool: asyncpg.Pool,
                         ledger: Ledger) -> list[Envelope[Any]]:
    """Decide one command (or re-publish its recorded outcomes)."""
    if (recorded := await ledger.outcomes(command.id)) is not None:
        return recorded
    await caught_up(settings, pool)
    state = await current_state(pool, command.data)
    moment = clock()
    facts = decide(state, command.data, command.id, asker=command.actor, now=moment, limits=Limits.of(settings))
    subject = aggregate_of(command.data)
    outcomes = [new_envelope(fact, source=settings.source, subject=subject, cause=command, time=moment,
                             # a fact is the asker's act, decided here; a rejection is the decider's own word
                             actor=ACTOR if isinstance(fact, AccessCommandRejected) else command.actor)
                for fact in facts]
    return await ledger.record(command, outcomes)


# One typed handler per command, as the worker layer wants; each is the same decision.

async def on_apply(command: Envelope[AccessApplyRequested], settings: WorkerSettings,
                   pool: asyncpg.Pool = Context("db"), ledger: Ledger = Context("ledger")) -> list[Envelope[Any]]:
    return await decide_command(command, settings, pool, ledger)


async def on_submit(command: Envelope[AccessSubmitRequested], settings: WorkerSettings,
                    pool: asyncpg.Pool = Context("db"), ledger: Ledger = Context("ledger")) -> list[Envelope[Any]]:
    return await decide_command(command, settings, pool, ledger)


async def on_decide(command: Envelope[AccessDecideRequested], settings: WorkerSettings,
                    pool: asyncpg.Pool = Context("db"), ledger: Ledger = Context("ledger")) -> list[Envelope[Any]]:
    return await decide_command(command, settings, pool, ledger)


async def on_veto(command: Envelope[AccessVetoRequested], settings: WorkerSettings,
                  pool: asyncpg.Pool = Context("db"), ledger: Ledger = Context("ledger")) -> list[Envelope[Any]]:
    return await decide_command(command, settings, pool, ledger)


async def on_revoke(command: Envelope[AccessRevokeRequested], settings: WorkerSettings,
                    pool: asyncpg.Pool = Context("db"), ledger: Ledger = Context("ledger")) -> list[Envelope[Any]]:
    return await decide_command(command, settings, pool, ledger)


async def on_expire(command: Envelope[AccessExpireRequested], settings: WorkerSettings,
                    pool: asyncpg.Pool = Context("db"), ledger: Ledger = Context("ledger")) -> list[Envelope[Any]]:
    return await decide_command(command, settings, pool, ledger)


async def on_close(command: Envelope[AccessCloseRequested], settings: WorkerSettings,
                   pool: asyncpg.Pool = Context("db"), ledger: Ledger = Context("ledger")) -> list[Envelope[Any]]:
    return await decide_command(command, settings, pool, ledger)


@contextlib.asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Mapping[str, Any]]:
    pool = await db.connect(settings, max_size=3)
    try:
        yield {"db": pool, "ledger": Ledger(pool)}
    finally:
        await pool.close()


def build(settings: Settings, *, name: str = "access-decider", resources: Resources = open_resources) -> Worker:
    worker = Worker(name, settings, resources=resources,
                    description="Decides Data Access Management's commands: the facts, or a rejection with reasons")
    worker.handle(on_apply, produces=(AccessRequested, AccessCommandRejected))
    worker.handle(on_submit, produces=(AccessSubmitted, AccessChecked, AccessCommandRejected))
    worker.handle(on_decide, produces=(AccessDecided, AccessCommandRejected))
    worker.handle(on_veto, produces=(AccessVetoed, AccessCommandRejected))
    worker.handle(on_revoke, produces=(AccessRevoked, AccessCommandRejected))
    worker.handle(on_expire, produces=(AccessExpired, AccessCommandRejected))
    worker.handle(on_close, produces=(AccessClosed, AccessCommandRejected))
    return worker


async def main(settings: Settings, stop: asyncio.Event) -> None:
    telemetry.setup(settings, "access-decider")
    await build(settings).run(stop)
