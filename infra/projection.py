"""The projection engine: events in, PostgreSQL rows and Kafka positions out, in one transaction.

A projection owns one PostgreSQL schema (``proj_<name>_v<version>``) holding its tables
and a ``positions`` table with the next Kafka offset per partition. A batch of
records is applied and the positions advanced in the same transaction, so a
redelivery or a crash mid-batch changes nothing. Replay builds the same
tables in a fresh schema from offset 0; ``--verify`` compares a digest per
table with the live schema at the very positions the live schema had reached.

The projector does not run on faststream like the other workers (``infra.worker``): it must
seek each assigned partition to the position stored in PostgreSQL, not the consumer group's
commit, and apply a whole batch of records in one transaction with those positions, whereas a
faststream subscriber hands over one message at a time and commits through the group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import asyncpg
from aiokafka import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition

from genomebus.infra import kafka, telemetry
from genomebus.infra.faults import PROJECTOR_TRANSIENT
from genomebus.infra.settings import Settings
from genomebus.schemas.envelope import Envelope, EventDecodeError, decode

log = logging.getLogger("genomebus.projection")

Record = ConsumerRecord[bytes, bytes]
PoisonHandler = Callable[[Record, str, BaseException], Awaitable[None]]

TRANSIENT_ERRORS = PROJECTOR_TRANSIENT


class Projection:
    """Base of every projection: a name, the contexts it reads, its tables, and ``apply``."""

    name: ClassVar[str]
    contexts: ClassVar[tuple[str, ...]]
    tables: ClassVar[dict[str, str]]
    """Table name → column definitions (``CREATE TABLE schema.name (<definitions>)``)."""
    indexes: ClassVar[tuple[str, ...]] = ()
    """``CREATE INDEX`` statements with ``{schema}`` placeholders."""
    version: ClassVar[int] = 1
    """Bump when tables or folding change: the new version builds its own schema from offset 0."""

    async def apply(self, conn: asyncpg.Connection, schema: str, event: Envelope[Any], record: Record) -> None:
        """Fold one event into the tables; must be idempotent (the same event may come again)."""
        raise NotImplementedError

    async def apply_many(self, conn: asyncpg.Connection, schema: str,
                         events: Sequence[tuple[Envelope[Any], Record]]) -> None:
        """Fold a batch in log order; override with set-based SQL where it pays. Same result as ``apply``."""
        for event, record in events:
            await self.apply(conn, schema, event, record)

    @classmethod
    def live_schema(cls) -> str:
        return f"proj_{cls.name}_v{cls.version}"

    @classmethod
    def replay_schema(cls) -> str:
        return f"{cls.live_schema()}__replay"

    def topics(self, settings: Settings) -> list[str]:
        return [settings.topic(c) for c in self.contexts]


class PositionGap(Exception):
    """The consumer is ahead of the stored position (e.g. after a replay swap): seek back."""

    def __init__(self, tp: TopicPartition, stored: int) -> None:
        super().__init__(f"{tp.topic}[{tp.partition}] stored position {stored} is behind the consumer")
        self.tp = tp
        self.stored = stored


async def ensure_schema(conn: asyncpg.Connection, projection: Projection, schema: str) -> None:
    """Create the schema, its tables and positions if missing; safe from several processes at once."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", schema)
        await _create_schema(conn, projection, schema)


async def _create_schema(conn: asyncpg.Connection, projection: Projection, schema: str) -> None:
    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    await conn.execute(
        f'CREATE TABLE IF NOT EXISTS "{schema}".positions ('
        "topic text NOT NULL, partition integer NOT NULL, next_offset bigint NOT NULL, "
        "PRIMARY KEY (topic, partition))"
    )
    for table, columns in projection.tables.items():
        await conn.execute(f'CREATE TABLE IF NOT EXISTS "{schema}".{table} ({columns})')
    for index in projection.indexes:
        await conn.execute(index.format(schema=f'"{schema}"'))


async def stored_positions(conn: asyncpg.Connection, schema: str, *, lock: bool = False) -> dict[TopicPartition, int]:
    rows = await conn.fetch(f'SELECT topic, partition, next_offset FROM "{schema}".positions'
                            + (" FOR UPDATE" if lock else ""))
    return {TopicPartition(r["topic"], r["partition"]): r["next_offset"] for r in rows}


class Applier:
    """Applies batches of records to one schema of one projection."""

    def __init__(self, projection: Projection, schema: str, on_poison: PoisonHandler, *, detect_gaps: bool = True) -> None:
        self.projection = projection
        self.schema = schema
        self.on_poison = on_poison
        self.detect_gaps = detect_gaps
        self._gap_seeks: dict[TopicPartition, int] = {}

    async def apply_batch(self, conn: asyncpg.Connection, records: Sequence[Record]) -> dict[TopicPartition, int]:
        """Apply ``records`` in one transaction; return the new positions."""
        try:
            async with conn.transaction():
                return await self._apply(conn, records, isolate=False)
        except TRANSIENT_ERRORS:
            raise
        except PositionGap:
            raise
        except Exception:  # noqa: BLE001 - one bad event must not block the batch: find it
            async with conn.transaction():
                return await self._apply(conn, records, isolate=True)

    async def _apply(self, conn: asyncpg.Connection, records: Sequence[Record], *, isolate: bool) -> dict[TopicPartition, int]:
        positions = await stored_positions(conn, self.schema, lock=True)
        advanced: dict[TopicPartition, int] = {}
        events: list[tuple[Envelope[Any], Record]] = []
        poison: list[tuple[Record, str, BaseException]] = []
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            stored = advanced.get(tp, positions.get(tp, 0))
            if record.offset < stored:
                continue  # already applied: a redelivery
            if self.detect_gaps and record.offset > stored and tp not in advanced and self._gap_seeks.get(tp) != stored:
                self._gap_seeks[tp] = stored
                raise PositionGap(tp, stored)
            advanced[tp] = record.offset + 1
            try:
                events.append((decode(record.value or b""), record))
            except EventDecodeError as exc:
                poison.append((record, exc.reason, exc))
        if isolate:
            for event, record in events:
                try:
                    async with conn.transaction():  # a savepoint: only this event is undone
                        await self.projection.apply(conn, self.schema, event, record)
                except TRANSIENT_ERRORS:
                    raise
                except Exception as exc:  # noqa: BLE001 - the event cannot be projected: dead-letter it
                    poison.append((record, "projection_failed", exc))
        elif events:
            await self.projection.apply_many(conn, self.schema, events)
        # Dead letters are written before the positions commit, so none is lost, and only by the
        # attempt that commits, so a batch retried in isolation does not write them twice.
        for record, reason, exc in sorted(poison, key=lambda p: (p[0].topic, p[0].partition, p[0].offset)):
            await self.on_poison(record, reason, exc)
        if advanced:
            await conn.executemany(
                f'INSERT INTO "{self.schema}".positions (topic, partition, next_offset) VALUES ($1, $2, $3) '
                "ON CONFLICT (topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset",
                [(tp.topic, tp.partition, off) for tp, off in advanced.items()],
            )
        return {**positions, **advanced}


@dataclass
class Backoff:
    initial: float
    maximum: float
    current: float = 0.0

    async def wait(self) -> None:
        self.current = min(self.maximum, self.current * 2 if self.current else self.initial)
        await asyncio.sleep(self.current)

    def reset(self) -> None:
        self.current = 0.0


class _SeekToStored(ConsumerRebalanceListener):
    def __init__(self, runner: ProjectionRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.runner.seek_to_stored(list(assigned))


class ProjectionRunner:
    """The live projector loop of one projection: its own consumer group, positions in PostgreSQL."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool, projection: Projection, publisher: kafka.Publisher) -> None:
        self.settings = settings
        self.pool = pool
        self.projection = projection
        self.publisher = publisher
        self.schema = projection.live_schema()
        self.group_id = f"genomebus-projection-{projection.name}"
        self.applier = Applier(projection, self.schema, self._dead_letter)
        self.consumer = kafka.consumer(settings, group_id=self.group_id)
        self.applied = 0
        self._committed_at = 0.0

    async def _dead_letter(self, record: Record, reason: str, error: BaseException) -> None:
        log.warning("dead-lettering %s[%d]@%d: %s", record.topic, record.partition, record.offset, reason)
        await kafka.send_dead_letter(self.publisher, record, f"projector:{self.projection.name}", reason, error)

    async def seek_to_stored(self, tps: list[TopicPartition]) -> None:
        async with self.pool.acquire() as conn:
            positions = await stored_positions(conn, self.schema)
        for tp in tps:
            self.consumer.seek(tp, positions.get(tp, 0))

    async def run(self, stop: asyncio.Event) -> None:
        async with self.pool.acquire() as conn:
            await ensure_schema(conn, self.projection, self.schema)
        self.consumer.subscribe(self.projection.topics(self.settings), listener=_SeekToStored(self))
        await self.consumer.start()
        backoff = Backoff(self.settings.consumer_retry_initial_s, self.settings.consumer_retry_max_s)
        try:
            while not stop.is_set():
                batch = await self.consumer.getmany(timeout_ms=500, max_records=self.settings.projector_batch_size)
                records = [r for rs in batch.values() for r in rs]
                if not records:
                    continue
                while not stop.is_set():
                    try:
                        await self._apply(records)
                        backoff.reset()
                        break
                    except PositionGap as gap:
                        self._rewind(batch, gap)
                        break
                    except TRANSIENT_ERRORS as exc:
                        log.warning("transient error in projection %s, retrying: %r", self.projection.name, exc)
                        await backoff.wait()
        finally:
            with contextlib.suppress(Exception):
                await self.consumer.stop()

    async def _apply(self, records: list[Record]) -> None:
        ctx = telemetry.context_from_headers(records[0].headers)
        with telemetry.tracer().start_as_current_span(
            f"project {self.projection.name}", context=ctx, kind=telemetry.CONSUMER
        ) as span:
            span.set_attribute("messaging.batch.message_count", len(records))
            async with self.pool.acquire() as conn:
                positions = await self.applier.apply_batch(conn, records)
        self.applied += len(records)
        if time.monotonic() - self._committed_at > 2.0:
            self._committed_at = time.monotonic()
            with contextlib.suppress(KafkaError):  # for operators' lag views only: the truth is in PostgreSQL
                await self.consumer.commit({tp: off for tp, off in positions.items()
                                            if tp in self.consumer.assignment()})

    def _rewind(self, batch: dict[TopicPartition, list[Record]], gap: PositionGap) -> None:
        """The batch was rolled back: fetch it again, the gapped partition from its stored position."""
        for tp, records in batch.items():
            self.consumer.seek(tp, gap.stored if tp == gap.tp else records[0].offset)


# -- replay and verification --------------------------------------------------------------


async def table_digests(conn: asyncpg.Connection, projection: Projection, schema: str) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent md5 of every table of the projection."""
    digests: dict[str, tuple[int, str]] = {}
    for table in (*projection.tables, "positions"):
        row = await conn.fetchrow(
            f"SELECT count(*) AS n, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) AS d "
            f'FROM "{schema}".{table} t'
        )
        digests[table] = (row["n"], row["d"])
    return digests


@dataclass
class ReplayResult:
    projection: str
    events: int
    seconds: float
    live: dict[str, tuple[int, str]] | None
    rebuilt: dict[str, tuple[int, str]]
    swapped: bool

    @property
    def equal(self) -> bool | None:
        return None if self.live is None else self.live == self.rebuilt

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


async def replay(settings: Settings, pool: asyncpg.Pool, projection: Projection, publisher: kafka.Publisher, *,
                 verify: bool, progress: Callable[[int, int], None] | None = None,
                 batch_size: int = 2000) -> ReplayResult:
    """Rebuild ``projection`` from offset 0 into a fresh schema.

    With ``verify`` the rebuild stops at the positions the live tables had
    reached when it began, and digests of both are compared; the live tables
    stay. Without it, the rebuilt schema replaces the live one atomically.
    """
    target = projection.replay_schema()
    live = projection.live_schema()
    async with pool.acquire() as conn:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{target}" CASCADE')
        await ensure_schema(conn, projection, target)
        await ensure_schema(conn, projection, live)
        live_digests = None
        if verify:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                until = await stored_positions(conn, live)
                live_digests = await table_digests(conn, projection, live)
        else:
            until = await kafka.end_offsets(settings, projection.topics(settings))

    async def skip_poison(record: Record, reason: str, error: BaseException) -> None:
        # The live projector dead-lettered it already; a replay must not publish it again.
        log.info("replay skips unprojectable %s[%d]@%d: %s", record.topic, record.partition, record.offset, reason)

    applier = Applier(projection, target, skip_poison, detect_gaps=False)
    total = sum(until.values())
    done = 0
    started = time.perf_counter()
    batch: list[Record] = []

    async def flush() -> None:
        nonlocal done
        async with pool.acquire() as conn:
            await applier.apply_batch(conn, batch)
        done += len(batch)
        batch.clear()
        if progress:
            progress(done, total)

    async for record in kafka.read_log(settings, projection.topics(settings), until=until):
        batch.append(record)
        if len(batch) >= batch_size:
            await flush()
    if batch:
        await flush()
    seconds = time.perf_counter() - started
    async with pool.acquire() as conn:
        rebuilt = await table_digests(conn, projection, target)
        swapped = False
        if not verify:
            async with conn.transaction():
                await conn.execute(f'DROP SCHEMA IF EXISTS "{live}" CASCADE')
                await conn.execute(f'ALTER SCHEMA "{target}" RENAME TO "{live}"')
            swapped = True
        else:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{target}" CASCADE')
    return ReplayResult(projection.name, done, seconds, live_digests, rebuilt, swapped)


# -- read-your-writes -------------------------------------------------------------------------


class NotYetProjected(TimeoutError):
    """The projection did not reach the produced offset in time."""


async def wait_for_position(pool: asyncpg.Pool, projection: type[Projection] | Projection, topic: str, partition: int,
                            offset: int, timeout: float) -> float:
    """Wait until ``projection`` has applied ``offset``; return the seconds waited."""
    schema = projection.live_schema()
    started = time.monotonic()
    delay = 0.005
    while True:
        async with pool.acquire() as conn:
            try:
                stored = await conn.fetchval(
                    f'SELECT next_offset FROM "{schema}".positions WHERE topic = $1 AND partition = $2', topic, partition
                )
            except asyncpg.UndefinedTableError:
                stored = None
        if stored is not None and stored > offset:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise NotYetProjected(f"{projection.name} has not reached {topic}[{partition}]@{offset} after {timeout}s")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)
