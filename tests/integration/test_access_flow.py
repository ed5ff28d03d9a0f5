"""The access decider, the ``access`` read model and the access timer against the real stack.

Commands are published as the gateway would (the asker as ``actor``, roles in ``as_roles``) and
awaited through the read model's ``commands`` table; datasets are made released with a DAC by
publishing their reception facts directly (the files' pipeline is tested elsewhere). What is
asserted is what the read model's queries answer, and what the log holds.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from genomebus.consumers.access_timer import expire_command_id
from genomebus.infra import kafka
from genomebus.infra.projection import wait_for_position
from genomebus.infra.readmodels import access
from genomebus.infra.readmodels.datasets import DatasetsProjection
from genomebus.schemas.access import (
    AccessApplyRequested,
    AccessCloseRequested,
    AccessDecideRequested,
    AccessSubmitRequested,
    AccessVetoRequested,
    AsRoles,
    grant_id_of,
)
from genomebus.schemas.base import EventModel
from genomebus.schemas.envelope import decode, new_envelope
from genomebus.schemas.reception import DatasetRegistered, DatasetReleased
from tests.integration.helpers import new_dataset_id

pytestmark = pytest.mark.integration

HMB = {"terms": ["DUO:0000006"], "will_publish": True, "ethics_approval": True}


def dac() -> str:
    return f"IT-DAC-{os.getpid()}-{uuid.uuid4().hex[:6]}"


async def released(stack: Any, publisher: Any, pool: Any, dac_id: str, *data_use: str) -> str:
    """A released dataset of this node decided by ``dac_id``, as its reception facts say."""
    dataset_id = new_dataset_id()
    registered = new_envelope(DatasetRegistered(dataset_id=dataset_id, title="access flow", dac_id=dac_id,
                                                data_use=data_use or ("DUO:0000006",)),
                              source=stack.source, actor="steward-test")
    await publisher.publish(registered)
    done = await publisher.publish(new_envelope(DatasetReleased(dataset_id=dataset_id, files=("GDI-FI-FILE-1",)),
                                                source=stack.source, actor="steward-test", cause=registered))
    await wait_for_position(pool, DatasetsProjection, done.topic, done.partition, done.offset, 60)
    return dataset_id


async def ask(stack: Any, publisher: Any, pool: Any, command: EventModel, actor: str, *,
              subject: str | None = None, timeout: float = 60) -> dict[str, Any]:
    """Publish a command as ``actor``; return its row in ``commands`` once decided."""
    envelope = new_envelope(command, source=stack.source, actor=actor, subject=subject)
    await publisher.publish(envelope)
    return await decided(pool, envelope.id, timeout)


async def decided(pool: Any, command_id: uuid.UUID, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        async with pool.acquire() as conn:
            row = await access.get_command(conn, command_id)
        if row is not None and row["status"] != "pending":
            return row
        assert time.monotonic() < deadline, f"command {command_id} not decided in {timeout} s: {row}"
        await asyncio.sleep(0.1)


def researcher_applies(application_id: uuid.UUID, *datasets: str) -> AccessApplyRequested:
    return AccessApplyRequested(application_id=application_id, datasets=datasets, project_title="Modifiers",
                                purpose="Find modifier alleles", research_use=HMB, as_roles=AsRoles(researcher=True))


def approve(application_id: uuid.UUID, dataset_id: str, dac_id: str, expires_at: datetime) -> AccessDecideRequested:
    return AccessDecideRequested(application_id=application_id, dataset_id=dataset_id, decision="approve",
                                 expires_at=expires_at, as_roles=AsRoles(dacs=(dac_id,)))


async def access_facts(stack: Any, application_id: uuid.UUID) -> list[Any]:
    return [e async for e in _decoded(stack) if e.subject == str(application_id)]


async def _decoded(stack: Any):  # noqa: ANN202
    async for record in kafka.read_log(stack, [stack.topic("access")]):
        yield decode(record.value)


async def test_an_application_is_decided_by_its_dac_and_a_veto_ends_the_grant(stack, publisher, pool):
    dac_a, dac_b = dac(), dac()
    hmb, other = await released(stack, publisher, pool, dac_a), await released(stack, publisher, pool, dac_b)
    app = uuid.uuid4()
    alice = f"alice-{app.hex[:6]}"
    now = datetime.now(UTC)

    opened = await ask(stack, publisher, pool, researcher_applies(app, hmb, other), alice)
    assert (opened["status"], opened["outcome_type"], opened["aggregate_id"]) == ("accepted", "access.requested",
                                                                                   str(app))
    submitted = await ask(stack, publisher, pool, AccessSubmitRequested(application_id=app), alice)
    assert (submitted["status"], submitted["outcome_type"]) == ("accepted", "access.submitted")
    async with pool.acquire() as conn:  # accepted only once the check is there too
        shown = await access.get_application(conn, app)
    assert (shown["state"], shown["round"], shown["applicant"]) == ("submitted", 1, alice)
    assert {d["dataset_id"]: (d["dac_id"], d["state"], d["verdict"]) for d in shown["datasets"]} == {
        hmb: (dac_a, "pending", "compatible"), other: (dac_b, "pending", "compatible")}

    wrong = await ask(stack, publisher, pool, approve(app, other, dac_a, now + timedelta(days=30)), "chair-a")
    assert (wrong["status"], [r["code"] for r in wrong["reasons"]], wrong["state"]) == (
        "rejected", ["not_dac_member"], "pending")
    yes = await ask(stack, publisher, pool, approve(app, hmb, dac_a, now + timedelta(days=30)), "chair-a")
    assert yes["status"] == "accepted"

    async with pool.acquire() as conn:
        grant = await access.active_grant(conn, alice, hmb, datetime.now(UTC))
        assert grant is not None and grant["grant_id"] == grant_id_of(app, hmb) and grant["dac_id"] == dac_a
        assert await access.active_grant(conn, alice, other, datetime.now(UTC)) is None
        assert [g["dataset_id"] for g in await access.grants(conn, user_id=alice, now=datetime.now(UTC))] == [hmb]
        mine, total = await access.list_applications(conn, applicant=alice, dacs=None, everything=False,
                                                     limit=10, offset=0)
        assert total == 1 and mine[0]["id"] == app
        theirs, _ = await access.list_applications(conn, applicant="nobody", dacs=[dac_b], everything=False,
                                                   limit=10, offset=0)
        assert [a["id"] for a in theirs] == [app]

    vetoed = await ask(stack, publisher, pool, AccessVetoRequested(
        application_id=app, dataset_id=hmb, user_id=alice, reason="consent", as_roles=AsRoles(steward=True)),
        "steward-fi", subject=str(app))
    assert vetoed["status"] == "accepted"
    async with pool.acquire() as conn:
        assert await access.active_grant(conn, alice, hmb, datetime.now(UTC)) is None
        assert await access.is_vetoed(conn, alice, hmb)
        [ended] = await access.grants(conn, user_id=alice, now=datetime.now(UTC), active_only=False)
        assert (ended["state"], ended["active"]) == ("vetoed", False)
        shown = await access.get_application(conn, app)
    assert [h.type for h in shown["history"]] == ["access.requested", "access.submitted", "access.checked",
                                                  "access.command_rejected", "access.decided", "access.vetoed"]
    assert [h.actor for h in shown["history"]][:3] == [alice, alice, alice]

    closed = await ask(stack, publisher, pool, AccessCloseRequested(application_id=app), alice)
    assert closed["status"] == "accepted"
    async with pool.acquire() as conn:
        shown = await access.get_application(conn, app)
    assert shown["state"] == "closed"
    assert {d["dataset_id"]: d["state"] for d in shown["datasets"]} == {hmb: "vetoed", other: "closed"}


async def test_a_redelivered_command_gets_the_same_outcomes_and_changes_nothing(stack, publisher, pool):
    dac_a = dac()
    hmb = await released(stack, publisher, pool, dac_a)
    app = uuid.uuid4()
    await ask(stack, publisher, pool, researcher_applies(app, hmb), "bob")
    submit = new_envelope(AccessSubmitRequested(application_id=app), source=stack.source, actor="bob")

    await publisher.publish(submit)
    first = await decided(pool, submit.id)
    await publisher.publish(submit)  # a client retry: the same command again, at a later offset
    again = await ask(stack, publisher, pool, AccessSubmitRequested(application_id=app), "bob")  # a new one

    assert first["outcome_event_id"] == (await decided(pool, submit.id))["outcome_event_id"]
    assert [r["code"] for r in again["reasons"]] == ["illegal_transition"] and again["state"] == "submitted"
    facts = await access_facts(stack, app)
    outcomes = [f for f in facts if f.causation_id == submit.id]
    assert [f.type for f in outcomes] == ["access.submitted", "access.checked"] * 2  # re-published unchanged
    assert outcomes[:2] == outcomes[2:]
    async with pool.acquire() as conn:
        shown = await access.get_application(conn, app)
        recorded = await conn.fetchval("SELECT jsonb_array_length(outcomes) FROM decider_access.decisions "
                                       "WHERE command_id = $1", submit.id)
    assert shown["round"] == 1 and recorded == 2
    assert [h.type for h in shown["history"]].count("access.submitted") == 1


async def test_the_timer_expires_a_grant_once(stack, publisher, pool):
    dac_a = dac()
    hmb = await released(stack, publisher, pool, dac_a)
    app = uuid.uuid4()
    await ask(stack, publisher, pool, researcher_applies(app, hmb), "carol")
    await ask(stack, publisher, pool, AccessSubmitRequested(application_id=app), "carol")
    expires_at = datetime.now(UTC) + timedelta(seconds=2)
    assert (await ask(stack, publisher, pool, approve(app, hmb, dac_a, expires_at), "chair"))["status"] == "accepted"

    row = await decided(pool, expire_command_id(grant_id_of(app, hmb)), timeout=60)

    assert (row["status"], row["outcome_type"], row["actor"]) == ("accepted", "access.expired", "worker:access-timer")
    async with pool.acquire() as conn:
        assert await access.active_grant(conn, "carol", hmb, datetime.now(UTC)) is None
        due = await access.due_grants(conn, datetime.now(UTC), limit=10_000)
    assert grant_id_of(app, hmb) not in {g["grant_id"] for g in due}
    await asyncio.sleep(3)  # a few more ticks of the timer: none may end the grant again
    expired = [f for f in await access_facts(stack, app) if f.type == "access.expired"]
    assert len({f.id for f in expired}) == 1
    assert all(f.actor == "worker:access-timer" for f in expired)
