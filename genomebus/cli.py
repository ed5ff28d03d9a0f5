"""The ``genomebus`` command: run the node, inspect it, publish to it, audit it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from genomebus.infra.settings import Settings, SettingsError

app = typer.Typer(help="genomebus: an event-driven national genomics node.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
audit_app = typer.Typer(help="Auditors' views, read from the Kafka log itself.", no_args_is_help=True)
schemas_app = typer.Typer(help="The event contract.", no_args_is_help=True)
dataset_app = typer.Typer(help="Datasets: register, describe.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(schemas_app, name="schemas")
app.add_typer(dataset_app, name="dataset")

console = Console()
err = Console(stderr=True)

DataDir = Annotated[Path, typer.Option("--data-dir", envvar="GENOMEBUS_DATA_DIR",
                                       help="The node's data directory (where `genomebus up` keeps its state).")]
DEFAULT_DATA_DIR = Path(".genomebus")


def settings_for(data_dir: Path, **overrides: Any) -> Settings:
    try:
        return Settings(data_dir=data_dir, **overrides)
    except (SettingsError, ValueError) as exc:
        err.print(f"[red]settings:[/red] {exc}")
        raise typer.Exit(2) from exc


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def _logging() -> None:
    logging.basicConfig(level=os.environ.get("GENOMEBUS_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)


# -- running the node -------------------------------------------------------------------------


@app.command()
def up(data_dir: DataDir = DEFAULT_DATA_DIR,
       detach: Annotated[bool, typer.Option("--detach", "-d", help="Start in the background and return.")] = False
       ) -> None:
    """Start the local stack (object store, PostgreSQL, Kafka broker), every worker and the gateway."""
    from genomebus.consumers import workers
    from genomebus.infra.stack import StackError, Supervisor, start_detached

    settings = settings_for(data_dir)
    if detach:
        try:
            url = start_detached(settings)
        except StackError as exc:
            raise fail(str(exc)) from exc
        console.print(f"genomebus is running; gateway at [bold]{url}[/bold]")
        return
    supervisor = Supervisor(settings, list(workers()), echo=console.print)
    console.print(f"starting genomebus node {settings.node_id} in {settings.data_dir.resolve()}")

    def ready(url: str) -> None:
        console.print(f"[green]genomebus is running[/green]; gateway at [bold]{url}[/bold]  (Ctrl-C to stop)")

    try:
        asyncio.run(supervisor.run(on_ready=ready))
    except StackError as exc:
        raise fail(str(exc)) from exc
    console.print("genomebus stopped")


@app.command()
def down(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Stop the local stack started from this data directory."""
    from genomebus.infra.stack import stop_stack

    if stop_stack(data_dir):
        console.print("genomebus stopped")
    else:
        console.print("nothing was running")


@app.command()
def worker(name: Annotated[str, typer.Argument(help="Worker to run, e.g. projector")],
           data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Run one worker alone against the configured servers (how production runs it)."""
    from genomebus.consumers import workers

    mains = workers()
    if name not in mains:
        raise fail(f"no worker {name!r}; choose from {', '.join(sorted(mains))}")
    _logging()
    settings = settings_for(data_dir)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await mains[name](settings, stop)

    asyncio.run(run())


@app.command()
def gateway(data_dir: DataDir = DEFAULT_DATA_DIR,
            host: Annotated[str | None, typer.Option(help="Bind address (default: settings)")] = None,
            port: Annotated[int | None, typer.Option(help="Port (default: settings)")] = None) -> None:
    """Run the gateway alone against the configured servers."""
    import uvicorn

    from genomebus.gateway.app import create_app

    _logging()
    settings = settings_for(data_dir)
    uvicorn.run(create_app(settings), host=host or settings.gateway_host, port=port or settings.gateway_port or 8080,
                log_level="warning", access_log=False)


@app.command()
def status(data_dir: DataDir = DEFAULT_DATA_DIR,
           as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Health and address of each component, topics, consumer groups, projection positions, dead letters."""
    from genomebus.status import collect

    settings = settings_for(data_dir)
    report = asyncio.run(collect(settings))
    if as_json:
        print(json.dumps(report, indent=2, default=str))
    else:
        _print_status(report)
    if not report["healthy"]:
        raise typer.Exit(1)


def _print_status(report: dict[str, Any]) -> None:
    table = Table(title=f"genomebus node {report['node_id']} — {report['state']}")
    for col in ("component", "healthy", "address", "pid", "detail"):
        table.add_column(col)
    for name, comp in report["components"].items():
        table.add_row(name, "[green]yes[/green]" if comp["healthy"] else "[red]no[/red]", comp.get("address") or "",
                      str(comp.get("pid") or ""), comp.get("detail") or "")
    console.print(table)
    if report.get("topics"):
        topics = Table(title="topics")
        topics.add_column("topic")
        topics.add_column("messages", justify="right")
        for name, count in report["topics"].items():
            topics.add_row(name, str(count))
        console.print(topics)
    if report.get("projections"):
        proj = Table(title="projections")
        for col in ("projection", "position", "end", "lag"):
            proj.add_column(col, justify="right" if col != "projection" else "left")
        for name, p in report["projections"].items():
            proj.add_row(name, str(p["position"]), str(p["end"]), str(p["lag"]))
        console.print(proj)
    console.print(f"consumer groups: {', '.join(report.get('consumer_groups') or []) or '—'}")
    console.print(f"dead letters: {report.get('dead_letters', '—')}")
    console.print(f"gateway: {report.get('gateway_url')}")


# -- replay and audit ----------------------------------------------------------------------------


@app.command()
def replay(data_dir: DataDir = DEFAULT_DATA_DIR,
           projection: Annotated[str | None, typer.Option(help="Only this projection (default: all)")] = None,
           verify: Annotated[bool, typer.Option("--verify", help="Compare the rebuild with the live tables; "
                                                "exit non-zero if they differ. Live tables stay.")] = False) -> None:
    """Rebuild projections from offset 0 into fresh tables."""
    from genomebus.infra.readmodels import READ_MODELS as PROJECTIONS
    from genomebus.infra import db, kafka
    from genomebus.infra import projection as engine

    settings = settings_for(data_dir)
    names = [projection] if projection else list(PROJECTIONS)
    unknown = [n for n in names if n not in PROJECTIONS]
    if unknown:
        raise fail(f"no projection {unknown[0]!r}; choose from {', '.join(PROJECTIONS)}")

    async def run() -> list[engine.ReplayResult]:
        results = []
        pool = await db.connect(settings)
        try:
            async with kafka.Publisher(settings) as publisher:
                for name in names:
                    with Progress(TextColumn(f"replay {name}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                                  TimeRemainingColumn(), console=console, transient=False) as bar:
                        task = bar.add_task(name, total=None)
                        result = await engine.replay(settings, pool, PROJECTIONS[name], publisher, verify=verify,
                                                     progress=lambda done, total: bar.update(task, completed=done,
                                                                                             total=total))
                    results.append(result)
        finally:
            await pool.close()
        return results

    results = asyncio.run(run())
    table = Table(title="replay" + (" --verify" if verify else ""))
    for col in ("projection", "table", "rows (rebuilt)", "digest (rebuilt)", "rows (live)", "equal"):
        table.add_column(col)
    differs = False
    for r in results:
        for t, (n, d) in r.rebuilt.items():
            live = r.live.get(t) if r.live else None
            same = "" if live is None else ("[green]yes[/green]" if live == (n, d) else "[red]NO[/red]")
            differs |= live is not None and live != (n, d)
            table.add_row(r.projection, t, str(n), d[:12], "" if live is None else str(live[0]), same)
        console.print(f"{r.projection}: {r.events} events in {r.seconds:.2f}s ({r.rate:,.0f} events/s)"
                      + ("; rebuilt tables now live" if r.swapped else ""))
    console.print(table)
    if differs:
        raise fail("rebuilt projection differs from the live one", 3)


@audit_app.command("history")
def audit_history(subject: Annotated[str, typer.Argument(help="Aggregate id: dataset, file, application, task")],
                  data_dir: DataDir = DEFAULT_DATA_DIR,
                  as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every event of one aggregate, in order, read from the Kafka log (not from projections)."""
    from genomebus.audit import history

    settings = settings_for(data_dir)
    events = asyncio.run(history(settings, subject))
    if as_json:
        print(json.dumps(events, indent=2, default=str))
        return
    if not events:
        raise fail(f"no events for {subject}", 4)
    table = Table(title=f"history of {subject} ({len(events)} events, from the log)")
    for col in ("#", "time", "type", "actor", "topic@offset", "event id", "caused by"):
        table.add_column(col)
    for i, e in enumerate(events, 1):
        table.add_row(str(i), e["time"], e["type"], e["actor"], f"{e['topic']}[{e['partition']}]@{e['offset']}",
                      e["id"][:8], (e["causation_id"] or "")[:8])
    console.print(table)


# -- the contract ----------------------------------------------------------------------------------


@schemas_app.command("export")
def schemas_export(directory: Annotated[Path, typer.Argument(help="Where to write the JSON Schemas and AsyncAPI")]) -> None:
    """Write a JSON Schema per event and an AsyncAPI document for the whole bus."""
    from genomebus.schemas.export import export

    written = export(directory, Settings())
    console.print(f"wrote {len(written)} files to {directory}")


# -- data stewards -----------------------------------------------------------------------------------


@dataset_app.command("register")
def dataset_register(
    dataset_id: Annotated[str | None, typer.Option("--id", help="1+MG PID, e.g. GDI-FI-DATASET-001")] = None,
    title: Annotated[str | None, typer.Option(help="Human-readable title")] = None,
    duo: Annotated[list[str] | None, typer.Option("--duo", help="DUO data-use term, e.g. DUO:0000042 (repeatable)")
                   ] = None,
    description: Annotated[str | None, typer.Option(help="Free-text description")] = None,
    keyword: Annotated[list[str] | None, typer.Option("--keyword", help="Keyword (repeatable)")] = None,
    publisher: Annotated[str | None, typer.Option(help="Publishing organisation")] = None,
    metadata: Annotated[Path | None, typer.Option(
        "--metadata", help="JSON file with the dataset's fields, individuals and biosamples "
                           "(see producers/examples); options given here override its values")] = None,
    actor: Annotated[str | None, typer.Option(help="Your steward user id (default: $USER)")] = None,
    wait: Annotated[bool, typer.Option(help="Wait until the gateway can serve it")] = True,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Register a dataset: publishes `dataset.registered` (nothing is published if the input is invalid)."""
    from genomebus.producers.datasets import InvalidDataset, register_dataset
    from genomebus.producers.metadata import describe_with_metadata, load_metadata

    try:
        dataset = describe_with_metadata(
            load_metadata(metadata) if metadata is not None else {}, dataset_id=dataset_id, title=title,
            data_use=tuple(duo) if duo else None, description=description,
            keywords=tuple(keyword) if keyword else None, publisher=publisher)
    except InvalidDataset as exc:
        for line in exc.errors:
            err.print(f"[red]invalid:[/red] {line}")
        raise typer.Exit(2) from exc
    settings = settings_for(data_dir)
    who = actor or os.environ.get("USER") or "steward"

    async def run() -> tuple[Any, float | None]:
        from genomebus.infra.readmodels.datasets import DatasetsProjection
        from genomebus.infra import db
        from genomebus.producers.datasets import projected

        published = await register_dataset(settings, dataset, actor=who)
        if not wait:
            return published, None
        return published, await db.with_pool(settings, lambda pool: projected(
            settings, pool, DatasetsProjection, published))

    try:
        published, waited = asyncio.run(run())
    except TimeoutError as exc:
        raise fail(f"published, but not projected yet: {exc}") from exc
    console.print(f"dataset.registered {dataset.dataset_id} → {published.topic}[{published.partition}]@{published.offset}"
                  + (f"; projected in {waited * 1000:.0f} ms" if waited is not None else ""))


@dataset_app.command("release")
def dataset_release(
    dataset_id: Annotated[str, typer.Argument(help="The dataset to release")],
    actor: Annotated[str | None, typer.Option(help="Your steward user id (default: $USER)")] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Release a dataset: refused, with what is missing, unless every file is archived."""
    from genomebus.producers.datasets import release_dataset

    settings = settings_for(data_dir)
    decision, published = _with_pool(settings, lambda pool: release_dataset(
        settings, pool, dataset_id, actor=actor or os.environ.get("USER") or "steward"))
    if not decision.allowed:
        err.print(f"[red]refused:[/red] {dataset_id}: {decision.reason}")
        if decision.missing:
            table = Table(title="not archived")
            for col in ("file", "state", "detail"):
                table.add_column(col)
            for m in decision.missing:
                table.add_row(m.file, m.state, m.detail)
            err.print(table)
        raise typer.Exit(5)
    console.print(f"dataset.released {dataset_id} with {len(decision.accessions)} files → "
                  f"{published.topic}[{published.partition}]@{published.offset}")


@dataset_app.command("withdraw")
def dataset_withdraw(
    dataset_id: Annotated[str, typer.Argument(help="The dataset to withdraw")],
    reason: Annotated[str, typer.Option(help="Why it is withdrawn (recorded on the log)")],
    actor: Annotated[str | None, typer.Option(help="Your steward user id (default: $USER)")] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Withdraw a dataset: the gateway stops serving it; its events stay on the log."""
    from genomebus.producers.datasets import InvalidDataset, withdraw_dataset

    settings = settings_for(data_dir)
    try:
        published = _with_pool(settings, lambda pool: withdraw_dataset(
            settings, pool, dataset_id, reason=reason, actor=actor or os.environ.get("USER") or "steward"))
    except InvalidDataset as exc:
        for line in exc.errors:
            err.print(f"[red]refused:[/red] {line}")
        raise typer.Exit(5) from exc
    console.print(f"dataset.withdrawn {dataset_id} → {published.topic}[{published.partition}]@{published.offset}")


def _with_pool(settings: Settings, work: Any) -> Any:
    """Run ``work(pool)`` with a short-lived database pool; a projection that lags is a clear error."""
    from genomebus.infra import db
    from genomebus.infra.projection import NotYetProjected

    try:
        return asyncio.run(db.with_pool(settings, work))
    except NotYetProjected as exc:
        raise fail(f"the node's projections are behind the log, try again: {exc}") from exc


@app.command()
def submit(
    dataset_id: Annotated[str, typer.Argument(help="The dataset the files belong to, e.g. GDI-FI-DATASET-001")],
    files: Annotated[list[Path], typer.Argument(help="Files to upload: BAM, CRAM, VCF, BCF or FASTQ")],
    alias: Annotated[str | None, typer.Option(help="Stable name of the file in its dataset (one FILE only)")] = None,
    file_format: Annotated[str | None, typer.Option("--format", help="BAM, CRAM, VCF, BCF or FASTQ "
                                                                     "(default: from each file's name)")] = None,
    actor: Annotated[str | None, typer.Option(help="Who submits (default: $USER)")] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Upload files to the inbox; each is announced with `file.uploaded` only once it is there, whole."""
    from rich.filesize import decimal
    from rich.progress import DownloadColumn, TransferSpeedColumn

    from genomebus.infra import kafka
    from genomebus.infra import s3 as object_store
    from genomebus.producers.submit import AnnounceFailed, InvalidSubmission, SubmittedFile, check_submission, submit_file

    if alias is not None and len(files) > 1:
        raise fail(f"--alias names one file, but {len(files)} files were given", 2)
    try:  # every file checked before the first byte is sent
        checked = [check_submission(dataset_id, f, declared_format=file_format, alias=alias) for f in files]
    except InvalidSubmission as exc:
        raise fail(exc.message, 2) from exc
    settings = settings_for(data_dir)
    who = actor or os.environ.get("USER") or "submitter"
    submitted: list[SubmittedFile] = []
    in_flight: Path | None = None

    async def run() -> None:
        nonlocal in_flight
        async with kafka.Publisher(settings) as publisher, object_store.client(settings) as s3:
            with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                          TimeRemainingColumn(), console=console) as bar:
                for one in checked:
                    in_flight = one.path
                    task = bar.add_task(one.filename, total=one.size)
                    submitted.append(await submit_file(
                        settings, dataset_id, one.path, declared_format=one.declared_format, alias=alias,
                        actor=who, publisher=publisher, s3=s3,
                        progress=lambda done, total, task=task: bar.update(task, completed=done, total=total)))
                in_flight = None

    failure: str | None = None
    code = 0
    unannounced = "; nothing was published for it"
    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        failure, code = "interrupted: upload aborted", 130
    except SettingsError as exc:
        failure, code = f"settings: {exc}", 2
    except AnnounceFailed as exc:
        failure, code, unannounced = str(exc), 1, ""
    except Exception as exc:  # noqa: BLE001 - whatever broke, say which file and that it was not announced
        failure, code = f"{type(exc).__name__}: {exc}", 1
    if submitted:
        table = Table(title=f"submitted to {dataset_id}")
        for col in ("file", "size", "sha256", "file_id", "topic@offset", "MB/s"):
            table.add_column(col, justify="right" if col in ("size", "MB/s") else "left")
        for s in submitted:
            table.add_row(s.event.filename, decimal(s.event.size), s.event.sha256[:12] + "…", str(s.file_id),
                          f"{s.published.topic}[{s.published.partition}]@{s.published.offset}", f"{s.mb_per_s:.1f}")
        console.print(table)
    if failure is not None:
        if in_flight is None:
            raise fail(failure, code)
        untried = len(checked) - len(submitted) - 1
        raise fail(f"{in_flight}: {failure}{unannounced}" + (f"; {untried} more not attempted" if untried else ""),
                   code)


# -- the demo ----------------------------------------------------------------------------------------------


@app.command()
def demo(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Start the local stack if needed and run the node's scenario end to end, step by step."""
    from genomebus.demo import run_demo

    code = run_demo(settings_for(data_dir), console)
    raise typer.Exit(code)


def main() -> None:
    with contextlib.suppress(BrokenPipeError):
        app()


if __name__ == "__main__":
    sys.exit(main())
