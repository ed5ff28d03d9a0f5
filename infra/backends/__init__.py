"""Backends: where a task's executors run. The executor worker (``consumers/executor.py``) decides a
task's states and talks to one backend through ``Backend``; a Slurm or Kubernetes backend implements the
same protocol and nothing else changes (docs/sandbox.md says how each would map).

A backend gets a ``TaskRun`` (the executors, the files to stage, the outputs to collect, the limits) and
returns a ``RunOutcome`` (the TES end state, one ``ExecutorLog`` per executor that ran, the output files
collected on the executor's host, system logs). It reports ``RUNNING`` through ``on_running`` when the
first executor starts. It never raises for what a task does; it raises ``BackendUnavailable`` only when
it cannot run anything at all (the task is then a SYSTEM_ERROR, never COMPLETE).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from genomebus.schemas.tasks import ExecutorLog

WORK = "/work"
"""Where the task's work directory is inside the sandbox: every TES input and output path is under it."""


def inside_work(path: str) -> bool:
    """Whether a TES path is absolute, under /work, and free of '..' (every input and output path must be)."""
    from pathlib import PurePosixPath

    pure = PurePosixPath(path)
    return pure.is_absolute() and ".." not in pure.parts and (pure == PurePosixPath(WORK) or
                                                               pure.is_relative_to(WORK))


class BackendUnavailable(RuntimeError):
    """The backend cannot run tasks at all (its sandbox cannot be built, its cluster is unreachable)."""


@dataclass(frozen=True)
class ExecutorSpec:
    argv: tuple[str, ...]
    runtime: str
    workdir: str = WORK
    stdin: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    ignore_error: bool = False


@dataclass(frozen=True)
class StageFile:
    """A file to put at ``path`` (inside the sandbox) before the first executor: bytes, or a writer that
    streams them into the host file it is given (decrypting from the archive, say)."""

    path: str
    content: bytes | None = None
    writer: Callable[[Path], Awaitable[None]] | None = None


@dataclass(frozen=True)
class OutputSpec:
    path: str
    type: Literal["FILE", "DIRECTORY"] = "FILE"


@dataclass(frozen=True)
class TaskLimits:
    ram_bytes: int
    cpu_cores: int
    disk_bytes: int
    wall_s: int
    processes: int


@dataclass
class TaskRun:
    task_id: str
    executors: list[ExecutorSpec]
    inputs: list[StageFile]
    tool_files: dict[str, bytes]
    """The tool version's files, by relative path: staged read-only at /tool."""
    outputs: list[OutputSpec]
    limits: TaskLimits
    log_tail_bytes: int = 65536


@dataclass
class CollectedOutput:
    path: str
    """Inside the sandbox (``/work/...``)."""
    host_path: Path
    size: int


@dataclass
class RunOutcome:
    state: Literal["COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"]
    logs: list[ExecutorLog]
    outputs: list[CollectedOutput]
    system_logs: list[str]
    reason_code: str | None = None


class Backend(Protocol):
    name: str

    async def run(self, run: TaskRun, cancel: asyncio.Event, on_running: Callable[[], Awaitable[None]]) -> RunOutcome:
        """Stage, run every executor in order, collect the outputs; the outcome, whatever happened."""
        ...

    async def read_log(self, task_id: str, executor: int, stream: Literal["stdout", "stderr"], max_bytes: int) -> str:
        """The last ``max_bytes`` of what an executor of the task wrote to ``stream`` ("" if nothing); read
        before ``discard`` (a workflow engine's log becomes the run's step logs)."""
        ...

    async def discard(self, task_id: str) -> None:
        """Remove what the task left on the backend (after its outputs are safe)."""
        ...
