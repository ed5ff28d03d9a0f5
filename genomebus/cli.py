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
dataset_app = typer.Typer(help="Datasets: register, update, release, withdraw.", no_args_is_help=True)
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
def migrate(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Apply the database migrations and create this version's read-model schemas (`up` does this itself)."""
    from genomebus.infra import db

    settings = settings_for(data_dir)
    try:
        applied = asyncio.run(db.migrate(settings))
    except (OSError, SettingsError) as exc:
        raise fail(f"cannot reach the database ({exc}); is it running? (`genomebus up --data-dir {data_dir}`)",
                   6) from exc
    console.print("applied: " + (", ".join(applied) if applied else "nothing; the database is up to date"))


@app.command()
def gateway(data_dir: DataDir = DEFAULT_DATA_DIR,
            host: Annotated[str | None, typer.Option(help="Bind address (default: settings)")] = None,
            port: Annotated[int | None, typer.Option(help="Port (default: settings)")] = None) -> None:
    """Run the gateway alone against the configured servers."""
    import uvicorn

    from genomebus.gateway.app import create_app

    from genomebus.gateway.app import ReadModelsMissing, check_read_models
    from genomebus.infra import db

    _logging()
    settings = settings_for(data_dir)
    try:
        asyncio.run(db.with_pool(settings, check_read_models))
    except ReadModelsMissing as exc:
        raise fail(str(exc), 6) from exc
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
    by_reason = report.get("dead_letters_by_reason") or {}
    console.print(f"dead letters: {report.get('dead_letters', '—')}"
                  + (" (" + ", ".join(f"{reason}: {n}" for reason, n in by_reason.items()) + ")" if by_reason else ""))
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
    """Write a JSON Schema per event and the AsyncAPI document generated from the workers."""
    from genomebus.contract import export

    written = export(directory, Settings())
    console.print(f"wrote {len(written)} files to {directory}")


# -- data stewards -----------------------------------------------------------------------------------


DatasetOption = Annotated[str | None, typer.Option("--id", help="1+MG PID, e.g. GDI-FI-DATASET-001")]
TitleOption = Annotated[str | None, typer.Option(help="Human-readable title")]
DuoOption = Annotated[list[str] | None, typer.Option("--duo", help="DUO data-use term, e.g. DUO:0000042 (repeatable)")]
DescriptionOption = Annotated[str | None, typer.Option(help="Free-text description")]
KeywordOption = Annotated[list[str] | None, typer.Option("--keyword", help="Keyword (repeatable)")]
PublisherOption = Annotated[str | None, typer.Option(help="Publishing organisation")]
MetadataOption = Annotated[Path | None, typer.Option(
    "--metadata", help="JSON file with the dataset's fields, individuals and biosamples "
                       "(see producers/examples); options given here override its values")]
ActorOption = Annotated[str | None, typer.Option(help="Your steward user id (default: $USER)")]


def _who(actor: str | None, default: str = "steward") -> str:
    return actor or os.environ.get("USER") or default


def _describe(command: Any, metadata: Path | None, **fields: Any) -> Any:
    from genomebus.producers.datasets import InvalidDataset
    from genomebus.producers.metadata import describe_with_metadata, load_metadata

    try:
        return describe_with_metadata(load_metadata(metadata) if metadata is not None else {}, command=command,
                                      **fields)
    except InvalidDataset as exc:
        for line in exc.errors:
            err.print(f"[red]invalid:[/red] {line}")
        raise typer.Exit(2) from exc


def _decided(settings: Settings, ask: Any, what: str) -> Any:
    """Run a command's coroutine; show the decider's answer; exit 5 with the reasons when it is refused."""
    from genomebus.producers.commands import GatewayUnavailable, NoOutcomeYet
    from genomebus.producers.datasets import InvalidDataset

    try:
        outcome = asyncio.run(ask())
    except InvalidDataset as exc:
        for line in exc.errors:
            err.print(f"[red]invalid:[/red] {line}")
        raise typer.Exit(2) from exc
    except NoOutcomeYet as exc:
        raise fail(str(exc), 6) from exc
    except (GatewayUnavailable, SettingsError) as exc:
        raise fail(f"{exc}; is the node running? (`genomebus up --data-dir {settings.data_dir}`)", 6) from exc
    if not outcome.accepted:
        err.print(f"[red]refused:[/red] {what}" + (f" (the dataset is {outcome.state})" if outcome.state else ""))
        table = Table(show_header=True)
        table.add_column("reason")
        table.add_column("detail")
        for reason in outcome.reasons:
            table.add_row(reason.code, reason.message)
        err.print(table)
        raise typer.Exit(5)
    return outcome


@dataset_app.command("register")
def dataset_register(
    dataset_id: DatasetOption = None, title: TitleOption = None, duo: DuoOption = None,
    description: DescriptionOption = None, keyword: KeywordOption = None, publisher: PublisherOption = None,
    metadata: MetadataOption = None, actor: ActorOption = None, data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Register a dataset (refused if the id is taken: use `update`). Nothing is sent if the input is invalid."""
    from genomebus.producers.datasets import register_dataset
    from genomebus.schemas.reception import DatasetRegisterRequested

    dataset = _describe(DatasetRegisterRequested, metadata, dataset_id=dataset_id, title=title,
                        data_use=tuple(duo) if duo else None, description=description,
                        keywords=tuple(keyword) if keyword else None, publisher=publisher)
    settings = settings_for(data_dir)
    outcome = _decided(settings, lambda: register_dataset(settings, dataset, actor=_who(actor)),
                       f"register {dataset.dataset_id}")
    console.print(f"{outcome.outcome_type} {dataset.dataset_id}")


@dataset_app.command("update")
def dataset_update(
    dataset_id: DatasetOption = None, title: TitleOption = None, duo: DuoOption = None,
    description: DescriptionOption = None, keyword: KeywordOption = None, publisher: PublisherOption = None,
    metadata: MetadataOption = None, actor: ActorOption = None, data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Replace a registered dataset's description (title, data use, cohort, ...) with the one given."""
    from genomebus.producers.datasets import register_dataset
    from genomebus.schemas.reception import DatasetUpdateRequested

    dataset = _describe(DatasetUpdateRequested, metadata, dataset_id=dataset_id, title=title,
                        data_use=tuple(duo) if duo else None, description=description,
                        keywords=tuple(keyword) if keyword else None, publisher=publisher)
    settings = settings_for(data_dir)
    outcome = _decided(settings, lambda: register_dataset(settings, dataset, actor=_who(actor)),
                       f"update {dataset.dataset_id}")
    console.print(f"{outcome.outcome_type} {dataset.dataset_id}")


@dataset_app.command("release")
def dataset_release(
    dataset_id: Annotated[str, typer.Argument(help="The dataset to release, e.g. GDI-FI-DATASET-001")],
    actor: ActorOption = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Release a dataset: refused, naming each file that is not archived, unless every file is archived."""
    from genomebus.producers.datasets import release_dataset

    settings = settings_for(data_dir)
    outcome = _decided(settings, lambda: release_dataset(settings, dataset_id, actor=_who(actor)),
                       f"release {dataset_id}")
    console.print(f"{outcome.outcome_type} {dataset_id}")


@dataset_app.command("withdraw")
def dataset_withdraw(
    dataset_id: Annotated[str, typer.Argument(help="The dataset to withdraw, e.g. GDI-FI-DATASET-001")],
    reason: Annotated[str, typer.Option(help="Why it is withdrawn, in words (recorded on the log)")],
    actor: ActorOption = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Withdraw a dataset: the gateway stops serving it (410); its events stay on the log."""
    from genomebus.producers.datasets import withdraw_dataset

    settings = settings_for(data_dir)
    outcome = _decided(settings, lambda: withdraw_dataset(settings, dataset_id, reason=reason, actor=_who(actor)),
                       f"withdraw {dataset_id}")
    console.print(f"{outcome.outcome_type} {dataset_id}")


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
    """Upload files to the inbox and ask for each to join the dataset.

    Refused for an unknown, released or withdrawn dataset; the same bytes already archived there are skipped.
    """
    from rich.filesize import decimal
    from rich.progress import DownloadColumn, TransferSpeedColumn

    from genomebus.infra import kafka
    from genomebus.infra import s3 as object_store
    from genomebus.producers.commands import GatewayUnavailable
    from genomebus.producers.submit import (
        AnnounceFailed,
        DatasetClosed,
        InvalidSubmission,
        SubmittedFile,
        check_dataset_open,
        check_submission,
        submit_file,
    )

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
        await check_dataset_open(settings, dataset_id)  # before anything is opened or hashed
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
    except DatasetClosed as exc:
        raise fail(f"refused: {exc.message} ({exc.reason}); nothing was uploaded", 5) from exc
    except (SettingsError, GatewayUnavailable) as exc:
        failure, code = f"{exc}; is the node running? (`genomebus up --data-dir {settings.data_dir}`)", 6
    except AnnounceFailed as exc:
        failure, code, unannounced = str(exc), 1, ""
    except Exception as exc:  # noqa: BLE001 - whatever broke, say which file and that it was not announced
        failure, code = f"{type(exc).__name__}: {exc}", 1
    if submitted:
        table = Table(title=f"submitted to {dataset_id}")
        for col in ("file", "size", "sha256", "file_id", "outcome", "MB/s"):
            table.add_column(col, justify="right" if col in ("size", "MB/s") else "left", overflow="fold")
        for s in submitted:
            table.add_row(s.command.filename, decimal(s.command.size), s.command.sha256[:12] + "…", str(s.file_id),
                          _submit_outcome(s), f"{s.mb_per_s:.1f}")
        console.print(table)
        refused = [s for s in submitted if s.outcome is not None and not s.outcome.accepted]
        if refused and failure is None:
            failure, code, in_flight = f"{len(refused)} of {len(submitted)} files refused", 5, None
    if failure is not None:
        if in_flight is None:
            raise fail(failure, code)
        untried = len(checked) - len(submitted) - 1
        raise fail(f"{in_flight}: {failure}{unannounced}" + (f"; {untried} more not attempted" if untried else ""),
                   code)


def _submit_outcome(submitted: Any) -> str:
    if submitted.outcome is None:
        return f"skipped: already archived as {submitted.archived_as}"
    if submitted.outcome.accepted:
        return "accepted: file.uploaded"
    return "refused: " + "; ".join(f"{r.code} ({r.message})" for r in submitted.outcome.reasons)


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
