"""The task sandbox: a command run next to the data with no network, nothing of the node in sight, as an
unprivileged user, within limits.

Built from Linux namespaces with util-linux's ``unshare`` (in every Debian base) and the kernel calls
in ``genomebus.infra.sandbox_init``, which runs first inside them:

- **network**: its own network namespace with nothing in it, loopback down: no address is reachable,
  the node's loopback ports included, and no name resolves;
- **files**: a fresh root (tmpfs, read-only once built) with ``/usr``, the runtime's folders and
  ``/tool`` read-only, ``/work`` (the task's work directory) and a small ``/tmp`` writable; the data
  directory, ``secrets.json``, keys and other tasks' folders are not in it at all;
- **processes**: its own PID namespace (the task sees only itself; when its first process ends, the
  kernel ends every other), IPC and UTS namespaces;
- **user**: an unprivileged uid/gid of its own (``uid``), no supplementary groups, all capabilities
  dropped, ``no_new_privs`` (no set-uid program gives root back);
- **limits**: address space (memory), CPU seconds, processes (per uid: each running task has its own),
  file size, open files; wall time here: the whole namespace is killed at the deadline, or on cancel.

If the process running ``run`` dies (even ``kill -9``), the kernel kills ``unshare`` (parent-death
signal) and ``unshare`` its child (``--kill-child``), so no task outlives the executor that ran it.

This needs root (the executor as root, or with CAP_SYS_ADMIN). Without it, ``unshare --user
--map-root-user`` would give the same namespaces inside a user namespace; see docs/sandbox.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from genomebus.infra.runtimes import Runtime

PR_SET_PDEATHSIG = 1
UID_BASE = 620000
"""Task users: UID_BASE + slot. No account of the host has these ids."""
TMP_BYTES = 64 * 2**20

Reason = Literal["exited", "signalled", "wall_time", "cpu_time", "file_size", "cancelled", "setup_failed"]


class SandboxUnavailable(RuntimeError):
    """This host cannot build the sandbox (no ``unshare``, or not allowed to make namespaces)."""


@dataclass(frozen=True)
class SandboxLimits:
    ram_bytes: int
    cpu_s: int
    wall_s: float
    processes: int
    file_bytes: int


@dataclass
class SandboxResult:
    exit_code: int | None
    """The command's exit code; None when it was killed (see ``signal`` and ``reason``)."""
    reason: Reason
    signal: int | None = None
    started: float = 0.0
    ended: float = 0.0
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.reason == "exited" and self.exit_code == 0

    def describe(self) -> str:
        """One line for a task's system logs."""
        if self.reason == "exited":
            return f"exited with code {self.exit_code}"
        if self.reason == "wall_time":
            return "stopped: the wall-time limit was reached"
        if self.reason == "cpu_time":
            return "stopped: the CPU-time limit was reached"
        if self.reason == "file_size":
            return "stopped: a file grew past the file-size limit"
        if self.reason == "cancelled":
            return "stopped: the task was cancelled"
        if self.reason == "setup_failed":
            return f"the sandbox could not be built: {self.detail}"
        name = signal.Signals(self.signal).name if self.signal else "a signal"
        return f"killed by {name}" + (" (the memory limit is the usual cause)" if self.signal == signal.SIGKILL
                                      else "")


@dataclass
class SandboxRun:
    """One command in the sandbox: the command, its view and its limits."""

    argv: list[str]
    workdir: Path
    """Host folder mounted at /work (writable); it must belong to ``uid``."""
    runtime: Runtime
    limits: SandboxLimits
    stdout: Path
    """Host file capturing the command's stdout (outside the sandbox's view)."""
    stderr: Path
    stdin: Path | None = None
    tool_dir: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = "/work"
    uid: int = UID_BASE
    scratch: Path | None = None
    """An empty host folder to build the root in (default: a sibling of the work directory)."""


def available() -> str | None:
    """None when this host can build the sandbox; else why not, in a sentence."""
    if sys.platform != "linux":
        return "the sandbox needs Linux namespaces"
    if shutil.which("unshare") is None:
        return "util-linux's unshare is not installed"
    if os.geteuid() != 0:
        return "the executor must run as root (or with CAP_SYS_ADMIN) to build the sandbox"
    return None


def _die_with_parent() -> None:
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _processes_of(uid: int) -> bool:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    return True
    return False


async def _until_gone(uid: int, within_s: float = 5.0) -> None:
    """Wait until the kernel has reaped every process of the task's uid (killing is immediate, reaping is not),
    so that a slot's next task never overlaps the last one."""
    deadline = time.monotonic() + within_s
    while _processes_of(uid) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


async def run(job: SandboxRun, cancel: asyncio.Event | None = None) -> SandboxResult:
    """Run ``job`` to its end, its wall time, or ``cancel``; never raises for what the command does."""
    problem = available()
    if problem:
        raise SandboxUnavailable(problem)
    scratch = job.scratch or job.workdir.parent / f".root-{job.workdir.name}"
    scratch.mkdir(mode=0o700, exist_ok=True)
    env = {"PATH": job.runtime.path, "HOME": "/work", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
           **job.runtime.env, **job.env}
    spec = {
        "root": str(scratch), "workdir": str(job.workdir), "tool_dir": str(job.tool_dir) if job.tool_dir else None,
        "ro_binds": [[str(source), target] for source, target in job.runtime.binds],
        "uid": job.uid, "gid": job.uid, "cwd": job.cwd, "argv": job.argv, "env": env,
        "stdin": str(job.stdin) if job.stdin else None, "stdout": str(job.stdout), "stderr": str(job.stderr),
        "tmp_bytes": TMP_BYTES,
        "limits": {"ram_bytes": job.limits.ram_bytes, "cpu_s": job.limits.cpu_s, "processes": job.limits.processes,
                   "file_bytes": job.limits.file_bytes},
    }
    spec_read, spec_write = os.pipe()
    status_read, status_write = os.pipe()
    os.write(spec_write, json.dumps(spec).encode())  # a few kB: fits in the pipe's buffer
    os.close(spec_write)
    started = time.time()
    try:
        process = await asyncio.create_subprocess_exec(
            "unshare", "--net", "--mount", "--pid", "--ipc", "--uts", "--fork", "--kill-child",
            sys.executable, "-I", "-m", "genomebus.infra.sandbox_init", str(spec_read), str(status_write),
            pass_fds=(spec_read, status_write), preexec_fn=_die_with_parent, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            env={"PATH": "/usr/bin:/bin"})
    finally:
        os.close(spec_read)
        os.close(status_write)
    why: Reason | None = None
    waiters = {asyncio.ensure_future(process.wait())}
    if cancel is not None:
        waiters.add(asyncio.ensure_future(cancel.wait()))
    done, pending = await asyncio.wait(waiters, timeout=job.limits.wall_s, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    if process.returncode is None:
        why = "cancelled" if done else "wall_time"
        with contextlib.suppress(ProcessLookupError):
            process.kill()  # unshare dies; --kill-child kills PID 1 of the task; the kernel, the rest
        await process.wait()
        await _until_gone(job.uid)
    stderr = (await process.stderr.read()).decode(errors="replace").strip() if process.stderr else ""
    with os.fdopen(status_read) as f:
        line = f.readline()
    ended = time.time()
    with contextlib.suppress(OSError):
        scratch.rmdir()
    if why is not None:
        return SandboxResult(None, why, started=started, ended=ended)
    try:
        report = json.loads(line)
    except ValueError:
        return SandboxResult(None, "setup_failed", started=started, ended=ended,
                             detail=stderr.splitlines()[-1] if stderr else f"unshare exited {process.returncode}")
    if "setup_error" in report:
        return SandboxResult(None, "setup_failed", started=started, ended=ended, detail=report["setup_error"])
    if "signal" in report:
        sig = report["signal"]
        reason: Reason = {signal.SIGXCPU: "cpu_time", signal.SIGXFSZ: "file_size"}.get(sig, "signalled")
        return SandboxResult(None, reason, signal=sig, started=started, ended=ended)
    return SandboxResult(report["exit_code"], "exited", started=started, ended=ended)

