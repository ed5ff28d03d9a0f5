"""The demo scenario: one readable script of what the node does, run against the local stack.

1. start the node; 2. the gateway describes itself; 3. a steward registers a
dataset with its individuals and biosamples; 4. a sequencing centre submits the
BAM and VCF files of ../shared/data; 5. each file passes QC and reaches the
Crypt4GH archive; 6. a broken file is refused by QC with reasons; 7. the steward
releases the dataset; 8. a researcher reads it; 9. an auditor reads its history
from the log.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from genomebus.infra.settings import Settings

EXAMPLE = Path(__file__).parent / "examples" / "GDI-FI-DATASET-001.json"


def shared_data() -> Path:
    """``../shared/data`` beside the checkout (override with GENOMEBUS_SHARED_DATA)."""
    configured = os.environ.get("GENOMEBUS_SHARED_DATA")
    return Path(configured) if configured else Path(__file__).resolve().parents[2] / "shared" / "data"


def demo_files(data: Path) -> list[tuple[Path, str | None]]:
    return [
        (data / "reads" / "htsnexus_test_NA12878.bam", "htsnexus_test_NA12878"),
        (data / "variants" / "HG02102.vcf.gz", "HG02102"),
        (data / "variants" / "NA18537.vcf.gz", "NA18537"),
    ]


def run_demo(settings: Settings, console: Console) -> int:
    from genomebus.infra.stack import start_detached

    step = 0

    def say(text: str) -> None:
        nonlocal step
        step += 1
        console.print(f"\n[bold cyan]{step}.[/bold cyan] {text}")

    data = shared_data()
    files = demo_files(data)
    missing = [str(p) for p, _ in files if not p.exists()]
    if missing:
        console.print(f"[red]the demo needs the test data in {data}[/red]; missing: {', '.join(missing)}")
        return 2

    say(f"Start the local node in {settings.data_dir.resolve()} (object store, PostgreSQL, Kafka broker, workers, "
        "gateway)")
    started = time.monotonic()
    gateway_url = start_detached(settings)
    console.print(f"   running; gateway at {gateway_url} ({time.monotonic() - started:.1f}s)")

    with httpx.Client(base_url=gateway_url, timeout=10) as http:
        info = http.get("/service-info").json()
        say(f"The gateway describes itself (GA4GH service-info): {info['name']}, version {info['version']}")

        dataset_id = "GDI-FI-DATASET-001"
        say(f"A data steward registers {dataset_id} from {EXAMPLE.name} (DUO terms, individuals, biosamples)")
        if http.get(f"/datasets/{dataset_id}").status_code in (200, 410):
            console.print("   already registered by an earlier run of the demo on this node; not registering twice")
        else:
            published, waited = asyncio.run(_register(settings))
            console.print(f"   dataset.registered → {published.topic}[{published.partition}]@{published.offset}; "
                          f"projected in {waited * 1000:.0f} ms")

        say("A sequencing centre submits its files to the node's inbox (streamed, sha256 + md5 on the way)")
        submitted = asyncio.run(_submit(settings, dataset_id, files))
        for name, file_id, size in submitted:
            console.print(f"   file.uploaded {name} ({size / 1e6:.1f} MB) → file {file_id}")

        say("The QC worker validates each file with pysam; the archive worker encrypts it with Crypt4GH, "
            "verifies and accessions it")
        results = [_wait_for_file(http, file_id) for _, file_id, _ in submitted]
        console.print(_files_table(results))
        if any(r["state"] != "archived" for r in results):
            console.print("[red]a good file did not reach the archive[/red]")
            return 1

        say("A truncated BAM is refused by QC with machine-readable reasons (nothing is archived)")
        bad = asyncio.run(_submit_truncated(settings, files[0][0]))
        verdict = _wait_for_file(http, bad)
        console.print(f"   {verdict['state']}: " + "; ".join(f"{r['code']} — {r['message']}"
                                                          for r in verdict["qc_reasons"][:3]))

        say(f"The steward releases {dataset_id}: allowed only when every file is archived")
        from genomebus.producers.datasets import release_dataset

        from genomebus.infra import db

        decision, released = asyncio.run(db.with_pool(settings, lambda pool: release_dataset(
            settings, pool, dataset_id, actor="demo-steward")))
        if released:
            console.print(f"   dataset.released with {len(decision.accessions)} files → "
                          f"{released.topic}[{released.partition}]@{released.offset}")
        else:
            console.print(f"   not released: {decision.reason}")

        say(f"A researcher reads the dataset from the gateway: GET /datasets/{dataset_id}")
        body = http.get(f"/datasets/{dataset_id}").json()
        console.print(f"   {body['title']!r}: state {body['state']}, {len(body['files'])} files, "
                      f"{body['individuals']} individuals, {body['biosamples']} biosamples (counts only)")
        missing_dataset = http.get("/datasets/GDI-FI-DATASET-999")
        console.print(f"   an unknown dataset is an RFC 7807 problem: {missing_dataset.status_code} "
                      f"{missing_dataset.headers['content-type']}")

    say("An auditor reads the history of the BAM file from the log itself")
    from genomebus.audit import history

    for event in asyncio.run(history(settings, str(submitted[0][1]))):
        console.print(f"   {event['time']}  {event['type']:<16} by {event['actor']:<14} "
                      f"({event['topic']}[{event['partition']}]@{event['offset']})")
    console.print(f"\n[green]demo complete[/green]; the node keeps running: `genomebus status --data-dir "
                  f"{settings.data_dir}` or `genomebus down --data-dir {settings.data_dir}`")
    return 0


async def _register(settings: Settings) -> tuple[Any, float]:
    from genomebus.infra.readmodels.datasets import DatasetsProjection
    from genomebus.infra import db
    from genomebus.producers.datasets import projected, register_dataset
    from genomebus.producers.metadata import describe_with_metadata, load_metadata

    dataset = describe_with_metadata(load_metadata(EXAMPLE))
    published = await register_dataset(settings, dataset, actor="demo-steward")
    waited = await db.with_pool(settings, lambda pool: projected(settings, pool, DatasetsProjection, published))
    return published, waited


async def _submit(settings: Settings, dataset_id: str, files: list[tuple[Path, str | None]]) -> list[tuple[str, Any, int]]:
    from genomebus.infra.kafka import Publisher
    from genomebus.producers.submit import submit_file

    out = []
    async with Publisher(settings) as publisher:
        for path, alias in files:
            done = await submit_file(settings, dataset_id, path, alias=alias, actor="demo-sequencing-centre",
                                     publisher=publisher)
            out.append((path.name, done.file_id, done.event.size))
    return out


async def _submit_truncated(settings: Settings, bam: Path) -> Any:
    import tempfile

    from genomebus.producers.submit import submit_file

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "truncated-demo.bam"
        data = bam.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        done = await submit_file(settings, "GDI-FI-DATASET-002", path, actor="demo-sequencing-centre")
    return done.file_id


def _wait_for_file(http: httpx.Client, file_id: Any, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {"state": "unknown", "filename": str(file_id)}
    while time.monotonic() < deadline:
        response = http.get(f"/files/{file_id}")
        if response.status_code == 200:
            body = response.json()
            if body["state"] in ("archived", "qc_failed"):
                return body
        time.sleep(0.3)
    return body


def _files_table(files: list[dict[str, Any]]) -> Table:
    table = Table()
    for col in ("file", "format", "state", "accession", "QC", "encrypted"):
        table.add_column(col)
    for f in files:
        m = f.get("qc_metrics") or {}
        qc = (f"{m.get('reads', 0):,} reads, {m.get('mapped_pct', 0):.1f}% mapped" if f.get("format") == "BAM"
              else f"{m.get('records', 0):,} variants, Ti/Tv {m.get('ti_tv') or 0:.2f}" if m else "")
        table.add_row(f.get("alias") or f["filename"], f.get("format", ""), f["state"], f.get("accession") or "",
                      qc, f"{(f.get('encrypted_size') or 0) / 1e6:.1f} MB")
    return table
