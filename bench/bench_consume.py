#!/usr/bin/env python
"""Consume benchmark: the projector's own aiokafka batch loop beside faststream subscribers.

Run from the repository root::

    .venv/bin/python bench/bench_consume.py [--events N] [--data-dir DIR] [--keep]

Why it exists: the workers run on faststream, the projector keeps its own loop (it seeks to
positions stored in PostgreSQL and applies a batch per transaction). This measures what each
costs on the same records, in the same run: N ``dataset.registered`` events are published to a
fresh topic, then read back, decoded with ``genomebus.schemas.envelope.decode``, by

1. ``baseline``: a manually assigned aiokafka consumer, ``getmany`` batches (no group);
2. ``aiokafka group, batches``: the projector's shape (subscribe in a group, ``getmany`` of 500);
3. ``faststream, per message``: a ``KafkaBroker`` subscriber, one call per record;
4. ``faststream, batch``: a ``KafkaBroker`` subscriber with ``batch=True`` (500 at most).

Rates are counted from the first record received, so the ~5 s group join of the local broker
is reported apart. Figures are printed as a table and written to bench/results/consume-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Deadline, console, data_dir_for, run_prefix, run_timed, with_stack, write_results  # noqa: E402

from aiokafka.admin import NewTopic  # noqa: E402
from faststream.kafka import KafkaBroker  # noqa: E402
from rich.table import Table  # noqa: E402

from genomebus.infra import kafka  # noqa: E402
from genomebus.infra.settings import Settings  # noqa: E402
from genomebus.schemas.envelope import decode, encode, new_envelope  # noqa: E402
from genomebus.schemas.reception import DatasetRegistered  # noqa: E402

BATCH = 500


async def publish(settings: Settings, topic: str, n: int) -> None:
    admin = kafka.admin(settings)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, settings.topic_partitions, settings.topic_replication_factor)])
    finally:
        await admin.close()
    prefix = run_prefix()
    producer = kafka.producer(settings)
    await producer.start()
    try:
        futures = []
        for i in range(n):
            event = new_envelope(DatasetRegistered(dataset_id=f"GDI-FI-DATASET-{prefix}{i:07d}", title=f"bench {i}",
                                                   data_use=("DUO:0000042",)), source=settings.source, actor="bench")
            futures.append(await producer.send(topic, encode(event), key=event.subject.encode()))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def baseline(settings: Settings, topic: str, n: int, deadline: Deadline) -> tuple[float, float]:
    c = kafka.consumer(settings, max_poll_records=5000, fetch_max_bytes=16 * 1024 * 1024)
    await c.start()
    try:
        tps = await kafka.partitions_of(c, [topic])
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        return await _drain(c, n, deadline, started=time.perf_counter())
    finally:
        await c.stop()


async def group_batches(settings: Settings, topic: str, n: int, deadline: Deadline) -> tuple[float, float]:
    c = kafka.consumer(settings, topic, group_id=f"bench-group-{run_prefix()}", max_poll_records=BATCH)
    started = time.perf_counter()
    await c.start()
    try:
        return await _drain(c, n, deadline, started=started)
    finally:
        await c.stop()


async def _drain(c: Any, n: int, deadline: Deadline, *, started: float) -> tuple[float, float]:
    seen = 0
    first: float | None = None
    while seen < n:
        deadline.check("consuming")
        batch = await c.getmany(timeout_ms=500, max_records=BATCH)
        for records in batch.values():
            if records and first is None:
                first = time.perf_counter()
            for record in records:
                decode(record.value)
                seen += 1
    end = time.perf_counter()
    return (first or end) - started, end - (first or end)


async def faststream_run(settings: Settings, topic: str, n: int, deadline: Deadline, *, batch: bool
                         ) -> tuple[float, float]:
    # Configured as the workers' brokers are (infra/worker.py): per-message logs at DEBUG, our own decoder.
    broker = KafkaBroker(settings.kafka_servers, logger=logging.getLogger("bench.faststream"), log_level=logging.DEBUG)
    done = asyncio.Event()
    state = {"seen": 0, "first": None}

    def count(k: int) -> None:
        if state["first"] is None:
            state["first"] = time.perf_counter()
        state["seen"] += k
        if state["seen"] >= n:
            done.set()

    group = f"bench-fs-{'batch' if batch else 'one'}-{run_prefix()}"
    if batch:
        @broker.subscriber(topic, group_id=group, auto_offset_reset="earliest", batch=True, max_records=BATCH,
                           decoder=_raw)
        async def on_batch(bodies: list[bytes]) -> None:
            for body in bodies:
                decode(body)
            count(len(bodies))
    else:
        @broker.subscriber(topic, group_id=group, auto_offset_reset="earliest", decoder=_raw)
        async def on_one(body: bytes) -> None:
            decode(body)
            count(1)

    started = time.perf_counter()
    await broker.start()
    try:
        await asyncio.wait_for(done.wait(), timeout=min(deadline.left(), 180))
    finally:
        await broker.stop()
    end = time.perf_counter()
    first = state["first"] or end
    return first - started, end - first


async def _raw(message: Any) -> Any:
    return message.body  # bytes, or a list of bytes for a batch: decoded by ``decode`` in the handler


async def bench(settings: Settings, n: int, deadline: Deadline, rows: list[dict[str, Any]]) -> None:
    topic = f"{settings.topic_prefix}bench-consume-{run_prefix()}"
    t = time.perf_counter()
    await publish(settings, topic, n)
    console.print(f"published {n} events to {topic} in {time.perf_counter() - t:.1f} s")
    for name, run in (("baseline: aiokafka assign, batches", baseline),
                      ("aiokafka group, batches (projector)", group_batches),
                      ("faststream, per message (workers)", lambda *a: faststream_run(*a, batch=False)),
                      ("faststream, batch", lambda *a: faststream_run(*a, batch=True))):
        join, seconds = await run(settings, topic, n, deadline)
        rows.append({"phase": name, "events": n, "join_seconds": round(join, 2), "seconds": round(seconds, 3),
                     "events_per_s": round(n / seconds, 1) if seconds else None})
        console.print(f"  {name}: {n / seconds:,.0f} events/s (first record after {join:.1f} s)")


def render(rows: list[dict[str, Any]]) -> None:
    base = rows[0]["events_per_s"] if rows else None
    table = Table(title="consume + decode of the same topic, same run")
    for col in ("phase", "events", "first record after s", "seconds", "events/s", "ratio vs baseline"):
        table.add_column(col, justify="left" if col == "phase" else "right")
    for r in rows:
        ratio = f"{r['events_per_s'] / base:.2f}" if base and r["events_per_s"] else "–"
        table.add_row(r["phase"], str(r["events"]), f"{r['join_seconds']:.1f}", f"{r['seconds']:.2f}",
                      f"{r['events_per_s']:,.0f}" if r["events_per_s"] else "–", ratio)
    console.print(table)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", "-n", type=int, default=20000)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    data_dir, created_dir = data_dir_for(args.data_dir)
    settings = Settings(data_dir=data_dir)
    rows: list[dict[str, Any]] = []
    info: dict[str, Any] = {"events": args.events, "python": platform.python_version(), "cpus": os.cpu_count(),
                            "started": datetime.now().isoformat()}

    def body() -> int:
        code = run_timed(lambda deadline: bench(settings, args.events, deadline, rows), 600, info)
        render(rows)
        console.print(f"results: {write_results('consume', {'rows': rows, 'info': info})}")
        return code

    return with_stack(settings, info, body, created_dir=created_dir, keep_stack=False, keep_dir=args.keep)


if __name__ == "__main__":
    sys.exit(main())
