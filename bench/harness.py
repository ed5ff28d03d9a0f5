"""What the benchmark scripts in bench/ share: console, deadlines, run ids, the stack around a run, result files.

The scripts import it as ``harness`` (their own folder is first on ``sys.path`` when run as
``.venv/bin/python bench/<script>.py``); importing it puts the repository root on ``sys.path``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402

from genomebus.infra import stack  # noqa: E402
from genomebus.infra.settings import Settings  # noqa: E402

RESULTS_DIR = BENCH_DIR / "results"

console = Console()
if console.width < 140:
    console = Console(width=140)  # the table is wide; do not wrap it in pipes and logs


class BenchTimeout(RuntimeError):
    pass


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def check(self, what: str) -> None:
        if self.left() <= 0:
            raise BenchTimeout(f"timed out during {what}")

    def sooner(self, seconds: float) -> Deadline:
        """A deadline ``seconds`` from now, but never later than this one."""
        d = Deadline(seconds)
        d.end = min(d.end, self.end)
        return d


def run_prefix() -> str:
    """Digits that keep this run's dataset ids distinct from earlier runs on the same stack."""
    return f"{int(time.time()) % 10**8:08d}"


# -- stack handling ----------------------------------------------------------------------------


def stack_is_running(data_dir: Path) -> bool:
    return bool(stack.running_supervisor(data_dir)) and stack.read_state(data_dir).get("status") == "running"


def data_dir_for(arg: Path | None) -> tuple[Path, bool]:
    """``(data_dir, created)``: ``--data-dir`` as given, or a new 0755 directory under /var/tmp."""
    if arg is not None:
        return arg.resolve(), False
    data_dir = Path(tempfile.mkdtemp(prefix="genomebus-bench-", dir="/var/tmp"))
    data_dir.chmod(0o755)  # PostgreSQL runs as nobody and must traverse it
    return data_dir, True


def with_stack(settings: Settings, info: dict[str, Any], body: Callable[[], int], *, created_dir: bool,
               keep_stack: bool, keep_dir: bool, existing_note: str | None = None) -> int:
    """Use the stack running in ``settings.data_dir`` or start one there, run ``body``, then clean up.

    A stack started here is stopped afterwards unless ``keep_stack``; a directory created by
    :func:`data_dir_for` is removed unless ``keep_dir``. Returns ``body``'s exit code, 130 on
    Ctrl-C, 1 when the stack could not be started.
    """
    data_dir = settings.data_dir
    started_stack = False
    code = 0
    try:
        if stack_is_running(data_dir):
            console.print(f"using the running stack in {data_dir}")
            if existing_note:
                console.print(existing_note)
            info["stack"] = "existing"
        else:
            console.print(f"starting a local stack in {data_dir} …")
            t = time.perf_counter()
            started_stack = True
            stack.start_detached(settings, timeout=180.0)
            info["stack"] = "started"
            info["stack_start_seconds"] = round(time.perf_counter() - t, 1)
            console.print(f"  stack up in {info['stack_start_seconds']} s")
        code = body()
    except KeyboardInterrupt:
        code = 130
    except stack.StackError as exc:
        console.print(f"[red]{exc}")
        code = 1
    finally:
        if started_stack and not keep_stack:
            console.print("stopping the stack …")
            stack.stop_stack(data_dir)
        elif started_stack:
            console.print(f"the stack keeps running in {data_dir}; stop it with "
                          f"`.venv/bin/python -m genomebus.cli down --data-dir {data_dir}`")
        if created_dir and not keep_dir:
            shutil.rmtree(data_dir, ignore_errors=True)
        elif created_dir:
            console.print(f"kept {data_dir}")
    return code


def run_timed(bench: Callable[[Deadline], Coroutine[Any, Any, None]], timeout: float, info: dict[str, Any]) -> int:
    """Run ``bench(deadline)`` within ``timeout`` seconds (plus 30 s of grace); 0, or 2 if it timed out."""
    deadline = Deadline(timeout)
    try:
        asyncio.run(asyncio.wait_for(bench(deadline), timeout=timeout + 30))
    except (BenchTimeout, TimeoutError) as exc:
        console.print(f"[red]benchmark stopped: {exc!r}")
        info["error"] = repr(exc)
        return 2
    return 0


# -- output ------------------------------------------------------------------------------------


def write_results(kind: str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to bench/results/<kind>-<timestamp>.json and return the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{kind}-{datetime.now().strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path
