"""The task sandbox, for real (Linux namespaces, no stack): each way out the issue names is tried from
inside and must be refused, and each limit must stop what breaks it.

Skipped only where the sandbox cannot be built at all (not Linux, no unshare, not root); the node's
executor refuses to run tasks there too.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from genomebus.infra import sandbox
from genomebus.infra.runtimes import RUNTIMES
from genomebus.infra.sandbox import SandboxLimits, SandboxRun

pytestmark = pytest.mark.skipif(sandbox.available() is not None, reason=str(sandbox.available()))

REPO = Path(__file__).resolve().parents[2]
LIMITS = SandboxLimits(ram_bytes=1 * 2**30, cpu_s=30, wall_s=30, processes=64, file_bytes=2**30)


class Task:
    """A task's folder as the executor lays it out: ``work`` (owned by the task's uid) and its captures."""

    def __init__(self, base: Path, name: str = "task-a", uid: int = sandbox.UID_BASE) -> None:
        self.dir = base / name
        self.work = self.dir / "work"
        self.work.mkdir(parents=True)
        os.chown(self.work, uid, uid)
        self.uid = uid

    def run(self, argv: list[str], *, limits: SandboxLimits = LIMITS, runtime: str = "python-pysam",
            cancel_after: float | None = None) -> tuple[sandbox.SandboxResult, str, str]:
        async def go() -> sandbox.SandboxResult:
            cancel = asyncio.Event()
            if cancel_after is not None:
                asyncio.get_running_loop().call_later(cancel_after, cancel.set)
            return await sandbox.run(SandboxRun(argv=argv, workdir=self.work, runtime=RUNTIMES[runtime], limits=limits,
                                                stdout=self.dir / "stdout", stderr=self.dir / "stderr", uid=self.uid),
                                     cancel)

        result = asyncio.run(go())
        out = (self.dir / "stdout").read_text() if (self.dir / "stdout").exists() else ""
        err = (self.dir / "stderr").read_text() if (self.dir / "stderr").exists() else ""
        for capture in ("stdout", "stderr"):
            (self.dir / capture).unlink(missing_ok=True)
        return result, out, err

    def python(self, code: str, **kwargs) -> tuple[sandbox.SandboxResult, str, str]:
        return self.run(["python", "-c", textwrap.dedent(code)], **kwargs)


@pytest.fixture
def task(tmp_path: Path) -> Task:
    tmp_path.chmod(0o755)
    return Task(tmp_path)


def task_processes(uid: int) -> list[int]:
    """PIDs on the host running as ``uid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    found.append(int(entry))
            except FileNotFoundError:
                pass
    return found


def test_a_command_runs_as_an_unprivileged_user_with_pysam_and_writes_only_its_work_dir(task: Task) -> None:
    result, out, err = task.python("""
        import os, pysam
        open('/work/out.txt', 'w').write('written')
        open('/tmp/scratch', 'w').write('ok')
        status = dict(line.split(':\\t') for line in open('/proc/self/status').read().splitlines() if ':\\t' in line)
        print(os.getuid(), os.getgid(), os.getgroups(), status['CapEff'], status['NoNewPrivs'], pysam.__version__)
    """)
    assert result.ok, err
    uid, gid, groups, caps, nnp, _ = out.split(" ", 5)
    assert (int(uid), int(gid), groups) == (task.uid, task.uid, "[]")
    assert int(caps, 16) == 0 and nnp == "1"
    assert (task.work / "out.txt").read_text() == "written"


@pytest.mark.parametrize("path", ["/etc/passwd", "/usr/evil", "/evil", "/opt/runtimes/python-pysam/evil",
                                  "/proc/evil", "/dev/evil", "/root/evil"])
def test_nothing_outside_the_work_dir_can_be_written(task: Task, path: str) -> None:
    result, _, err = task.python(f"open({path!r}, 'w').write('x')")
    assert result.exit_code == 1
    assert "Read-only file system" in err or "Permission denied" in err or "No such file" in err, err


def test_the_nodes_loopback_ports_are_unreachable(task: Task) -> None:
    with socket.socket() as server:  # what the gateway is: a loopback port on the host
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.settimeout(0.5)
        port = server.getsockname()[1]
        result, out, _ = task.python(f"""
            import socket
            for host in ('127.0.0.1', '::1', '10.0.0.1'):
                try:
                    socket.create_connection((host, {port}), timeout=2)
                    print(host, 'connected')
                except OSError as exc:
                    print(host, 'refused', exc.errno)
        """)
        with pytest.raises(TimeoutError):
            server.accept()
    assert result.ok
    assert "connected" not in out and out.count("refused") == 3, out


def test_no_name_resolves_and_no_interface_is_up(task: Task) -> None:
    result, out, err = task.python("""
        import socket, os
        for name in ('example.org', 'pypi.org'):
            try:
                socket.getaddrinfo(name, 443)
                print(name, 'resolved')
            except OSError:
                print(name, 'unresolved')
        print(sorted(os.listdir('/sys/class/net')) if os.path.exists('/sys/class/net') else 'no-sys')
    """)
    assert result.ok, err
    assert out.count("unresolved") == 2 and "resolved\n" not in out.replace("unresolved", ""), out


def test_the_nodes_secrets_keys_and_repository_are_not_there(task: Task, tmp_path: Path) -> None:
    node = tmp_path / "node"
    (node / "keys").mkdir(parents=True)
    secrets, key = node / "secrets.json", node / "keys" / "archive.sec"
    secrets.write_text('{"postgres": "s3cret"}')
    key.write_text("-----BEGIN CRYPT4GH PRIVATE KEY-----")
    paths = [str(secrets), str(key), str(node), str(REPO / "pyproject.toml"), str(Path.home() / ".bash_history")]
    result, out, err = task.python(f"""
        import os
        for p in {paths!r}:
            print(p, os.path.exists(p))
    """)
    assert result.ok, err
    assert all(line.endswith("False") for line in out.splitlines()), out


def test_another_tasks_files_are_not_visible(task: Task, tmp_path: Path) -> None:
    other = Task(tmp_path, "task-b", uid=sandbox.UID_BASE + 1)
    (other.work / "result.tsv").write_text("private")
    result, out, err = task.python(f"""
        import os
        print(os.path.exists({str(other.work / 'result.tsv')!r}), os.path.exists('/work/../task-b'), os.listdir('/work'))
    """)
    assert result.ok, err
    assert out.strip() == "False False []"


def test_the_task_sees_only_its_own_processes(task: Task) -> None:
    result, out, err = task.python("import os; print(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))")
    assert result.ok, err
    assert json.loads(out) == [1, 2]  # the sandbox's first process and the command


def test_a_memory_hog_is_stopped(task: Task) -> None:
    limits = SandboxLimits(ram_bytes=256 * 2**20, cpu_s=30, wall_s=30, processes=16, file_bytes=2**30)
    result, _, err = task.python("blocks = [bytearray(64 * 2**20) for _ in range(64)]", limits=limits)
    assert result.exit_code == 1 and "MemoryError" in err


def test_a_fork_bomb_is_contained_and_nothing_of_it_survives(task: Task) -> None:
    limits = SandboxLimits(ram_bytes=1 * 2**30, cpu_s=30, wall_s=3, processes=16, file_bytes=2**30)
    started = time.monotonic()
    result, _, _ = task.run(["sh", "-c", "bomb() { bomb | bomb & }; bomb; sleep 60"], limits=limits)
    assert result.reason == "wall_time"
    assert time.monotonic() - started < 15
    time.sleep(0.2)
    assert task_processes(task.uid) == []


def test_a_sleep_past_the_wall_time_is_stopped(task: Task) -> None:
    limits = SandboxLimits(ram_bytes=1 * 2**30, cpu_s=30, wall_s=1, processes=16, file_bytes=2**30)
    result, _, _ = task.run(["sleep", "60"], limits=limits, runtime="posix-shell")
    assert result.reason == "wall_time" and result.exit_code is None
    assert result.ended - result.started < 10
    assert "wall-time" in result.describe()


def test_a_busy_loop_past_the_cpu_time_is_stopped(task: Task) -> None:
    limits = SandboxLimits(ram_bytes=1 * 2**30, cpu_s=1, wall_s=30, processes=16, file_bytes=2**30)
    result, _, _ = task.python("while True: pass", limits=limits)
    assert result.reason == "cpu_time" and result.signal == signal.SIGXCPU


def test_a_file_past_the_size_limit_is_stopped(task: Task) -> None:
    limits = SandboxLimits(ram_bytes=1 * 2**30, cpu_s=30, wall_s=30, processes=16, file_bytes=2**20)
    result, _, err = task.python("open('/work/big', 'wb').write(open('/dev/zero', 'rb').read(4_000_000))",
                                 limits=limits)
    assert result.exit_code == 1 and "File too large" in err  # Python ignores SIGXFSZ and sees EFBIG
    assert (task.work / "big").stat().st_size <= 2**20
    # a program that does not ignore SIGXFSZ is stopped by it, writing its stdout (the capture) as well
    result, _, _ = task.run(["head", "-c", "4000000", "/dev/zero"], limits=limits, runtime="posix-shell")
    assert result.reason == "file_size" and result.signal == signal.SIGXFSZ
    assert (task.work / "big").stat().st_size <= 2**20


def test_cancel_stops_the_command(task: Task) -> None:
    result, _, _ = task.run(["sleep", "60"], runtime="posix-shell", cancel_after=0.5)
    assert result.reason == "cancelled"
    assert task_processes(task.uid) == []


def test_the_devices_a_program_expects_work_and_no_others_exist(task: Task) -> None:
    result, out, err = task.run(["sh", "-c", "head -c 4 /dev/zero | wc -c; head -c 4 /dev/urandom | wc -c; "
                                             "echo x > /dev/null; ls /dev"], runtime="posix-shell")
    assert result.ok, err
    assert out.split() == ["4", "4", "fd", "full", "null", "random", "stderr", "stdin", "stdout", "urandom", "zero"]


def test_a_command_that_does_not_exist_says_so(task: Task) -> None:
    result, _, err = task.run(["no-such-tool"], runtime="posix-shell")
    assert result.exit_code == 127 and "no-such-tool" in err


def test_killing_the_executor_with_sigkill_kills_the_task(task: Task, tmp_path: Path) -> None:
    """The process that ran the sandbox dies with -9: the task's processes die with it (nothing keeps running)."""
    script = tmp_path / "executor.py"
    script.write_text(textwrap.dedent(f"""
        import asyncio
        from pathlib import Path
        from genomebus.infra import sandbox
        from genomebus.infra.runtimes import RUNTIMES
        job = sandbox.SandboxRun(argv=["sleep", "300"], workdir=Path({str(task.work)!r}),
                                 runtime=RUNTIMES["posix-shell"], limits=sandbox.SandboxLimits(2**30, 30, 300, 16, 2**30),
                                 stdout=Path({str(task.dir / 'stdout')!r}), stderr=Path({str(task.dir / 'stderr')!r}),
                                 uid={task.uid})
        asyncio.run(sandbox.run(job))
    """))
    executor = subprocess.Popen([sys.executable, str(script)])
    deadline = time.monotonic() + 20
    while not task_processes(task.uid):
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.05)
    executor.send_signal(signal.SIGKILL)
    executor.wait()
    deadline = time.monotonic() + 10
    while task_processes(task.uid):
        assert time.monotonic() < deadline, "the task outlived its executor"
        time.sleep(0.05)
