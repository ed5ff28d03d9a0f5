#!/usr/bin/env python
"""Projection throughput benchmark: publish, live projection, raw consume, decode, replay.

Run from the repository root::

    .venv/bin/python bench/bench_projection.py [--events N] [--data-dir DIR] [--keep]

Without ``--data-dir`` a fresh local stack is started in a new 0755 directory
under /var/tmp (PostgreSQL runs as ``nobody`` and must traverse it), and it is
stopped and removed at the end (``--keep`` keeps the directory). With
``--data-dir`` pointing at a running stack, that stack is used and left running;
pointing at a stopped one starts it there and stops it afterwards.

Phases, all against the stack's ``genomebus.reception`` topic:

1. warm-up: one event, waited for, so the live projector has joined its group;
2. publish N ``dataset.registered`` events through ``Publisher.send`` (futures
   collected, awaited together) and poll ``proj_datasets.positions`` until the
   live projector (running in the stack) has reached every produced offset;
3. raw consume of the whole topic (manual assign, no decoding), then
   consume + ``schemas.envelope.decode`` of every record;
4. breakdown: decode alone (in memory), and ``Applier.apply_batch`` alone on the
   consumed records into a scratch schema at the live batch size;
5. ``infra.projection.replay(..., verify=True)``.

Figures are printed as a table and written to bench/results/projection-<timestamp>.json.
Every loop is bounded by a deadline, so the script always ends by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402  (puts the repository root on sys.path)
    BenchTimeout, Deadline, console, data_dir_for, run_prefix, run_timed, with_stack, write_results,
)

import asyncpg  # noqa: E402
from aiokafka.structs import TopicPartition  # noqa: E402
from rich.table import Table  # noqa: E402

from genomebus.infra.readmodels.datasets import DatasetsProjection  # noqa: E402
from genomebus.infra import db, kafka  # noqa: E402
from genomebus.infra.projection import Applier, Record, ensure_schema, replay, stored_positions, wait_for_position  # noqa: E402
from genomebus.infra.settings import Settings  # noqa: E402
from genomebus.schemas.envelope import Envelope, EventDecodeError, decode, new_envelope  # noqa: E402
from genomebus.schemas.reception import DatasetRegistered  # noqa: E402

SCRATCH_APPLIER = "proj_datasets__bench_applier"


@dataclass
class Row:
    name: str
    events: int
    seconds: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    breakdown: list[Row] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def row(self, name: str) -> Row | None:
        return next((r for r in (*self.rows, *self.breakdown) if r.name == name), None)


# -- events ------------------------------------------------------------------------------


def make_envelopes(settings: Settings, prefix: str, n: int, *, start: int = 0) -> list[Envelope[Any]]:
    out = []
    for i in range(start, start + n):
        data = DatasetRegistered(
            dataset_id=f"GDI-FI-DATASET-{prefix}{i:07d}",
            title=f"Benchmark dataset {prefix}-{i}",
            description="Synthetic dataset registered by bench/bench_projection.py",
            data_use=("DUO:0000042",),
            keywords=("bench", "synthetic"),
            publisher="genomebus bench",
        )
        out.append(new_envelope(data, source=settings.source, actor="bench"))
    return out


# -- phase: publish + live projection ------------------------------------------------------


async def poll_positions(pool: asyncpg.Pool, schema: str, targets_ready: asyncio.Event,
                         targets: dict[TopicPartition, int], timeline: list[tuple[float, dict[TopicPartition, int]]],
                         deadline: Deadline, interval: float = 0.02) -> float:
    """Poll the live schema's positions until all targets are reached; return perf_counter() then."""
    async with pool.acquire() as conn:
        while True:
            positions = await stored_positions(conn, schema)
            now = time.perf_counter()
            timeline.append((now, positions))
            if targets_ready.is_set() and all(positions.get(tp, 0) >= off for tp, off in targets.items()):
                return now
            deadline.check(f"waiting for the live projector (positions {positions}, targets {targets})")
            await asyncio.sleep(interval)


def applied_since(baseline: dict[TopicPartition, int], positions: dict[TopicPartition, int],
                  tps: set[TopicPartition]) -> int:
    return sum(max(0, positions.get(tp, 0) - baseline.get(tp, 0)) for tp in tps)


async def publish_and_project(settings: Settings, pool: asyncpg.Pool, publisher: kafka.Publisher, n: int,
                              deadline: Deadline, res: Results) -> None:
    schema = DatasetsProjection.live_schema()
    prefix = run_prefix()
    res.info["dataset_id_prefix"] = f"GDI-FI-DATASET-{prefix}"

    # Warm-up: the live projector must have joined its group (~5 s on Tansu) before timing starts.
    t = time.perf_counter()
    warm = make_envelopes(settings, prefix, 1, start=9_000_000)[0]
    where = await publisher.publish(warm)
    await wait_for_position(pool, DatasetsProjection, where.topic, where.partition, where.offset,
                            timeout=max(5.0, min(90.0, deadline.left())))
    res.info["warmup_seconds"] = round(time.perf_counter() - t, 3)

    t = time.perf_counter()
    envelopes = make_envelopes(settings, prefix, n)
    res.info["build_envelopes_seconds"] = round(time.perf_counter() - t, 3)

    async with pool.acquire() as conn:
        baseline = await stored_positions(conn, schema)
    targets: dict[TopicPartition, int] = {}
    targets_ready = asyncio.Event()
    timeline: list[tuple[float, dict[TopicPartition, int]]] = []
    poller = asyncio.create_task(poll_positions(pool, schema, targets_ready, targets, timeline, deadline))
    try:
        t0 = time.perf_counter()
        futures = []
        for env in envelopes:
            futures.append(await publisher.send(env))
            if len(futures) % 1000 == 0:
                deadline.check("publishing")
        t_queued = time.perf_counter()
        metas = await asyncio.wait_for(asyncio.gather(*futures), timeout=max(1.0, deadline.left()))
        t_published = time.perf_counter()
        for meta in metas:
            tp = TopicPartition(meta.topic, meta.partition)
            targets[tp] = max(targets.get(tp, 0), meta.offset + 1)
        targets_ready.set()
        t_done = await asyncio.wait_for(poller, timeout=max(1.0, deadline.left()))
    finally:
        if not poller.done():
            poller.cancel()
            with contextlib.suppress(BaseException):
                await poller

    tps = set(targets)
    # First poll that saw any of this run's events applied.
    t_first = next((t for t, pos in timeline if applied_since(baseline, pos, tps) > 0), t_done)
    at_publish_end = next((pos for t, pos in timeline if t >= t_published), timeline[-1][1])
    backlog = n - applied_since(baseline, at_publish_end, tps)

    res.rows.append(Row("publish", n, t_published - t0,
                        f"send() loop {t_queued - t0:.2f}s, then acks; incl. encode+validate"))
    res.rows.append(Row("projected end-to-end", n, t_done - t0, "first send → positions reached"))
    res.rows.append(Row("projector only", n, t_done - t_first,
                        "first projected event seen → all projected"))
    if backlog > 0 and t_done > t_published:
        res.breakdown.append(Row("projector catch-up after publish", backlog, t_done - t_published,
                                 "backlog left when the last ack arrived"))
    res.info.update(
        targets={f"{tp.topic}[{tp.partition}]": off for tp, off in sorted(targets.items())},
        baseline={f"{tp.topic}[{tp.partition}]": off for tp, off in sorted(baseline.items())},
        backlog_at_publish_end=backlog,
        position_polls=len(timeline),
    )


# -- phase: raw consume / decode ------------------------------------------------------------


async def consume_all(settings: Settings, topic: str, until: dict[TopicPartition, int], deadline: Deadline, *,
                      decode_each: bool, keep: list[Record] | None = None) -> tuple[int, float, int]:
    """Read ``topic`` from offset 0 to ``until`` with a manually assigned consumer; (records, seconds, errors)."""
    pending = {tp: end for tp, end in until.items() if end > 0}
    if not pending:
        return 0, 0.0, 0
    # Same fetch sizes as infra.kafka.read_log (what replay uses), no group: no join delay.
    c = kafka.consumer(settings, max_poll_records=5000, fetch_max_bytes=16 * 1024 * 1024)
    await c.start()
    count = errors = 0
    try:
        c.assign(list(pending))
        await c.seek_to_beginning(*pending)
        started = time.perf_counter()
        last_progress = time.monotonic()
        while pending:
            deadline.check(f"consuming {topic}")
            batch = await c.getmany(*pending, timeout_ms=500)
            if batch:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > 10.0:
                raise BenchTimeout(f"no records from {topic} for 10 s; still pending {pending}")
            for tp, records in batch.items():
                end = pending.get(tp)
                if end is None:
                    continue
                for record in records:
                    if record.offset >= end:
                        break
                    count += 1
                    if decode_each:
                        try:
                            decode(record.value or b"")
                        except EventDecodeError:
                            errors += 1
                    if keep is not None:
                        keep.append(record)
                if records[-1].offset + 1 >= end:
                    pending.pop(tp, None)
                    c.pause(tp)
        return count, time.perf_counter() - started, errors
    finally:
        await c.stop()


def decode_only(records: list[Record]) -> tuple[int, float]:
    started = time.perf_counter()
    for r in records:
        with contextlib.suppress(EventDecodeError):
            decode(r.value or b"")
    return len(records), time.perf_counter() - started


# -- phase: apply breakdown -----------------------------------------------------------------


async def applier_only(pool: asyncpg.Pool, records: list[Record], batch_size: int) -> tuple[int, float]:
    """``Applier.apply_batch`` (the live code path) on in-memory records into a scratch schema."""
    projection = DatasetsProjection()

    async def skip(record: Record, reason: str, error: BaseException) -> None:
        return None

    applier = Applier(projection, SCRATCH_APPLIER, skip, detect_gaps=False)
    async with pool.acquire() as conn:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{SCRATCH_APPLIER}" CASCADE')
        await ensure_schema(conn, projection, SCRATCH_APPLIER)
        started = time.perf_counter()
        for i in range(0, len(records), batch_size):
            await applier.apply_batch(conn, records[i:i + batch_size])
        seconds = time.perf_counter() - started
        await conn.execute(f'DROP SCHEMA IF EXISTS "{SCRATCH_APPLIER}" CASCADE')
        return len(records), seconds


# -- the run ----------------------------------------------------------------------------------


async def bench(settings: Settings, n: int, deadline: Deadline, res: Results) -> None:
    topic = settings.topic("reception")
    pool = await db.connect(settings, min_size=1, max_size=4)
    try:
        async with kafka.Publisher(settings) as publisher:
            console.print(f"[bold]publish {n} events and wait for the live projector …")
            await publish_and_project(settings, pool, publisher, n, deadline, res)

            until = await kafka.end_offsets(settings, [topic], timeout=10.0)
            total = sum(until.values())
            res.info["topic_end_offsets"] = {f"{tp.topic}[{tp.partition}]": off for tp, off in sorted(until.items())}
            console.print(f"[bold]raw consume of {topic} ({total} records) …")
            records: list[Record] = []
            count, secs, _ = await consume_all(settings, topic, until, deadline, decode_each=False, keep=records)
            res.rows.append(Row("raw consume", count, secs, "manual assign, no decode"))
            console.print("[bold]consume + decode …")
            count, secs, errors = await consume_all(settings, topic, until, deadline, decode_each=True)
            res.rows.append(Row("consume+decode", count, secs, f"{errors} undecodable" if errors else ""))

            console.print("[bold]breakdown: decode only, Applier only …")
            count, secs = decode_only(records)
            res.breakdown.append(Row("decode only (in memory)", count, secs, "genomebus.schemas.envelope.decode"))
            deadline.check("breakdown")
            count, secs = await applier_only(pool, records, settings.projector_batch_size)
            res.breakdown.append(Row("Applier.apply_batch only", count, secs,
                                     f"in-memory records, batches of {settings.projector_batch_size}, incl. decode"))
            del records

            deadline.check("replay")
            console.print("[bold]replay --verify …")
            started = time.perf_counter()
            result = await asyncio.wait_for(
                replay(settings, pool, DatasetsProjection(), publisher, verify=True),
                timeout=max(1.0, deadline.left()),
            )
            wall = time.perf_counter() - started
            res.rows.append(Row("replay --verify", result.events, wall,
                                f"equal={result.equal}; rebuild alone {result.seconds:.2f}s"))
            res.breakdown.append(Row("replay rebuild only", result.events, result.seconds,
                                     "read_log + Applier, batches of 2000, no digests"))
            res.info["replay_equal"] = result.equal
            res.info["replay_live_digests"] = result.live
            res.info["replay_rebuilt_digests"] = result.rebuilt
    finally:
        await pool.close()


# -- output --------------------------------------------------------------------------------


def render(res: Results) -> None:
    raw = res.row("raw consume")
    raw_rate = raw.rate if raw else 0.0

    def table(title: str, rows: list[Row]) -> Table:
        t = Table(title=title)
        t.add_column("phase")
        t.add_column("events", justify="right")
        t.add_column("seconds", justify="right")
        t.add_column("events/s", justify="right")
        t.add_column("ratio vs raw consume", justify="right")
        t.add_column("note", style="dim")
        for r in rows:
            ratio = f"{r.rate / raw_rate:.3f}" if raw_rate else "–"
            t.add_row(r.name, f"{r.events}", f"{r.seconds:.2f}", f"{r.rate:,.0f}", ratio, r.note)
        return t

    console.print(table("genomebus projection benchmark", res.rows))
    if res.breakdown:
        console.print(table("where the time goes", res.breakdown))


def write_json(res: Results) -> Path:
    raw = res.row("raw consume")
    raw_rate = raw.rate if raw else 0.0

    def dump(rows: list[Row]) -> list[dict[str, Any]]:
        return [{"phase": r.name, "events": r.events, "seconds": round(r.seconds, 4),
                 "events_per_s": round(r.rate, 1),
                 "ratio_vs_raw_consume": round(r.rate / raw_rate, 4) if raw_rate else None,
                 "note": r.note} for r in rows]

    return write_results("projection", {"rows": dump(res.rows), "breakdown": dump(res.breakdown), "info": res.info})


# -- main ------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", "-n", type=int, default=20000, help="events to publish (default 20000)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="data directory of a running stack (used, left running) or where to start one")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    parser.add_argument("--timeout", type=float, default=None,
                        help="overall limit in seconds after the stack is up (default 300 + N/25)")
    args = parser.parse_args()
    if args.events < 1:
        parser.error("--events must be at least 1")
    timeout = args.timeout if args.timeout is not None else 300 + args.events / 25

    data_dir, created_dir = data_dir_for(args.data_dir)
    settings = Settings(data_dir=data_dir)

    res = Results()
    res.info.update(events=args.events, data_dir=str(data_dir), python=platform.python_version(),
                    cpus=os.cpu_count(), projector_batch_size=settings.projector_batch_size,
                    topic_partitions=settings.topic_partitions, started=datetime.now().isoformat())

    def body() -> int:
        code = run_timed(lambda deadline: bench(settings, args.events, deadline, res), timeout, res.info)
        render(res)
        console.print(f"results: {write_json(res)}")
        return code

    return with_stack(settings, res.info, body, created_dir=created_dir, keep_stack=False, keep_dir=args.keep)

if __name__ == "__main__":
    sys.exit(main())
