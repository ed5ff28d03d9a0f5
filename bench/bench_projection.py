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
4. breakdown: decode alone (in memory), ``Applier.apply_batch`` alone on the
   consumed records into a scratch schema at the live batch size, and an
   experimental set-based apply (a few statements per batch) for comparison;
5. ``infra.projection.replay(..., verify=True)``.

Figures are printed as a table and written to bench/results/projection-<timestamp>.json.
Every loop is bounded by a deadline, so the script always ends by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import asyncpg  # noqa: E402
from aiokafka.structs import TopicPartition  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from consumers.projector import DatasetsProjection  # noqa: E402
from infra import db, kafka, stack  # noqa: E402
from infra.projection import Applier, Record, ensure_schema, replay, stored_positions, wait_for_position  # noqa: E402
from infra.settings import Settings  # noqa: E402
from schemas.envelope import Envelope, EventDecodeError, decode, new_envelope  # noqa: E402
from schemas.reception import DatasetRegistered  # noqa: E402

console = Console()
if console.width < 140:
    console = Console(width=140)  # the table is wide; do not wrap it in pipes and logs

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SCRATCH_APPLIER = "proj_datasets__bench_applier"
SCRATCH_SETBASED = "proj_datasets__bench_setbased"


class BenchTimeout(RuntimeError):
    pass


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


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def check(self, what: str) -> None:
        if self.left() <= 0:
            raise BenchTimeout(f"timed out during {what}")


# -- events ------------------------------------------------------------------------------


def run_prefix() -> str:
    """Digits that keep this run's dataset ids distinct from earlier runs on the same stack."""
    return f"{int(time.time()) % 10**8:08d}"


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
        return len(records), time.perf_counter() - started


async def setbased_apply_batch(conn: asyncpg.Connection, schema: str, records: list[Record]) -> None:
    """Experimental: the datasets projection as a handful of statements per batch instead of 2 per event.

    Same tables, same idempotence (event_id dedup; only fresh events touch ``datasets``),
    same positions-in-the-same-transaction rule. Not used by the node: here only to size the gain.
    """
    events = []
    for r in records:
        with contextlib.suppress(EventDecodeError):
            events.append((decode(r.value or b""), r))
    async with conn.transaction():
        rows = await conn.fetch(f'SELECT topic, partition, next_offset FROM "{schema}".positions FOR UPDATE')
        stored = {(row["topic"], row["partition"]): row["next_offset"] for row in rows}
        todo = [(e, r) for e, r in events if r.offset >= stored.get((r.topic, r.partition), 0)]
        fresh: set[Any] = set()
        if todo:
            fresh_rows = await conn.fetch(
                f'INSERT INTO "{schema}".dataset_events '
                "SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], "
                "$6::text[], $7::int[], $8::bigint[], $9::jsonb[]) "
                "ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
                [e.id for e, _ in todo], [e.subject for e, _ in todo], [e.type for e, _ in todo],
                [e.time for e, _ in todo], [e.actor for e, _ in todo], [r.topic for _, r in todo],
                [r.partition for _, r in todo], [r.offset for _, r in todo],
                [json.dumps(e.data.model_dump(mode="json")) for e, _ in todo],
            )
            fresh = {row["event_id"] for row in fresh_rows}
        datasets = [
            (d.dataset_id, d.title, d.description, list(d.data_use), list(d.keywords), d.publisher,
             str(d.landing_page) if d.landing_page else None, "registered", e.time, e.actor)
            for e, _ in todo if e.id in fresh and isinstance((d := e.data), DatasetRegistered)
        ]
        if datasets:
            await conn.executemany(
                f'INSERT INTO "{schema}".datasets VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $9) '
                "ON CONFLICT (dataset_id) DO NOTHING",
                datasets,
            )
        advanced: dict[tuple[str, int], int] = {}
        for r in records:
            advanced[(r.topic, r.partition)] = max(advanced.get((r.topic, r.partition), 0), r.offset + 1)
        await conn.executemany(
            f'INSERT INTO "{schema}".positions (topic, partition, next_offset) VALUES ($1, $2, $3) '
            "ON CONFLICT (topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset",
            [(t, p, o) for (t, p), o in advanced.items()],
        )


async def setbased_only(pool: asyncpg.Pool, records: list[Record], batch_size: int) -> tuple[int, float]:
    projection = DatasetsProjection()
    async with pool.acquire() as conn:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{SCRATCH_SETBASED}" CASCADE')
        await ensure_schema(conn, projection, SCRATCH_SETBASED)
        started = time.perf_counter()
        for i in range(0, len(records), batch_size):
            await setbased_apply_batch(conn, SCRATCH_SETBASED, records[i:i + batch_size])
        return len(records), time.perf_counter() - started


async def scratch_digests_equal(pool: asyncpg.Pool) -> bool:
    """The set-based variant must build exactly what the Applier built."""
    from infra.projection import table_digests

    projection = DatasetsProjection()
    async with pool.acquire() as conn:
        a = await table_digests(conn, projection, SCRATCH_APPLIER)
        b = await table_digests(conn, projection, SCRATCH_SETBASED)
    return a == b


async def drop_scratch(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        for schema in (SCRATCH_APPLIER, SCRATCH_SETBASED):
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


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

            console.print("[bold]breakdown: decode only, Applier only, set-based apply …")
            count, secs = decode_only(records)
            res.breakdown.append(Row("decode only (in memory)", count, secs, "schemas.envelope.decode"))
            deadline.check("breakdown")
            count, secs = await applier_only(pool, records, settings.projector_batch_size)
            res.breakdown.append(Row("Applier.apply_batch only", count, secs,
                                     f"in-memory records, batches of {settings.projector_batch_size}, incl. decode"))
            deadline.check("breakdown")
            count, secs = await setbased_only(pool, records, settings.projector_batch_size)
            same = await scratch_digests_equal(pool)
            res.breakdown.append(Row("set-based apply (experiment)", count, secs,
                                     f"unnest/executemany per batch, incl. decode; same tables: {same}"))
            res.info["setbased_same_digests"] = same
            await drop_scratch(pool)
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
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    raw = res.row("raw consume")
    raw_rate = raw.rate if raw else 0.0

    def dump(rows: list[Row]) -> list[dict[str, Any]]:
        return [{"phase": r.name, "events": r.events, "seconds": round(r.seconds, 4),
                 "events_per_s": round(r.rate, 1),
                 "ratio_vs_raw_consume": round(r.rate / raw_rate, 4) if raw_rate else None,
                 "note": r.note} for r in rows]

    path = RESULTS_DIR / f"projection-{datetime.now().strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps({"rows": dump(res.rows), "breakdown": dump(res.breakdown), "info": res.info},
                               indent=2, default=str))
    return path


# -- stack handling ----------------------------------------------------------------------------


def stack_is_running(data_dir: Path) -> bool:
    return bool(stack.running_supervisor(data_dir)) and stack.read_state(data_dir).get("status") == "running"


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

    created_dir = False
    if args.data_dir is None:
        data_dir = Path(tempfile.mkdtemp(prefix="genomebus-bench-", dir="/var/tmp"))
        data_dir.chmod(0o755)  # PostgreSQL runs as nobody and must traverse it
        created_dir = True
    else:
        data_dir = args.data_dir.resolve()
    settings = Settings(data_dir=data_dir)

    res = Results()
    res.info.update(events=args.events, data_dir=str(data_dir), python=platform.python_version(),
                    cpus=os.cpu_count(), projector_batch_size=settings.projector_batch_size,
                    topic_partitions=settings.topic_partitions, started=datetime.now().isoformat())
    started_stack = False
    code = 0
    try:
        if stack_is_running(data_dir):
            console.print(f"using the running stack in {data_dir}")
            res.info["stack"] = "existing"
        else:
            console.print(f"starting a local stack in {data_dir} …")
            t = time.perf_counter()
            started_stack = True
            stack.start_detached(settings, timeout=180.0)
            res.info["stack"] = "started"
            res.info["stack_start_seconds"] = round(time.perf_counter() - t, 1)
            console.print(f"  stack up in {res.info['stack_start_seconds']} s")
        deadline = Deadline(timeout)
        try:
            asyncio.run(asyncio.wait_for(bench(settings, args.events, deadline, res), timeout=timeout + 30))
        except (BenchTimeout, TimeoutError) as exc:
            console.print(f"[red]benchmark stopped: {exc!r}")
            res.info["error"] = repr(exc)
            code = 2
        render(res)
        console.print(f"results: {write_json(res)}")
    except KeyboardInterrupt:
        code = 130
    except stack.StackError as exc:
        console.print(f"[red]{exc}")
        code = 1
    finally:
        if started_stack:
            console.print("stopping the stack …")
            stack.stop_stack(data_dir)
        if created_dir and not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
        elif created_dir:
            console.print(f"kept {data_dir}")
    return code


if __name__ == "__main__":
    sys.exit(main())
