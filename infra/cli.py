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

from infra.settings import Settings, SettingsError

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
    from consumers import workers
    from infra.stack import StackError, Supervisor, start_detached

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
    from infra.stack import stop_stack

    if stop_stack(data_dir):
        console.print("genomebus stopped")
    else:
        console.print("nothing was running")


@app.command()
def worker(name: Annotated[str, typer.Argument(help="Worker to run, e.g. projector")],
           data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Run one worker alone against the configured servers (how production runs it)."""
    from consumers import workers

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

    from gateway.app import create_app

    _logging()
    settings = settings_for(data_dir)
    uvicorn.run(create_app(settings), host=host or settings.gateway_host, port=port or settings.gateway_port or 8080,
                log_level="warning", access_log=False)


@app.command()
def status(data_dir: DataDir = DEFAULT_DATA_DIR,
           as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Health and address of each component, topics, consumer groups, projection positions, dead letters."""
    from infra.status import collect

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
    from consumers.projector import PROJECTIONS
    from infra import db, kafka
    from infra import projection as engine

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
    from infra.audit import history

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
    from schemas.export import export

    written = export(directory, Settings())
    console.print(f"wrote {len(written)} files to {directory}")


# -- data stewards -----------------------------------------------------------------------------------


@dataset_app.command("register")
def dataset_register(
    dataset_id: Annotated[str, typer.Option("--id", help="1+MG PID, e.g. GDI-FI-DATASET-001")],
    title: Annotated[str, typer.Option(help="Human-readable title")],
    duo: Annotated[list[str], typer.Option("--duo", help="DUO data-use term, e.g. DUO:0000042 (repeatable)")],
    description: Annotated[str, typer.Option(help="Free-text description")] = "",
    keyword: Annotated[list[str] | None, typer.Option("--keyword", help="Keyword (repeatable)")] = None,
    publisher: Annotated[str | None, typer.Option(help="Publishing organisation")] = None,
    actor: Annotated[str | None, typer.Option(help="Your steward user id (default: $USER)")] = None,
    wait: Annotated[bool, typer.Option(help="Wait until the gateway can serve it")] = True,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Register a dataset: publishes `dataset.registered` (nothing is published if the input is invalid)."""
    from producers.datasets import InvalidDataset, describe_dataset, register_dataset

    try:
        dataset = describe_dataset(dataset_id=dataset_id, title=title, data_use=tuple(duo), description=description,
                                   keywords=tuple(keyword or ()), publisher=publisher)
    except InvalidDataset as exc:
        for line in exc.errors:
            err.print(f"[red]invalid:[/red] {line}")
        raise typer.Exit(2) from exc
    settings = settings_for(data_dir)
    who = actor or os.environ.get("USER") or "steward"

    async def run() -> tuple[Any, float | None]:
        from consumers.projector import DatasetsProjection
        from infra import db
        from infra.projection import wait_for_position

        published = await register_dataset(settings, dataset, actor=who)
        if not wait:
            return published, None
        pool = await db.connect(settings, max_size=2)
        try:
            waited = await wait_for_position(pool, DatasetsProjection, published.topic, published.partition,
                                             published.offset, settings.read_your_writes_timeout_s)
        finally:
            await pool.close()
        return published, waited

    try:
        published, waited = asyncio.run(run())
    except TimeoutError as exc:
        raise fail(f"published, but not projected yet: {exc}") from exc
    console.print(f"dataset.registered {dataset_id} → {published.topic}[{published.partition}]@{published.offset}"
                  + (f"; projected in {waited * 1000:.0f} ms" if waited is not None else ""))


# -- the demo ----------------------------------------------------------------------------------------------


@app.command()
def demo(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Start the local stack if needed and run the node's scenario end to end, step by step."""
    from producers.demo import run_demo

    code = run_demo(settings_for(data_dir), console)
    raise typer.Exit(code)


def main() -> None:
    with contextlib.suppress(BrokenPipeError):
        app()


if __name__ == "__main__":
    sys.exit(main())
