"""The projector against the real broker and database: duplicates, poison, crashes, replay."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import pytest

from genomebus.infra.readmodels.datasets import DatasetsProjection
from genomebus.infra import kafka
from genomebus.infra.projection import stored_positions, wait_for_position
from genomebus.infra.stack import pid_alive, read_state
from genomebus.schemas.envelope import encode, new_envelope
from genomebus.schemas.reception import DatasetRegistered
from tests.integration.helpers import cli, dead_letters, new_dataset_id

pytestmark = pytest.mark.integration
SCHEMA = DatasetsProjection.live_schema()


def registered(dataset_id: str) -> DatasetRegistered:
    return DatasetRegistered(dataset_id=dataset_id, title=f"dataset {dataset_id}", data_use=("DUO:0000042",))


async def wait_all_projected(pool, published: list[kafka.Published], timeout: float = 120) -> None:
    last: dict[tuple[str, int], int] = {}
    for p in published:
        last[(p.topic, p.partition)] = max(last.get((p.topic, p.partition), -1), p.offset)
    for (topic, partition), offset in last.items():
        await wait_for_position(pool, DatasetsProjection, topic, partition, offset, timeout)


async def test_an_event_delivered_twice_makes_one_row(stack, pool, publisher):
    dataset_id = new_dataset_id()
    envelope = new_envelope(registered(dataset_id), source=stack.source, actor="test")
    first = await publisher.publish(envelope)
    second = await publisher.publish(envelope)  # a producer retry: same event, new offset
    assert second.offset > first.offset
    await wait_all_projected(pool, [first, second])
    async with pool.acquire() as conn:
        assert await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.datasets WHERE dataset_id = $1", dataset_id) == 1
        assert await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.dataset_events WHERE dataset_id = $1",
                                   dataset_id) == 1


async def test_a_second_registration_of_the_same_id_keeps_the_first(stack, pool, publisher):
    dataset_id = new_dataset_id()
    first = await publisher.publish(new_envelope(registered(dataset_id), source=stack.source, actor="a"))
    other = DatasetRegistered(dataset_id=dataset_id, title="a different title", data_use=("DUO:0000006",))
    second = await publisher.publish(new_envelope(other, source=stack.source, actor="b"))
    await wait_all_projected(pool, [first, second])
    async with pool.acquire() as conn:
        title = await conn.fetchval(f"SELECT title FROM {SCHEMA}.datasets WHERE dataset_id = $1", dataset_id)
        history = await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.dataset_events WHERE dataset_id = $1", dataset_id)
    assert title == f"dataset {dataset_id}"
    assert history == 2  # both events are on record


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\x00\x01 definitely not json", "not_json"),
        (b"[1, 2, 3]", "not_an_object"),
        (json.dumps({"type": "dataset.exploded", "schema_version": 1}).encode(), "unknown_type"),
        (json.dumps({"specversion": "1.0", "type": "dataset.registered", "schema_version": 1, "data": {
            "type": "dataset.registered", "dataset_id": "nope"}}).encode(), "invalid_event"),
    ],
)
async def test_a_poison_message_goes_to_the_dead_letter_topic_and_the_projector_goes_on(
        stack, pool, publisher, value, reason):
    key = new_dataset_id()
    poison = await publisher.publish_raw(stack.topic("reception"), value, key=key.encode())
    good = await publisher.publish(new_envelope(registered(key), source=stack.source, actor="test"))
    await wait_all_projected(pool, [kafka.Published(poison.topic, poison.partition, poison.offset, ""), good])

    letters = [d for d in await dead_letters(stack)
               if d["topic"] == poison.topic and d["partition"] == poison.partition and d["offset"] == poison.offset]
    # Every consumer that met the message parks it once, under its own name.
    by_consumer = {d["consumer"]: d for d in letters}
    assert len(by_consumer) == len(letters)
    letter = by_consumer["projector:datasets"]
    assert letter["reason"] == reason
    assert letter["original"] == value
    assert letter["key"] == key
    assert letter["error"]
    async with pool.acquire() as conn:
        assert await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.datasets WHERE dataset_id = $1", key) == 1


async def test_killing_the_projector_mid_stream_loses_and_duplicates_nothing(stack, pool, publisher):
    ids = [new_dataset_id() for _ in range(3000)]
    futures = [await publisher.send(new_envelope(registered(i), source=stack.source, actor="bulk")) for i in ids]
    metas = await asyncio.gather(*futures)
    published = [kafka.Published(m.topic, m.partition, m.offset, "") for m in metas]

    # Kill -9 the projector as soon as it has applied part of the stream.
    projector_pid = read_state(stack.data_dir)["components"]["projector"]["pid"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        async with pool.acquire() as conn:
            applied = await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.datasets WHERE dataset_id = ANY($1)", ids)
        if applied > 0:
            break
        await asyncio.sleep(0.05)
    os.kill(projector_pid, signal.SIGKILL)
    assert 0 < applied < len(ids), "the kill should land mid-stream"

    # The supervisor restarts it; it resumes from the positions stored with the rows.
    await wait_all_projected(pool, published, timeout=180)
    new_pid = read_state(stack.data_dir)["components"]["projector"]["pid"]
    assert new_pid != projector_pid and pid_alive(new_pid)
    async with pool.acquire() as conn:
        assert await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.datasets WHERE dataset_id = ANY($1)", ids) == len(ids)
        assert await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.dataset_events WHERE dataset_id = ANY($1)",
                                   ids) == len(ids)

    result = cli(stack, "replay", "--projection", "datasets", "--verify", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "NO" not in result.stdout
    assert "yes" in result.stdout


async def test_replay_verify_fails_when_live_tables_were_tampered_with(stack, pool, publisher):
    dataset_id = new_dataset_id()
    p = await publisher.publish(new_envelope(registered(dataset_id), source=stack.source, actor="test"))
    await wait_all_projected(pool, [p])
    async with pool.acquire() as conn:
        await conn.execute(f"UPDATE {SCHEMA}.datasets SET title = 'tampered' WHERE dataset_id = $1", dataset_id)
    try:
        result = cli(stack, "replay", "--projection", "datasets", "--verify", timeout=300)
        assert result.returncode == 3
        assert "NO" in result.stdout
    finally:
        # A replay without --verify rebuilds and swaps in the true tables.
        repaired = cli(stack, "replay", "--projection", "datasets", timeout=300)
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    async with pool.acquire() as conn:
        assert await conn.fetchval(f"SELECT title FROM {SCHEMA}.datasets WHERE dataset_id = $1",
                                   dataset_id) == f"dataset {dataset_id}"
    # The live projector carries on after the swap.
    after = await publisher.publish(new_envelope(registered(new_dataset_id()), source=stack.source, actor="test"))
    await wait_all_projected(pool, [after])
    async with pool.acquire() as conn:
        positions = await stored_positions(conn, SCHEMA)
    assert positions[next(tp for tp in positions if (tp.topic, tp.partition) == (after.topic, after.partition))] \
        > after.offset


async def test_unknown_projection_is_refused(stack):
    result = cli(stack, "replay", "--projection", "nonesuch")
    assert result.returncode == 2
    assert "no projection" in result.stderr
