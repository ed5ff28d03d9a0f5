"""The access decider's rules, as a pure function: each command against each state of an application.

The stories run commands through ``decide`` and fold the facts it yields into ``Node``, an
in-memory stand-in for the ``access`` read model written here from the contract, independently of
the SQL one; the property test runs random sequences of commands through the same loop.
The DUO check (``duo.check_all``) is a fake here: its rules are tested in ``test_duo.py``.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from genomebus.consumers.access_decider import (
    TRANSITIONS,
    ApplicationState,
    DatasetFacts,
    Limits,
    Requested,
    aggregate_of,
    decide,
)
from genomebus.schemas import duo
from genomebus.schemas.access import (
    ACCESS_COMMANDS,
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
    AsRoles,
    grant_id_of,
    veto_subject,
)
from genomebus.schemas.base import EventModel
from genomebus.schemas.duo import DataUseConditions, DatasetVerdict, ResearchUse

NOW = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)
LIMITS = Limits(grant_max_days=365)

TRIOS, CANCER, RARE = "GDI-FI-DATASET-001", "GDI-FI-DATASET-002", "GDI-FI-DATASET-003"
DRAFTED, WITHDRAWN, NO_DAC = "GDI-FI-DATASET-004", "GDI-FI-DATASET-005", "GDI-FI-DATASET-006"
ELSEWHERE = "GDI-SE-DATASET-001"
DAC_A, DAC_B = "FI-DAC-A", "FI-DAC-B"

CATALOGUE = {
    TRIOS: DatasetFacts(TRIOS, "released", DAC_A, ("DUO:0000042",)),
    CANCER: DatasetFacts(CANCER, "released", DAC_B, ("DUO:0000007", "DUO:0000019"),
                         {"diseases": ["MONDO:0004992"]}),
    RARE: DatasetFacts(RARE, "released", DAC_A, ("DUO:0000006",)),
    DRAFTED: DatasetFacts(DRAFTED, "registered", DAC_A, ("DUO:0000042",)),
    WITHDRAWN: DatasetFacts(WITHDRAWN, "withdrawn", DAC_A, ("DUO:0000042",)),
    NO_DAC: DatasetFacts(NO_DAC, "released", None, ("DUO:0000042",)),
}

ALICE, BOB = "alice@uni.example", "bob@uni.example"
RESEARCHER = AsRoles(researcher=True)
MEMBER_A, MEMBER_B = AsRoles(dacs=(DAC_A,)), AsRoles(dacs=(DAC_B,))
STEWARD = AsRoles(steward=True)
USE = ResearchUse(terms=("DUO:0000042",))


# -- an in-memory node: the facts folded as the contract says ------------------------------------------


class FakeDuo:
    """Stands for ``duo.check_all``: every dataset compatible, and every call remembered."""

    version = "duo-test-2030"

    def __init__(self) -> None:
        self.calls: list[tuple[ResearchUse, dict[str, DataUseConditions], str, date]] = []

    def check_all(self, use: ResearchUse, conditions: Mapping[str, DataUseConditions], *, applicant: str,
                  today: date) -> tuple[DatasetVerdict, ...]:
        self.calls.append((use, dict(conditions), applicant, today))
        return tuple(DatasetVerdict(dataset_id=d, verdict="compatible") for d in conditions)


@pytest.fixture(autouse=True)
def fake_duo(monkeypatch: pytest.MonkeyPatch) -> FakeDuo:
    fake = FakeDuo()
    monkeypatch.setattr(duo, "check_all", fake.check_all, raising=False)  # until the DUO module has it
    monkeypatch.setattr(duo, "DUO_VERSION", fake.version)
    return fake


@dataclass
class Application:
    applicant: str
    state: str
    text: ApplicationText
    datasets: dict[str, Requested]
    round: int = 0


@dataclass
class Approval:
    """Who approved a grant, as the decider saw them: the asker and the roles the gateway verified."""

    asker: str
    roles: AsRoles
    dac_id: str


@dataclass
class Node:
    """The facts folded into applications, vetoes and grants; ``ask`` decides a command and folds its outcome."""

    catalogue: dict[str, DatasetFacts] = field(default_factory=lambda: dict(CATALOGUE))
    applications: dict[UUID, Application] = field(default_factory=dict)
    vetoes: set[tuple[str, str]] = field(default_factory=set)
    approvals: dict[UUID, Approval] = field(default_factory=dict)  # grant id → its approval
    facts: list[EventModel] = field(default_factory=list)
    limits: Limits = LIMITS

    def state_for(self, command: EventModel) -> ApplicationState:
        """What ``access_decider.current_state`` reads from the read models, read from this fold."""
        application_id = getattr(command, "application_id", None)
        app = self.applications.get(application_id) if application_id else None
        vetoed = {(d, app.applicant) for d in app.datasets if (d, app.applicant) in self.vetoes} if app else set()
        if isinstance(command, AccessVetoRequested) and (command.dataset_id, command.user_id) in self.vetoes:
            vetoed.add((command.dataset_id, command.user_id))
        if app is None:
            return ApplicationState(application_id, None, catalogue=self.catalogue, vetoed=frozenset(vetoed))
        return ApplicationState(application_id, app.state, app.applicant, app.round, app.text,
                                tuple(app.datasets.values()), self.catalogue, frozenset(vetoed))

    def ask(self, command: EventModel, asker: str, now: datetime = NOW) -> list[EventModel]:
        facts = decide(self.state_for(command), command, uuid.uuid4(), asker=asker, now=now, limits=self.limits)
        for fact in facts:
            self.fold(fact, asker, getattr(command, "as_roles", AsRoles()))
        return facts

    def fold(self, fact: EventModel, actor: str, roles: AsRoles) -> None:
        self.facts.append(fact)
        match fact:
            case AccessRequested():
                self.applications[fact.application_id] = Application(
                    fact.applicant, "draft", text_of(fact),
                    {d.dataset_id: Requested(d.dataset_id, d.dac_id, "draft") for d in fact.datasets})
            case AccessSubmitted():
                app = self.applications[fact.application_id]
                app.state, app.round = "submitted", fact.round
                app.text = text_of(fact)
                for d in fact.pending:
                    app.datasets[d] = Requested(d, app.datasets[d].dac_id, "pending")
            case AccessDecided():
                app = self.applications[fact.application_id]
                app.datasets[fact.dataset_id] = Requested(fact.dataset_id, fact.dac_id, fact.decision, fact.expires_at)
                if fact.decision == "approved":
                    self.approvals[fact.grant_id] = Approval(actor, roles, fact.dac_id)
                self._settle(app)
            case AccessVetoed():
                self.vetoes.add((fact.dataset_id, fact.user_id))
                if fact.application_id is not None:
                    app = self.applications[fact.application_id]
                    app.datasets[fact.dataset_id] = Requested(fact.dataset_id, app.datasets[fact.dataset_id].dac_id,
                                                              "vetoed")
                    self._settle(app)
            case AccessRevoked() | AccessExpired():
                app = self.applications[fact.application_id]
                was = app.datasets[fact.dataset_id]
                app.datasets[fact.dataset_id] = Requested(
                    was.dataset_id, was.dac_id, "revoked" if isinstance(fact, AccessRevoked) else "expired",
                    was.expires_at)
            case AccessClosed():
                app = self.applications[fact.application_id]
                app.state = "closed"
                for d, was in app.datasets.items():
                    if was.state in ("draft", "pending", "returned", "approved"):
                        app.datasets[d] = Requested(d, was.dac_id, "closed", was.expires_at)

    @staticmethod
    def _settle(app: Application) -> None:
        if app.state in ("submitted", "returned", "decided"):
            states = {d.state for d in app.datasets.values()}
            app.state = "submitted" if "pending" in states else "returned" if "returned" in states else "decided"

    def active_grants(self, now: datetime) -> Iterator[tuple[UUID, str, str]]:
        """(grant id, user, dataset) of every grant active at ``now``, as ``access.active_grant`` means it."""
        for application_id, app in self.applications.items():
            for d in app.datasets.values():
                if (d.state == "approved" and d.expires_at is not None and d.expires_at > now
                        and (d.dataset_id, app.applicant) not in self.vetoes):
                    yield grant_id_of(application_id, d.dataset_id), app.applicant, d.dataset_id


def text_of(fact: AccessRequested | AccessSubmitted) -> ApplicationText:
    return ApplicationText(**{k: getattr(fact, k) for k in ApplicationText.model_fields})


def apply(application_id: UUID, *datasets: str, roles: AsRoles = RESEARCHER) -> AccessApplyRequested:
    return AccessApplyRequested(application_id=application_id, datasets=datasets or (TRIOS,),
                                project_title="Trio de novo rates", purpose="Estimate de novo mutation rates",
                                research_use=USE, as_roles=roles)


def decision(application_id: UUID, dataset_id: str, verdict: str = "approve", *, roles: AsRoles = MEMBER_A,
             expires_at: datetime | None = NOW + timedelta(days=90), reason: str | None = None
             ) -> AccessDecideRequested:
    return AccessDecideRequested(application_id=application_id, dataset_id=dataset_id, decision=verdict,
                                 expires_at=expires_at if verdict == "approve" else None, reason=reason,
                                 as_roles=roles)


def submitted(node: Node, *datasets: str) -> UUID:
    """An application by Alice for ``datasets``, submitted."""
    application_id = uuid.uuid4()
    assert kinds(node.ask(apply(application_id, *datasets), ALICE)) == ["access.requested"]
    assert kinds(node.ask(AccessSubmitRequested(application_id=application_id), ALICE)) == [
        "access.submitted", "access.checked"]
    return application_id


def approved(node: Node, *datasets: str) -> UUID:
    """An application by Alice for ``datasets``, each approved by its DAC for 90 days."""
    application_id = submitted(node, *datasets)
    for d in datasets:
        roles = AsRoles(dacs=(node.catalogue[d].dac_id,))  # type: ignore[arg-type]
        assert kinds(node.ask(decision(application_id, d, roles=roles), "dac-member")) == ["access.decided"]
    return application_id


def kinds(facts: list[EventModel]) -> list[str]:
    return [f.type for f in facts]


def refused(facts: list[EventModel]) -> AccessCommandRejected:
    [fact] = facts
    assert isinstance(fact, AccessCommandRejected), fact
    return fact


def codes(facts: list[EventModel]) -> list[str]:
    return [r.code for r in refused(facts).reasons]


# -- apply -----------------------------------------------------------------------------------------------


def test_a_researcher_opens_a_draft_naming_each_datasets_dac_once() -> None:
    node = Node()
    application_id = uuid.uuid4()

    [fact] = node.ask(apply(application_id, TRIOS, CANCER, TRIOS), ALICE)

    assert isinstance(fact, AccessRequested)
    assert fact.applicant == ALICE  # the envelope's actor, never a field the client fills in
    assert [(d.dataset_id, d.dac_id) for d in fact.datasets] == [(TRIOS, DAC_A), (CANCER, DAC_B)]
    assert (fact.project_title, fact.research_use) == ("Trio de novo rates", USE)
    assert node.applications[application_id].state == "draft"


def test_only_a_researcher_may_apply() -> None:
    outcome = Node().ask(apply(uuid.uuid4(), roles=MEMBER_A), ALICE)
    assert codes(outcome) == ["not_researcher"] and refused(outcome).state is None


def test_each_dataset_that_cannot_be_asked_for_is_named_with_its_reason() -> None:
    outcome = Node().ask(apply(uuid.uuid4(), TRIOS, ELSEWHERE, DRAFTED, WITHDRAWN, NO_DAC), ALICE)
    assert codes(outcome) == ["unknown_dataset", "dataset_not_released", "dataset_withdrawn", "no_dac"]
    assert [r.message.split()[0] for r in refused(outcome).reasons] == [ELSEWHERE, DRAFTED, WITHDRAWN, "no"]


def test_an_application_id_is_opened_once() -> None:
    node = Node()
    application_id = submitted(node, TRIOS)
    outcome = node.ask(apply(application_id, RARE), BOB)
    assert codes(outcome) == ["illegal_transition"] and refused(outcome).state == "submitted"


# -- submit ----------------------------------------------------------------------------------------------


def test_a_submission_is_two_facts_the_application_and_its_duo_check(fake_duo: FakeDuo) -> None:
    node = Node()
    application_id = uuid.uuid4()
    node.ask(apply(application_id, TRIOS, CANCER), ALICE)

    submission, check = node.ask(AccessSubmitRequested(application_id=application_id), ALICE, NOW)

    assert isinstance(submission, AccessSubmitted) and isinstance(check, AccessChecked)
    assert (submission.round, submission.pending) == (1, (TRIOS, CANCER))
    assert submission.project_title == "Trio de novo rates"
    assert (check.round, check.duo_version) == (1, "duo-test-2030")
    assert [(v.dataset_id, v.verdict) for v in check.verdicts] == [(TRIOS, "compatible"), (CANCER, "compatible")]
    [(use, conditions, applicant, today)] = fake_duo.calls
    assert (use, applicant, today) == (USE, ALICE, NOW.date())
    assert conditions == {TRIOS: DataUseConditions(terms=("DUO:0000042",)),
                          CANCER: DataUseConditions(terms=("DUO:0000007", "DUO:0000019"), diseases=("MONDO:0004992",))}


def test_only_the_applicant_submits_and_only_a_draft_or_a_returned_application() -> None:
    node = Node()
    application_id = uuid.uuid4()
    node.ask(apply(application_id), ALICE)
    assert codes(node.ask(AccessSubmitRequested(application_id=application_id), BOB)) == ["not_applicant"]
    node.ask(AccessSubmitRequested(application_id=application_id), ALICE)

    outcome = node.ask(AccessSubmitRequested(application_id=application_id), ALICE)

    assert codes(outcome) == ["illegal_transition"] and refused(outcome).state == "submitted"
    assert "draft or returned" in refused(outcome).reasons[0].message


def test_a_dataset_withdrawn_since_the_application_was_opened_stops_its_submission() -> None:
    node = Node()
    application_id = uuid.uuid4()
    node.ask(apply(application_id, TRIOS, RARE), ALICE)
    node.catalogue[RARE] = DatasetFacts(RARE, "withdrawn", DAC_A, ("DUO:0000006",))
    assert codes(node.ask(AccessSubmitRequested(application_id=application_id), ALICE)) == ["dataset_withdrawn"]


# -- decide ----------------------------------------------------------------------------------------------


def test_an_approval_is_a_grant_until_its_expiry() -> None:
    node = Node()
    application_id = submitted(node, TRIOS)
    expires = NOW + timedelta(days=30)

    [fact] = node.ask(decision(application_id, TRIOS, expires_at=expires, reason="  fine  "), "carol@dac.example")

    assert isinstance(fact, AccessDecided)
    assert (fact.decision, fact.dac_id, fact.expires_at, fact.reason) == ("approved", DAC_A, expires, "fine")
    assert fact.grant_id == grant_id_of(application_id, TRIOS)
    assert list(node.active_grants(NOW)) == [(fact.grant_id, ALICE, TRIOS)]
    assert node.applications[application_id].state == "decided"


def test_in_an_application_spanning_two_dacs_each_dac_decides_only_its_own_dataset() -> None:
    node = Node()
    application_id = submitted(node, TRIOS, CANCER)

    outcome = node.ask(decision(application_id, CANCER, roles=MEMBER_A), "carol@dac-a.example")
    assert codes(outcome) == ["not_dac_member"] and refused(outcome).state == "pending"
    assert DAC_B in refused(outcome).reasons[0].message

    [a] = node.ask(decision(application_id, TRIOS, roles=MEMBER_A), "carol@dac-a.example")
    assert a.dac_id == DAC_A and node.applications[application_id].state == "submitted"  # CANCER still pending
    [b] = node.ask(decision(application_id, CANCER, "reject", roles=MEMBER_B, reason="not cancer research"),
                   "dave@dac-b.example")
    assert (b.dac_id, b.decision) == (DAC_B, "rejected")
    assert node.applications[application_id].state == "decided"
    assert [(user, d) for _, user, d in node.active_grants(NOW)] == [(ALICE, TRIOS)]


def test_a_member_of_both_dacs_decides_both() -> None:
    node = Node()
    application_id = submitted(node, TRIOS, CANCER)
    both = AsRoles(dacs=(DAC_A, DAC_B))
    for d in (TRIOS, CANCER):
        assert kinds(node.ask(decision(application_id, d, roles=both), "erin@dacs.example")) == ["access.decided"]


@pytest.mark.parametrize(("expires_at", "code"), [
    (None, "expiry_required"),
    (NOW, "expiry_in_past"),
    (NOW - timedelta(days=1), "expiry_in_past"),
    (NOW + timedelta(days=365, seconds=1), "expiry_too_far"),
])
def test_an_approval_needs_an_expiry_in_the_future_within_the_limit(expires_at: datetime | None, code: str) -> None:
    node = Node()
    application_id = submitted(node, TRIOS)
    outcome = node.ask(decision(application_id, TRIOS, expires_at=expires_at), "carol")
    assert codes(outcome) == [code] and refused(outcome).state == "pending"


def test_the_longest_grant_allowed_and_a_naive_expiry_read_as_utc() -> None:
    node = Node()
    application_id = submitted(node, TRIOS, RARE)
    [longest] = node.ask(decision(application_id, TRIOS, expires_at=NOW + timedelta(days=365)), "carol")
    [naive] = node.ask(decision(application_id, RARE, expires_at=datetime(2030, 3, 1)), "carol")
    assert longest.decision == naive.decision == "approved"
    assert naive.expires_at == datetime(2030, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize("verdict", ["reject", "return"])
def test_a_rejection_or_a_return_says_why(verdict: str) -> None:
    node = Node()
    application_id = submitted(node, TRIOS)
    assert codes(node.ask(decision(application_id, TRIOS, verdict, reason="   "), "carol")) == ["reason_required"]
    [fact] = node.ask(decision(application_id, TRIOS, verdict, reason="the purpose is vague"), "carol")
    expected = {"reject": "rejected", "return": "returned"}[verdict]
    assert (fact.decision, fact.grant_id, fact.reason) == (expected, None, "the purpose is vague")


def test_a_decided_or_draft_dataset_and_a_dataset_not_asked_for_cannot_be_decided() -> None:
    node = Node()
    application_id = approved(node, TRIOS)
    outcome = node.ask(decision(application_id, TRIOS, "reject", reason="changed our mind"), "carol")
    assert codes(outcome) == ["illegal_transition"] and refused(outcome).state == "approved"
    assert codes(node.ask(decision(application_id, RARE), "carol")) == ["not_in_application"]
    draft = uuid.uuid4()
    node.ask(apply(draft), ALICE)
    outcome = node.ask(decision(draft, TRIOS), "carol")
    assert codes(outcome) == ["illegal_transition"] and refused(outcome).state == "draft"


def test_return_and_resubmit_sends_only_the_returned_dataset_again_with_the_new_text(fake_duo: FakeDuo) -> None:
    node = Node()
    application_id = submitted(node, TRIOS, CANCER)
    node.ask(decision(application_id, TRIOS), "carol")
    node.ask(decision(application_id, CANCER, "return", roles=MEMBER_B, reason="name the cancer types"), "dave")
    assert node.applications[application_id].state == "returned"

    changes = ApplicationText(project_title="Trio de novo rates", purpose="De novo rates in breast cancer trios",
                              research_use=ResearchUse(terms=("DUO:0000007",), diseases=("MONDO:0004992",)))
    submission, check = node.ask(AccessSubmitRequested(application_id=application_id, changes=changes), ALICE)

    assert (submission.round, submission.pending, submission.purpose) == (2, (CANCER,), changes.purpose)
    assert (check.round, [v.dataset_id for v in check.verdicts]) == (2, [CANCER])
    assert fake_duo.calls[-1][0] == changes.research_use
    assert node.applications[application_id].datasets[TRIOS].state == "approved"  # untouched by the new round
    [fact] = node.ask(decision(application_id, CANCER, roles=MEMBER_B), "dave")
    assert fact.decision == "approved" and node.applications[application_id].state == "decided"
    assert {d for _, _, d in node.active_grants(NOW)} == {TRIOS, CANCER}


def test_an_application_with_a_dataset_still_pending_is_not_resubmitted_yet() -> None:
    node = Node()
    application_id = submitted(node, TRIOS, CANCER)
    node.ask(decision(application_id, TRIOS, "return", reason="say more"), "carol")
    outcome = node.ask(AccessSubmitRequested(application_id=application_id), ALICE)
    assert codes(outcome) == ["illegal_transition"] and refused(outcome).state == "submitted"


# -- veto ------------------------------------------------------------------------------------------------


def veto(application_id: UUID | None, dataset_id: str = TRIOS, user_id: str = ALICE,
         roles: AsRoles = STEWARD) -> AccessVetoRequested:
    return AccessVetoRequested(application_id=application_id, dataset_id=dataset_id, user_id=user_id,
                               reason="consent does not cover this", as_roles=roles)


def test_a_veto_of_an_approved_grant_wins_and_ends_it() -> None:
    node = Node()
    application_id = approved(node, TRIOS)

    [fact] = node.ask(veto(application_id), "steward@node.example")

    assert isinstance(fact, AccessVetoed)
    assert (fact.application_id, fact.grant_id, fact.user_id) == (application_id, grant_id_of(application_id, TRIOS),
                                                                  ALICE)
    assert list(node.active_grants(NOW)) == []
    outcome = node.ask(veto(application_id), "steward@node.example")
    assert codes(outcome) == ["illegal_transition"] and refused(outcome).state == "vetoed"


def test_a_dataset_vetoed_before_its_decision_stays_vetoed() -> None:
    node = Node()
    application_id = submitted(node, TRIOS, RARE)
    node.ask(veto(application_id), "steward")

    outcome = node.ask(decision(application_id, TRIOS), "carol")

    assert codes(outcome) == ["dataset_vetoed"] and refused(outcome).state == "vetoed"
    assert node.applications[application_id].state == "submitted"  # RARE is still pending
    node.ask(decision(application_id, RARE), "carol")
    assert node.applications[application_id].state == "decided"


def test_only_a_steward_vetoes_and_only_a_dataset_of_this_node_named_in_the_application() -> None:
    node = Node()
    application_id = submitted(node, TRIOS)
    assert codes(node.ask(veto(application_id, roles=AsRoles(researcher=True, dacs=(DAC_A,))), "carol")) == [
        "not_steward"]
    assert codes(node.ask(veto(application_id, ELSEWHERE), "steward")) == ["unknown_dataset"]
    assert codes(node.ask(veto(application_id, RARE), "steward")) == ["not_in_application"]
    assert codes(node.ask(veto(uuid.uuid4()), "steward")) == ["unknown_application"]
    assert codes(node.ask(veto(application_id, user_id=BOB), "steward")) == ["user_not_applicant"]


def test_a_closed_application_is_not_vetoed_but_its_user_can_be() -> None:
    node = Node()
    application_id = approved(node, TRIOS)
    node.ask(AccessCloseRequested(application_id=application_id), ALICE)
    outcome = node.ask(veto(application_id), "steward")
    assert codes(outcome) == ["illegal_transition"] and refused(outcome).state == "closed"
    assert kinds(node.ask(veto(None), "steward")) == ["access.vetoed"]


def test_a_central_veto_names_a_user_and_a_dataset_and_stops_a_later_approval() -> None:
    node = Node()
    application_id = submitted(node, TRIOS)

    [fact] = node.ask(veto(None), "steward")

    assert (fact.application_id, fact.grant_id, fact.dataset_id, fact.user_id) == (None, None, TRIOS, ALICE)
    outcome = node.ask(veto(None), "steward")
    assert codes(outcome) == ["illegal_transition"] and refused(outcome).state == "vetoed"
    assert refused(outcome).aggregate_id == veto_subject(TRIOS, ALICE)
    outcome = node.ask(decision(application_id, TRIOS), "carol")
    assert codes(outcome) == ["dataset_vetoed"] and refused(outcome).state == "pending"
    assert kinds(node.ask(decision(application_id, TRIOS, "reject", reason="vetoed"), "carol")) == ["access.decided"]


def test_a_central_veto_after_an_approval_ends_the_grant() -> None:
    node = Node()
    approved(node, TRIOS)
    node.ask(veto(None), "steward")
    assert list(node.active_grants(NOW)) == []


# -- revoke, expire, close -------------------------------------------------------------------------------


def revoke(application_id: UUID, roles: AsRoles = MEMBER_A, dataset_id: str = TRIOS) -> AccessRevokeRequested:
    return AccessRevokeRequested(application_id=application_id, dataset_id=dataset_id, reason="misuse reported",
                                 as_roles=roles)


@pytest.mark.parametrize("roles", [MEMBER_A, STEWARD])
def test_the_dac_or_a_steward_revokes_an_active_grant(roles: AsRoles) -> None:
    node = Node()
    application_id = approved(node, TRIOS)
    [fact] = node.ask(revoke(application_id, roles), "carol")
    assert isinstance(fact, AccessRevoked) and fact.grant_id == grant_id_of(application_id, TRIOS)
    assert list(node.active_grants(NOW)) == []
    outcome = node.ask(revoke(application_id, roles), "carol")
    assert codes(outcome) == ["illegal_transition"] and refused(outcome).state == "revoked"


def test_another_dac_or_the_applicant_cannot_revoke_and_an_expired_grant_is_not_revoked() -> None:
    node = Node()
    application_id = approved(node, TRIOS)
    assert codes(node.ask(revoke(application_id, MEMBER_B), "dave")) == ["not_dac_member"]
    assert codes(node.ask(revoke(application_id, RESEARCHER), ALICE)) == ["not_dac_member"]
    outcome = node.ask(revoke(application_id), "carol", NOW + timedelta(days=91))
    assert codes(outcome) == ["illegal_transition"] and "expired" in refused(outcome).reasons[0].message


def test_the_timer_expires_a_grant_once_it_is_due_and_not_before() -> None:
    node = Node()
    application_id = approved(node, TRIOS)
    expire = AccessExpireRequested(application_id=application_id, dataset_id=TRIOS)
    expiry = NOW + timedelta(days=90)

    outcome = node.ask(expire, "worker:access-timer", expiry - timedelta(seconds=1))
    assert codes(outcome) == ["not_due"] and refused(outcome).state == "approved"
    assert list(node.active_grants(expiry)) == []  # not active at its expiry, whatever the timer does
    [fact] = node.ask(expire, "worker:access-timer", expiry)
    assert isinstance(fact, AccessExpired) and fact.grant_id == grant_id_of(application_id, TRIOS)
    outcome = node.ask(expire, "worker:access-timer", expiry)
    assert codes(outcome) == ["not_active"] and refused(outcome).state == "expired"


def test_close_ends_the_active_grants_only() -> None:
    node = Node()
    application_id = approved(node, TRIOS, RARE, CANCER)
    node.ask(revoke(application_id, dataset_id=RARE), "carol")
    node.ask(veto(None, CANCER), "steward")  # CANCER's grant is no longer active either
    assert codes(node.ask(AccessCloseRequested(application_id=application_id), BOB)) == ["not_applicant"]

    [fact] = node.ask(AccessCloseRequested(application_id=application_id, reason=" done "), ALICE)

    assert isinstance(fact, AccessClosed)
    assert (fact.ended, fact.reason) == ((grant_id_of(application_id, TRIOS),), "done")
    assert {d: r.state for d, r in node.applications[application_id].datasets.items()} == {
        TRIOS: "closed", RARE: "revoked", CANCER: "closed"}
    outcome = node.ask(AccessCloseRequested(application_id=application_id), ALICE)
    assert codes(outcome) == ["illegal_transition"] and refused(outcome).state == "closed"


def test_a_steward_may_close_anyones_application() -> None:
    node = Node()
    application_id = submitted(node, TRIOS)
    [fact] = node.ask(AccessCloseRequested(application_id=application_id, as_roles=STEWARD), "steward")
    assert fact.ended == () and node.applications[application_id].state == "closed"


# -- every command -------------------------------------------------------------------------------------


def every_command(application_id: UUID) -> list[EventModel]:
    return [AccessSubmitRequested(application_id=application_id), decision(application_id, TRIOS),
            veto(application_id), revoke(application_id),
            AccessExpireRequested(application_id=application_id, dataset_id=TRIOS),
            AccessCloseRequested(application_id=application_id)]


@pytest.mark.parametrize("command", every_command(uuid.UUID(int=7)), ids=lambda c: c.type)
def test_a_command_about_an_unknown_application_is_refused_keyed_by_it(command: EventModel) -> None:
    command_id = uuid.uuid4()
    outcome = decide(ApplicationState(uuid.UUID(int=7), None, catalogue=CATALOGUE), command, command_id,
                     asker=ALICE, now=NOW, limits=LIMITS)
    rejection = refused(outcome)
    assert [r.code for r in rejection.reasons] == ["unknown_application"]
    assert (rejection.aggregate_id, rejection.command_id, rejection.command_type, rejection.state) == (
        str(uuid.UUID(int=7)), command_id, command.type, None)


def test_the_transition_table_has_a_rule_for_every_command() -> None:
    assert set(TRANSITIONS) == set(ACCESS_COMMANDS)


def test_every_outcome_is_keyed_by_the_application_or_by_dataset_and_user() -> None:
    application_id = uuid.uuid4()
    assert {aggregate_of(c) for c in every_command(application_id)} == {str(application_id)}
    assert aggregate_of(veto(None)) == f"{TRIOS}/{ALICE}"


# -- the property: no grant without its DAC, none after a veto -------------------------------------------
#
# A state machine drives random sequences: each rule is one command kind, its values drawn partly
# from the node as it stands (an existing application, its applicant, a dataset in it, that
# dataset's DAC) and partly at random (anyone, any roles, any dataset), so that sequences reach
# grants, vetoes, expiries and closings as well as every refusal.

USERS = (ALICE, BOB, "mallory@evil.example")
DATASETS = (TRIOS, CANCER, RARE, WITHDRAWN, ELSEWHERE)
DACS = (DAC_A, DAC_B, "FI-DAC-X")


class AccessSequences(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.node = Node()
        self.now = NOW
        self.vetoed: set[tuple[str, str]] = set()
        self.outcomes: Counter[str] = Counter()

    # -- drawing values: mostly plausible, sometimes anything --

    def application(self, data: st.DataObject, *likely: str) -> UUID:
        """Mostly an open application (preferably with a dataset in a ``likely`` state), or any, or none."""
        apps = self.node.applications
        open_ = [a for a, app in apps.items() if app.state != "closed"]
        ready = [a for a in open_ if any(d.state in likely for d in apps[a].datasets.values())]
        return data.draw(st.sampled_from(ready * 8 + open_ * 3 + list(apps) + [uuid.UUID(int=404)]))

    def asker(self, data: st.DataObject, application_id: UUID) -> str:
        app = self.node.applications.get(application_id)
        return data.draw(st.sampled_from(([app.applicant] * 3 if app else []) + list(USERS)))

    def dataset(self, data: st.DataObject, application_id: UUID, *likely: str) -> str:
        """Mostly one of the application's datasets, preferably in one of the ``likely`` states; or any."""
        app = self.node.applications.get(application_id)
        mine = list(app.datasets.values()) if app else []
        return data.draw(st.sampled_from([d.dataset_id for d in mine if d.state in likely] * 6
                                         + [d.dataset_id for d in mine] * 2 + list(DATASETS)))

    def roles(self, data: st.DataObject, dataset_id: str | None = None) -> AsRoles:
        """Often the dataset's DAC (when there is one to name), rarely a steward, a researcher or not."""
        own = CATALOGUE.get(dataset_id or "")
        dacs = data.draw(st.lists(st.sampled_from(DACS), max_size=2, unique=True))
        if own and own.dac_id and data.draw(st.sampled_from((True, True, False))):
            dacs = [own.dac_id, *dacs]
        return AsRoles(researcher=data.draw(st.booleans()), steward=data.draw(st.sampled_from((False, False, True))),
                       dacs=tuple(dict.fromkeys(dacs)))

    def ask(self, command: EventModel, asker: str) -> None:
        active = {(d, user) for _, user, d in self.node.active_grants(self.now)}
        outcome = self.node.ask(command, asker, self.now)
        assert outcome and all(isinstance(f, EventModel) for f in outcome)
        if any(isinstance(f, AccessCommandRejected) for f in outcome):
            assert len(outcome) == 1 and refused(outcome).reasons
        for fact in outcome:  # the decider itself never approves what was vetoed (the read model also checks)
            if isinstance(fact, AccessDecided) and fact.decision == "approved":
                assert (fact.dataset_id, self.node.applications[fact.application_id].applicant) not in self.vetoed
        self.vetoed |= {(f.dataset_id, f.user_id) for f in outcome if isinstance(f, AccessVetoed)}
        self.outcomes.update(f.type for f in outcome)
        self.outcomes["active grant vetoed"] += sum((f.dataset_id, f.user_id) in active for f in outcome
                                                    if isinstance(f, AccessVetoed))
        self.outcomes["grant active"] += bool(active)

    # -- every sequence starts with two submitted applications spanning both DACs; then one rule per command --

    @initialize(applicants=st.lists(st.sampled_from(USERS), min_size=2, max_size=2),
                datasets=st.permutations((TRIOS, CANCER, RARE)))
    def two_applications_submitted(self, applicants: list[str], datasets: list[str]) -> None:
        for number, applicant in enumerate(applicants, start=1):
            application_id = uuid.UUID(int=number)
            self.ask(apply(application_id, *datasets[number - 1:number + 1]), applicant)
            self.ask(AccessSubmitRequested(application_id=application_id), applicant)

    @rule(data=st.data(), application_number=st.integers(1, 4))
    def apply(self, data: st.DataObject, application_number: int) -> None:
        application_id = uuid.UUID(int=application_number)
        datasets = data.draw(st.lists(st.sampled_from((TRIOS, CANCER, RARE) * 3 + DATASETS), min_size=1, max_size=3))
        self.ask(AccessApplyRequested(application_id=application_id, datasets=tuple(datasets), project_title="p",
                                      purpose="q", research_use=USE, as_roles=self.roles(data)),
                 data.draw(st.sampled_from(USERS)))

    @precondition(lambda self: self.node.applications)
    @rule(data=st.data())
    def submit(self, data: st.DataObject) -> None:
        application_id = self.application(data, "draft", "returned")
        self.ask(AccessSubmitRequested(application_id=application_id), self.asker(data, application_id))

    @precondition(lambda self: self.node.applications)
    @rule(data=st.data(), verdict=st.sampled_from(("approve", "approve", "approve", "reject", "return")),
          days=st.sampled_from((None, -1, 0, 10, 90, 90, 90, 200, 366)),
          reason=st.sampled_from((None, " ", "because", "because")))
    def decide(self, data: st.DataObject, verdict: str, days: int | None, reason: str | None) -> None:
        application_id = self.application(data, "pending")
        dataset_id = self.dataset(data, application_id, "pending")
        self.ask(AccessDecideRequested(application_id=application_id, dataset_id=dataset_id, decision=verdict,
                                       expires_at=None if days is None else self.now + timedelta(days=days),
                                       reason=reason, as_roles=self.roles(data, dataset_id)),
                 data.draw(st.sampled_from(USERS + ("carol@dac.example",))))

    def active(self) -> list[tuple[UUID, str, str]]:
        """(application, dataset, user) of every grant active now."""
        return [(a, d, user) for a in self.node.applications for g, user, d in self.node.active_grants(self.now)
                if g == grant_id_of(a, d)]

    @precondition(lambda self: self.active())
    @rule(data=st.data(), central=st.booleans())
    def veto_a_grant(self, data: st.DataObject, central: bool) -> None:
        """A steward (mostly) vetoes a grant active now, in its application or as a grant given elsewhere."""
        application_id, dataset_id, user = data.draw(st.sampled_from(self.active()))
        roles = AsRoles(steward=data.draw(st.sampled_from((True, True, False))))
        self.ask(AccessVetoRequested(application_id=None if central else application_id, dataset_id=dataset_id,
                                     user_id=user, reason="no", as_roles=roles), "steward@node.example")

    @precondition(lambda self: self.node.applications)
    @rule(data=st.data(), central=st.booleans(), now=st.sampled_from((True, False, False)))
    def veto(self, data: st.DataObject, central: bool, now: bool) -> None:
        """Anyone vetoes anything drawn (rarely: a veto is for ever, and would soon leave nothing to grant)."""
        if not now:
            return
        application_id = self.application(data, "pending", "approved")
        app = self.node.applications.get(application_id)
        user = data.draw(st.sampled_from(([app.applicant] * 3 if app else []) + list(USERS)))
        dataset_id = self.dataset(data, application_id, "pending", "approved")
        self.ask(AccessVetoRequested(application_id=None if central else application_id, dataset_id=dataset_id,
                                     user_id=user, reason="no", as_roles=AsRoles(steward=data.draw(st.booleans()))),
                 "steward@node.example")

    @precondition(lambda self: self.node.applications)
    @rule(data=st.data())
    def revoke(self, data: st.DataObject) -> None:
        application_id = self.application(data, "approved")
        dataset_id = self.dataset(data, application_id, "approved")
        self.ask(AccessRevokeRequested(application_id=application_id, dataset_id=dataset_id, reason="r",
                                       as_roles=self.roles(data, dataset_id)), "carol@dac.example")

    @precondition(lambda self: self.node.applications)
    @rule(data=st.data(), on_time=st.booleans())
    def expire(self, data: st.DataObject, on_time: bool) -> None:
        """The timer asks: at its grant's expiry (time passes until then), or whenever."""
        application_id = self.application(data, "approved")
        dataset_id = self.dataset(data, application_id, "approved")
        requested = self.node.applications[application_id].datasets.get(dataset_id) \
            if application_id in self.node.applications else None
        if on_time and requested is not None and requested.expires_at is not None:
            self.now = max(self.now, requested.expires_at)
        self.ask(AccessExpireRequested(application_id=application_id, dataset_id=dataset_id), "worker:access-timer")

    @precondition(lambda self: self.node.applications)
    @rule(data=st.data(), now=st.sampled_from((True, False, False, False)))
    def close(self, data: st.DataObject, now: bool) -> None:
        if not now:  # closing ends everything: rarer than the rest
            return
        application_id = self.application(data)
        self.ask(AccessCloseRequested(application_id=application_id, as_roles=self.roles(data)),
                 self.asker(data, application_id))

    @rule(days=st.sampled_from((1, 30, 200)))
    def time_passes(self, days: int) -> None:
        self.now += timedelta(days=days)

    # -- what must hold after every step --

    @invariant()
    def every_active_grant_was_approved_by_a_member_of_its_datasets_dac(self) -> None:
        for grant_id, user, dataset_id in self.node.active_grants(self.now):
            approval = self.node.approvals[grant_id]
            assert approval.dac_id == CATALOGUE[dataset_id].dac_id  # the dataset's own DAC ...
            assert approval.dac_id in approval.roles.dacs  # ... and a member of it approved
            [application_id] = [a for a in self.node.applications if grant_id_of(a, dataset_id) == grant_id]
            assert self.node.applications[application_id].applicant == user

    @invariant()
    def no_grant_is_active_for_a_user_and_dataset_once_vetoed(self) -> None:
        assert not {(d, user) for _, user, d in self.node.active_grants(self.now)} & self.vetoed

    def teardown(self) -> None:
        REACHED.update(self.outcomes)


REACHED: Counter[str] = Counter()


@pytest.fixture(scope="module")
def fake_duo_for_the_module() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        fake = FakeDuo()
        patch.setattr(duo, "check_all", fake.check_all, raising=False)
        patch.setattr(duo, "DUO_VERSION", fake.version)
        yield


def test_no_sequence_of_commands_grants_without_the_dac_or_after_a_veto(fake_duo_for_the_module: None) -> None:
    REACHED.clear()
    run_state_machine_as_test(AccessSequences, settings=settings(
        max_examples=300, stateful_step_count=50, deadline=None, database=None, derandomize=True,
        suppress_health_check=[HealthCheck.too_slow]))
    # The property is only worth something if the sequences got there: grants, and every way they end.
    for fact in ("grant active", "active grant vetoed", "access.revoked", "access.expired", "access.closed"):
        assert REACHED[fact] > 0, (fact, REACHED)
