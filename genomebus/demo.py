"""The demo scenario: one readable script of what the node does, run against the local stack.

1. start the node; 2. the gateway describes itself; 3. a steward registers a
dataset with its individuals and biosamples; 4. a sequencing centre submits the
BAM and VCF files of the repository's data/ folder; 5. each file passes QC and reaches the
Crypt4GH archive; 6. a broken file is refused by QC with reasons; 7. the steward
releases the dataset; 8. a researcher reads it; 9. access: an application checked
against DUO, decided by two DACs, a passport, an audited controlled read, a central
grant vetoed (``genomebus.demo_access``); 10. storage: the granted researcher fetches
over DRS and htsget and receives a Crypt4GH copy, an ungranted one is refused, both audited
(``genomebus.demo_storage``); 11. discovery: the Beacon answers yes/no anonymously, counts to a
researcher, records to the granted one, and a federated query asks FI and a second local node, SE,
started beside it in the background at step 1 (``genomebus.demo_discovery``); 12. an auditor reads
a file's history from the log.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from genomebus import producers
from genomebus.infra.settings import Settings
from genomebus.producers.metadata import describe_with_metadata, load_metadata
from genomebus.producers.submit import DatasetClosed, file_id_for

# the steward's example metadata ships with the producers package (genomebus.producers.examples)
EXAMPLE = Path(producers.__file__).resolve().parent / "examples" / "GDI-FI-DATASET-001.json"


def demo_data() -> Path:
    """The folder of the demo's genomic files: ``GENOMEBUS_DEMO_DATA`` if set, else the checkout's ``data/``."""
    configured = os.environ.get("GENOMEBUS_DEMO_DATA")
    return Path(configured) if configured else Path(__file__).resolve().parents[1] / "data"


def demo_files(data: Path) -> list[tuple[Path, str | None]]:
    return [
        (data / "reads" / "htsnexus_test_NA12878.bam", "htsnexus_test_NA12878"),
        (data / "variants" / "HG02102.vcf.gz", "HG02102"),
        (data / "variants" / "NA18537.vcf.gz", "NA18537"),
    ]


WIDE = 200  # columns of the demo's output when it does not go to a terminal


def genomebus_command() -> str:
    """``genomebus`` as the user can type it from here: ``make demo`` does not put .venv/bin on the PATH.

    The script beside the running interpreter, relative to the current directory when inside it
    (``.venv/bin/genomebus``), else absolute; ``python -m genomebus`` when there is no script.
    """
    script = Path(sys.executable).parent / "genomebus"
    if not (script.is_file() and os.access(script, os.X_OK)):
        return f"{shlex.quote(sys.executable)} -m genomebus"
    try:
        shown = script.relative_to(Path.cwd()).as_posix()
    except ValueError:
        shown = script.as_posix()
    return shlex.quote(shown)


def hint(settings: Settings, *args: str) -> str:
    """A command line that works as written from the directory the demo was started in."""
    return " ".join([genomebus_command(), *map(shlex.quote, args), "--data-dir", shlex.quote(str(settings.data_dir))])


def readable_console(console: Console) -> Console:
    """The demo's console, wide enough when piped or captured that no table is cut at 80 columns."""
    if console.is_terminal or console.width >= WIDE:
        return console
    return Console(file=console.file, width=WIDE, highlight=False)


def run_demo(settings: Settings, console: Console) -> int:
    from genomebus.infra.stack import start_detached

    console = readable_console(console)
    step = 0

    def out(text: str) -> None:
        console.print(text, soft_wrap=True)  # a long line is never broken into two

    def say(text: str) -> None:
        nonlocal step
        step += 1
        out(f"\n[bold cyan]{step}.[/bold cyan] {text}")

    data = demo_data()
    files = demo_files(data)
    missing = [p.relative_to(data).as_posix() for p, _ in files if not p.exists()]
    if missing:
        console.print(f"the demo data is not in {data} (missing {', '.join(missing)}); "
                      "set GENOMEBUS_DEMO_DATA to the folder that has reads/ and variants/",
                      markup=False, highlight=False, soft_wrap=True)
        return 2

    say(f"Start the local node in {settings.data_dir.resolve()} (object store, PostgreSQL, Kafka broker, workers, "
        "gateway)")
    started = time.monotonic()
    gateway_url = start_detached(settings)
    out(f"   running; gateway at {gateway_url} ({time.monotonic() - started:.1f}s)")
    from genomebus.demo_discovery import SecondNode

    second = SecondNode(settings, data).start()  # a second node, SE, starts beside FI while FI's chapters run

    with httpx.Client(base_url=gateway_url, timeout=10) as http:
        info = http.get("/service-info").json()
        say(f"The gateway describes itself (GA4GH service-info): {info['name']}, version {info['version']}")

        dataset_id = "GDI-FI-DATASET-001"
        say(f"A data steward asks to register {dataset_id} from {EXAMPLE.name} (DUO terms, individuals, "
            "biosamples); the reception decider decides")
        outcome = asyncio.run(_register(settings, describe_with_metadata(load_metadata(EXAMPLE))))
        if outcome.accepted:
            out(f"   {outcome.outcome_type}: decided and served by the gateway")
        elif _codes(outcome) == {"already_registered"}:
            out("   already registered by an earlier run of the demo on this node, so nothing changes "
                f"(the decider answered {_reasons(outcome)})")
        else:
            out(f"   refused: {_reasons(outcome)}")
            return 1

        state = http.get(f"/datasets/{dataset_id}").json().get("state")
        if state == "registered":
            say("A sequencing centre submits its files to the node's inbox (streamed, sha256 + md5 on the way)")
            submitted = asyncio.run(_submit(settings, dataset_id, files))
            for name, done in submitted:
                out(f"   {name} ({done.command.size / 1e6:.1f} MB) → file {done.file_id}: "
                    + (f"already archived as {done.archived_as} by an earlier run, not sent again" if done.skipped
                       else f"{done.outcome.outcome_type}" if done.outcome.accepted
                       else f"refused ({_reasons(done.outcome)})"))
            file_ids = [str(done.file_id) for _, done in submitted]
            say("Each file was given its accession by the reception decider; the QC worker validates it with "
                "pysam; the archive worker encrypts it with Crypt4GH and verifies it")
        else:
            say(f"{dataset_id} is already {state} by an earlier run of the demo: its files are archived, "
                "so nothing is submitted or uploaded again")
            file_ids = [f["id"] for f in http.get(f"/datasets/{dataset_id}").json().get("files", [])]
        results = [_wait_for_file(http, file_id) for file_id in file_ids]
        console.print(_files_table(results))
        if not results or any(r["state"] != "archived" for r in results):
            out("[red]a good file did not reach the archive[/red]")
            return 1

        say("Files for a dataset this node does not know are refused before a byte is uploaded")
        try:
            asyncio.run(_submit(settings, "GDI-FI-DATASET-999", files[:1]))
        except DatasetClosed as exc:
            out(f"   refused: {exc.reason} ({exc.message})")

        qc_dataset = "GDI-FI-DATASET-002"
        say(f"A truncated BAM submitted to {qc_dataset} is refused by QC with machine-readable reasons "
            "(nothing is archived)")
        asyncio.run(_register(settings, describe_with_metadata(
            {"title": "QC demonstration", "data_use": ["DUO:0000042"]}, dataset_id=qc_dataset)))
        truncated = _truncated_copy(settings, files[0][0])
        try:
            bad = str(file_id_for(qc_dataset, hashlib.sha256(truncated.read_bytes()).hexdigest()))
            earlier = http.get(f"/files/{bad}")
            if earlier.status_code == 200 and earlier.json().get("state") == "qc_failed":
                out(f"   this truncated BAM (file {bad}) was already refused by QC in an earlier run of the demo, "
                    "so it is not submitted again")
            else:
                bad = str(asyncio.run(_submit_file(settings, qc_dataset, truncated)))
        finally:
            truncated.unlink(missing_ok=True)
        verdict = _wait_for_file(http, bad)
        out(f"   {verdict['state']}: " + "; ".join(f"{r['code']} — {r['message']}"
                                               for r in (verdict.get("qc_reasons") or [])[:3]))

        say(f"The steward asks to release {dataset_id}: accepted only when every file is archived")
        from genomebus.producers.datasets import release_dataset

        released = asyncio.run(release_dataset(settings, dataset_id, actor="demo-steward"))
        if released.accepted:
            out(f"   {released.outcome_type}: {len(results)} files are now public metadata")
        elif released.state == "released":
            out(f"   {dataset_id} is already released (by an earlier run of the demo), so nothing changes; "
                f"the decider answered {_reasons(released)}")
        else:
            out(f"   refused: {_reasons(released)}")

        say(f"A researcher reads the dataset from the gateway: GET /datasets/{dataset_id}")
        body = http.get(f"/datasets/{dataset_id}").json()
        out(f"   {body['title']!r}: state {body['state']}, {len(body['files'])} files, "
            f"{body['individuals']} individuals, {body['biosamples']} biosamples (counts only)")
        missing_dataset = http.get("/datasets/GDI-FI-DATASET-999")
        out(f"   an unknown dataset is an RFC 7807 problem: {missing_dataset.status_code} "
            f"{missing_dataset.headers['content-type']}")

        from genomebus.demo_access import access_story

        if not access_story(settings, http, dataset_id, files[2][0], say, out):
            out("[red]the access chapter did not end as it should[/red]")
            return 1

        from genomebus.demo_storage import storage_story

        if not storage_story(settings, dataset_id, say, out, hint):
            out("[red]the storage chapter did not end as it should[/red]")
            return 1

        from genomebus.demo_access import SECOND
        from genomebus.demo_discovery import discovery_story

        if not discovery_story(settings, data, [dataset_id, SECOND], second, say, out, hint):
            out("[red]the discovery chapter did not end as it should[/red]")
            return 1

        from genomebus.demo_processing import processing_story

        if not processing_story(settings, http, dataset_id, say, out, hint):
            out("[red]the processing chapter did not end as it should[/red]")
            return 1

        from genomebus.demo_discovery import demo_variant
        from genomebus.demo_journey import journey_story

        if not journey_story(settings, http, dataset_id, demo_variant(data), say, out, hint):
            out("[red]the journey chapter did not end as it should[/red]")
            return 1

    say("An auditor reads the history of the BAM file from the log itself")
    from genomebus.audit import history

    bam = next((file_id for file_id, r in zip(file_ids, results, strict=True)
                if r.get("filename", "").endswith(".bam")), file_ids[0])
    for event in asyncio.run(history(settings, bam)):
        out(f"   {event['time']}  {event['type']:<16} by {event['actor']:<22} "
            f"({event['topic']}[{event['partition']}]@{event['offset']})")
    out(f"\n[green]demo complete[/green]; the node keeps running. From here:\n"
        f"   {hint(settings, 'status')}      # health, topics, consumers\n"
        f"   {hint(settings, 'down')}        # stop it")
    return 0


def _codes(outcome: Any) -> set[str]:
    return {r.code for r in outcome.reasons}


async def _register(settings: Settings, dataset: Any) -> Any:
    from genomebus.producers.datasets import register_dataset

    return await register_dataset(settings, dataset, actor="demo-steward")


def _reasons(outcome: Any) -> str:
    return "; ".join(f"{r.code}: {r.message}" for r in outcome.reasons)


async def _submit(settings: Settings, dataset_id: str, files: list[tuple[Path, str | None]]) -> list[tuple[str, Any]]:
    from genomebus.infra.kafka import Publisher
    from genomebus.producers.submit import submit_file

    out = []
    async with Publisher(settings) as publisher:
        for path, alias in files:
            done = await submit_file(settings, dataset_id, path, alias=alias, actor="demo-sequencing-centre",
                                     publisher=publisher)
            out.append((path.name, done))
    return out


def _truncated_copy(settings: Settings, bam: Path) -> Path:
    """The first half of the BAM, written inside the node's data directory (nothing of the node goes to /tmp)."""
    tmp = settings.data_dir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "truncated-demo.bam"
    data = bam.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


async def _submit_file(settings: Settings, dataset_id: str, path: Path) -> Any:
    from genomebus.producers.submit import submit_file

    done = await submit_file(settings, dataset_id, path, actor="demo-sequencing-centre")
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
        table.add_column(col, overflow="fold")  # an accession or a name is wrapped, never cut
    for f in files:
        m = f.get("qc_metrics") or {}
        qc = (f"{m.get('reads', 0):,} reads, {m.get('mapped_pct', 0):.1f}% mapped" if f.get("format") == "BAM"
              else f"{m.get('records', 0):,} variants, Ti/Tv {m.get('ti_tv') or 0:.2f}" if m else "")
        table.add_row(f.get("alias") or f["filename"], f.get("format", ""), f["state"], f.get("accession") or "",
                      qc, f"{(f.get('encrypted_size') or 0) / 1e6:.1f} MB")
    return table
