"""The demo scenario: one readable script of what the node does, run against the local stack."""

from __future__ import annotations

import asyncio
import time

import httpx
from rich.console import Console

from infra.settings import Settings


def run_demo(settings: Settings, console: Console) -> int:
    from infra.stack import start_detached

    step = 0

    def say(text: str) -> None:
        nonlocal step
        step += 1
        console.print(f"[bold cyan]{step}.[/bold cyan] {text}")

    say(f"Start the local node in {settings.data_dir.resolve()} (object store, PostgreSQL, Kafka broker, workers, gateway)")
    started = time.monotonic()
    gateway_url = start_detached(settings)
    console.print(f"   running; gateway at {gateway_url} ({time.monotonic() - started:.1f}s)")

    with httpx.Client(base_url=gateway_url, timeout=10) as http:
        info = http.get("/service-info").json()
        say(f"The gateway describes itself (GA4GH service-info): {info['name']}, version {info['version']}")

        dataset_id = "GDI-FI-DATASET-001" if settings.node_id == "FI" else f"GDI-{settings.node_id}-DATASET-001"
        say(f"A data steward registers dataset {dataset_id} (DUO:0000042, general research use)")
        if http.get(f"/datasets/{dataset_id}").status_code == 200:
            console.print("   already registered by an earlier run of the demo on this node; not registering twice")
        else:
            published, waited = asyncio.run(_register(settings, dataset_id))
            console.print(f"   dataset.registered → {published.topic}[{published.partition}]@{published.offset}; "
                          f"projected in {waited * 1000:.0f} ms")

        say(f"A researcher reads it from the gateway: GET /datasets/{dataset_id}")
        response = http.get(f"/datasets/{dataset_id}")
        response.raise_for_status()
        body = response.json()
        console.print(f"   {response.status_code}: {body['title']!r}, data use {body['data_use']}, "
                      f"{len(body['history'])} event(s) in its history")

        say("A bad PID is refused before anything is published")
        from producers.datasets import InvalidDataset, describe_dataset

        try:
            describe_dataset(dataset_id="FI-DATASET-1", title="bad", data_use=("DUO:0000042",))
            console.print("   [red]accepted?![/red]")
            return 1
        except InvalidDataset as exc:
            console.print(f"   refused: {exc.errors[0]}")

        missing = http.get("/datasets/GDI-FI-DATASET-999")
        say(f"An unknown dataset is an RFC 7807 problem: {missing.status_code} {missing.headers['content-type']}")

    say("An auditor reads the dataset's history from the log itself")
    from infra.audit import history

    for event in asyncio.run(history(settings, dataset_id)):
        console.print(f"   {event['time']}  {event['type']}  by {event['actor']}  ({event['topic']}@{event['offset']})")
    console.print(f"[green]demo complete[/green]; the node keeps running: `genomebus status --data-dir {settings.data_dir}`"
                  f" or `genomebus down --data-dir {settings.data_dir}`")
    return 0


async def _register(settings: Settings, dataset_id: str):  # type: ignore[no-untyped-def]
    from consumers.projector import DatasetsProjection
    from infra import db
    from infra.projection import wait_for_position
    from producers.datasets import describe_dataset, register_dataset

    dataset = describe_dataset(dataset_id=dataset_id, title="Finnish whole-genome reference cohort",
                               description="Demo dataset registered by genomebus demo", data_use=("DUO:0000042",),
                               keywords=("WGS", "reference"), publisher="genomebus demo node")
    published = await register_dataset(settings, dataset, actor="demo-steward")
    pool = await db.connect(settings, max_size=2)
    try:
        waited = await wait_for_position(pool, DatasetsProjection, published.topic, published.partition,
                                         published.offset, settings.read_your_writes_timeout_s)
    finally:
        await pool.close()
    return published, waited
