"""The local backend: a task's executors run on this host, one after another, each in the sandbox
(``genomebus.infra.sandbox``).

Layout of a task under ``tasks_path``: ``<task_id>/work`` (mounted at ``/work``, owned by the task's own
uid), ``<task_id>/tool`` (the tool version's files, read-only at ``/tool``), ``<task_id>/logs`` (each
executor's stdout and stderr, captured outside the sandbox's view). Outputs are read from ``work`` without
following any symbolic link the task made (a link to ``/etc/shadow`` made inside the sandbox would point
at the host's file once read from outside): links are skipped and said in the system logs.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Literal

from genomebus.infra import sandbox
from genomebus.infra.backends import (
    WORK,
    BackendUnavailable,
    CollectedOutput,
    OutputSpec,
    RunOutcome,
    TaskRun,
)
from genomebus.infra.runtimes import RUNTIMES
from genomebus.schemas.tasks import ExecutorLog


class BadPath(ValueError):
    """A TES path outside /work, or with '..'."""


def host_path(work: Path, path: str) -> Path:
    """The host path of a sandbox path under /work; refuses anything else."""
    pure = PurePosixPath(path)
    if not pure.is_absolute() or ".." in pure.parts:
        raise BadPath(f"{path} is not an absolute path without '..'")
    try:
        relative = pure.relative_to(WORK)
    except ValueError:
        raise BadPath(f"{path} is not under {WORK}, the task's work directory") from None
    return work.joinpath(*relative.parts)


def _tail(path: Path, size: int) -> str:
    if not path.exists():
        return ""
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - size))
        return f.read().decode(errors="replace")


class LocalBackend:
    name = "local"

    def __init__(self, tasks_path: Path, *, uid: int = sandbox.UID_BASE) -> None:
        self.tasks_path = tasks_path
        self.uid = uid

    def task_dir(self, task_id: str) -> Path:
        return self.tasks_path / task_id

    async def run(self, run: TaskRun, cancel: asyncio.Event, on_running: Callable[[], Awaitable[None]]) -> RunOutcome:
        problem = sandbox.available()
        if problem:
            raise BackendUnavailable(problem)
        base = self.task_dir(run.task_id)
        if base.exists():  # a run interrupted earlier left it: start clean (never two runs of one task at once)
            shutil.rmtree(base)
        work, tool, logs = base / "work", base / "tool", base / "logs"
        for folder in (work, tool, logs):
            folder.mkdir(parents=True, mode=0o700)
        base.chmod(0o711)
        system_logs: list[str] = []
        try:
            for rel, content in run.tool_files.items():
                target = tool.joinpath(*PurePosixPath(rel).parts)
                if ".." in PurePosixPath(rel).parts or PurePosixPath(rel).is_absolute():
                    raise BadPath(f"tool file {rel} is not a relative path")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
            for item in run.inputs:
                target = host_path(work, item.path)
                target.parent.mkdir(parents=True, exist_ok=True)
                if item.writer is not None:
                    await item.writer(target)
                else:
                    target.write_bytes(item.content or b"")
        except BadPath as exc:
            return RunOutcome("SYSTEM_ERROR", [], [], [f"staging refused: {exc}"], "bad_path")
        for output in run.outputs:  # the folders the outputs go in exist before the first executor
            try:
                target = host_path(work, output.path)
            except BadPath as exc:
                return RunOutcome("SYSTEM_ERROR", [], [], [f"output refused: {exc}"], "bad_path")
            (target if output.type == "DIRECTORY" else target.parent).mkdir(parents=True, exist_ok=True)
        _give(work, self.uid)
        tool.chmod(0o755)
        for path in tool.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)

        executor_logs: list[ExecutorLog] = []
        started = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + run.limits.wall_s
        for n, spec in enumerate(run.executors):
            if cancel.is_set():
                return RunOutcome("CANCELED", executor_logs, [], system_logs, "cancelled")
            runtime = RUNTIMES.get(spec.runtime)
            if runtime is None:
                return RunOutcome("SYSTEM_ERROR", executor_logs, [], system_logs + [f"no runtime {spec.runtime}"],
                                  "unknown_runtime")
            try:
                stdin = host_path(work, spec.stdin) if spec.stdin else None
                host_path(work, spec.workdir)
            except BadPath as exc:
                return RunOutcome("SYSTEM_ERROR", executor_logs, [], system_logs + [str(exc)], "bad_path")
            remaining = deadline - loop.time()
            if remaining <= 0:
                return RunOutcome("EXECUTOR_ERROR", executor_logs, [], system_logs +
                                  [f"executor {n}: not started, the task's wall time was used up"], "wall_time")
            out, err = logs / f"executor-{n}.stdout", logs / f"executor-{n}.stderr"
            job = sandbox.SandboxRun(
                argv=list(spec.argv), workdir=work, runtime=runtime, tool_dir=tool, stdin=stdin, stdout=out,
                stderr=err, env=dict(spec.env), cwd=spec.workdir, uid=self.uid,
                limits=sandbox.SandboxLimits(ram_bytes=run.limits.ram_bytes,
                                             cpu_s=max(1, int(remaining * run.limits.cpu_cores)),
                                             wall_s=remaining, processes=run.limits.processes,
                                             file_bytes=run.limits.disk_bytes))
            if not started:
                await on_running()
                started = True
            result = await sandbox.run(job, cancel)
            executor_logs.append(ExecutorLog(
                start_time=datetime.fromtimestamp(result.started, UTC), end_time=datetime.fromtimestamp(result.ended, UTC),
                stdout=_tail(out, run.log_tail_bytes), stderr=_tail(err, run.log_tail_bytes),
                exit_code=result.exit_code if result.exit_code is not None else 128 + (result.signal or 9)))
            for capture, wanted in ((out, spec.stdout), (err, spec.stderr)):
                if wanted:
                    try:
                        _copy_to_work(work, capture, host_path(work, wanted), self.uid)
                    except BadPath as exc:
                        system_logs.append(f"executor {n}: {exc}")
            if result.reason == "cancelled":
                return RunOutcome("CANCELED", executor_logs, [], system_logs, "cancelled")
            if result.reason == "setup_failed":
                return RunOutcome("SYSTEM_ERROR", executor_logs, [], system_logs + [result.describe()], "sandbox_failed")
            if not result.ok:
                system_logs.append(f"executor {n}: {result.describe()}")
                if result.reason != "exited" or not spec.ignore_error:
                    return RunOutcome("EXECUTOR_ERROR", executor_logs, [], system_logs, result.reason)
            used = _size(work)
            if used > run.limits.disk_bytes:
                return RunOutcome("EXECUTOR_ERROR", executor_logs, [], system_logs +
                                  [f"executor {n}: the work directory holds {used} bytes, more than the task's "
                                   f"{run.limits.disk_bytes}"], "disk")
        outputs: list[CollectedOutput] = []
        for output in run.outputs:
            outputs.extend(collect(work, output, system_logs))
        return RunOutcome("COMPLETE", executor_logs, outputs, system_logs)

    async def read_log(self, task_id: str, executor: int, stream: Literal["stdout", "stderr"], max_bytes: int) -> str:
        return await asyncio.to_thread(_tail, self.task_dir(task_id) / "logs" / f"executor-{executor}.{stream}",
                                       max_bytes)

    async def discard(self, task_id: str) -> None:
        await asyncio.to_thread(shutil.rmtree, self.task_dir(task_id), True)


def collect(work: Path, output: OutputSpec, system_logs: list[str]) -> list[CollectedOutput]:
    """The regular files an output names, found without following links; what is missing or refused is logged."""
    try:
        target = host_path(work, output.path)
    except BadPath as exc:
        system_logs.append(f"output {output.path}: {exc}")
        return []
    if not _real_folders(work, target):
        system_logs.append(f"output {output.path}: not found (or behind a link)")
        return []
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        system_logs.append(f"output {output.path}: not found")
        return []
    found: list[CollectedOutput] = []
    if output.type == "FILE":
        if stat.S_ISREG(mode):
            found.append(CollectedOutput(output.path, target, os.lstat(target).st_size))
        else:
            system_logs.append(f"output {output.path}: not a regular file (links are never followed)")
        return found
    if not stat.S_ISDIR(mode):
        system_logs.append(f"output {output.path}: not a directory")
        return found
    for folder, dirs, files in os.walk(target, followlinks=False):
        for name in sorted(files):
            path = Path(folder) / name
            st = os.lstat(path)
            inside = f"{output.path.rstrip('/')}/{path.relative_to(target).as_posix()}"
            if stat.S_ISREG(st.st_mode):
                found.append(CollectedOutput(inside, path, st.st_size))
            else:
                system_logs.append(f"output {inside}: skipped, not a regular file")
        for name in list(dirs):
            if (Path(folder) / name).is_symlink():
                system_logs.append(f"output {output.path.rstrip('/')}/{name}: skipped, a link")
                dirs.remove(name)
    return found


def _give(folder: Path, uid: int) -> None:
    """The work directory and what was staged in it belong to the task's user."""
    os.chown(folder, uid, uid)
    for path in folder.rglob("*"):
        os.chown(path, uid, uid, follow_symlinks=False)


def _real_folders(work: Path, target: Path) -> bool:
    """Every folder between ``work`` and ``target`` exists and is a folder, not a link the task made."""
    here = work
    for part in target.relative_to(work).parts[:-1]:
        here = here / part
        try:
            if not stat.S_ISDIR(os.lstat(here).st_mode):
                return False
        except FileNotFoundError:
            return False
    return True


def _copy_to_work(work: Path, capture: Path, target: Path, uid: int) -> None:
    """Copy an executor's captured stream to the path it asked for (as root, once its processes are gone),
    never through a link the task made."""
    here = work
    for part in target.relative_to(work).parts[:-1]:
        here = here / part
        if here.is_symlink() or (here.exists() and not here.is_dir()):
            raise BadPath(f"{target.relative_to(work)} is behind a link; the capture was not copied there")
        if not here.exists():
            here.mkdir()
            os.chown(here, uid, uid)
    if target.is_symlink():
        raise BadPath(f"{target.relative_to(work)} is a link; the capture was not copied there")
    shutil.copyfile(capture, target)
    os.chown(target, uid, uid)


def _size(folder: Path) -> int:
    total = 0
    for entry_folder, _, files in os.walk(folder, followlinks=False):
        for name in files:
            try:
                total += os.lstat(os.path.join(entry_folder, name)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total
