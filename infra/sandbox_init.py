"""The sandbox's first process: run as root inside fresh namespaces, it builds the task's view of the
world, drops to an unprivileged user and runs the command; it stays as PID 1 to reap, and its exit ends
every process of the task.

Started by ``genomebus.infra.sandbox`` as ``unshare --net --mount --pid --ipc --uts --fork --kill-child
python -m genomebus.infra.sandbox_init SPEC_FD``. It reads the spec (JSON) from that descriptor and
writes one JSON line of status (exit code or signal) to the status descriptor before exiting. Nothing
here is imported by the rest of the node.

The view (a tmpfs root, pivoted into; read-only once built):
- ``/usr`` (and the ``/bin``, ``/lib``… links to it) and the runtime's own folders, read-only;
- ``/work``, the task's work directory, the only writable place besides a small ``/tmp``;
- ``/tool``, the tool version's files, read-only;
- ``/dev`` with null, zero, full, random and urandom only; ``/proc`` of the task's own PID namespace;
- ``/etc`` with passwd, group and hosts written for the task, and the dynamic loader's cache.
No network device is up (loopback included): the network namespace is empty.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys
from pathlib import Path
from typing import Any

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_NO_NEW_PRIVS = 38
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
DEVICES = ("null", "zero", "full", "random", "urandom")


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def mount(source: str | None, target: str | Path, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(_libc.mount(source.encode() if source else None, str(target).encode(),
                       fstype.encode() if fstype else None, flags, data.encode() if data else None),
           f"mount {source} on {target}")


def bind(source: str | Path, target: Path, *, writable: bool = False, device: bool = False) -> None:
    """Bind ``source`` at ``target`` (made to match: a file or a folder), then make it read-only unless asked."""
    source = Path(source)
    if source.is_dir():
        target.mkdir(parents=True, exist_ok=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()
    mount(str(source), target, None, MS_BIND | MS_REC)
    flags = MS_BIND | MS_REMOUNT | MS_NOSUID | (0 if device else MS_NODEV) | (0 if writable else MS_RDONLY)
    mount(None, target, None, flags)


def build_root(spec: dict[str, Any]) -> Path:
    root = Path(spec["root"])
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing mounted here propagates back to the node
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=8m,mode=755")
    for name in ("bin", "lib", "lib32", "lib64", "libx32", "sbin"):  # merged-/usr links, as the host has them
        host = Path("/") / name
        if host.is_symlink():
            (root / name).symlink_to(os.readlink(host))
        elif host.is_dir():
            bind(host, root / name)
    bind("/usr", root / "usr")
    for source, target in spec["ro_binds"]:
        bind(source, root / target.lstrip("/"))
    bind(spec["workdir"], root / "work", writable=True)
    if spec.get("tool_dir"):
        bind(spec["tool_dir"], root / "tool")
    (root / "tmp").mkdir()
    mount("tmpfs", root / "tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={spec['tmp_bytes']},mode=1777")
    dev = root / "dev"
    dev.mkdir()
    for name in DEVICES:
        bind(f"/dev/{name}", dev / name, writable=True, device=True)
    (dev / "fd").symlink_to("/proc/self/fd")
    for i, name in enumerate(("stdin", "stdout", "stderr")):
        (dev / name).symlink_to(f"/proc/self/fd/{i}")
    (root / "proc").mkdir()
    mount("proc", root / "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    etc = root / "etc"
    etc.mkdir()
    uid, gid = spec["uid"], spec["gid"]
    (etc / "passwd").write_text(f"root:x:0:0:root:/nonexistent:/usr/sbin/nologin\n"
                                f"task:x:{uid}:{gid}:task:/work:/bin/sh\n")
    (etc / "group").write_text(f"root:x:0:\ntask:x:{gid}:\n")
    (etc / "hosts").write_text("127.0.0.1 localhost\n")
    (etc / "hostname").write_text("sandbox\n")
    for name in ("ld.so.cache", "ld.so.conf", "localtime"):
        if Path("/etc", name).exists():
            bind(Path("/etc", name).resolve(), etc / name)
    old = root / ".old"
    old.mkdir()
    os.chdir(root)
    _check(_libc.syscall(SYS_PIVOT_ROOT[os.uname().machine], b".", b".old"), "pivot_root")
    os.chdir("/")
    _check(_libc.umount2(b"/.old", MNT_DETACH), "umount the old root")
    os.rmdir("/.old")
    mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)  # the root itself read-only
    return root


def run_command(spec: dict[str, Any], stdin_fd: int, stdout_fd: int, stderr_fd: int) -> int:
    """Fork the command as the task's user, with its limits; wait, reaping every orphan; its wait status."""
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(stdin_fd, 0)
            os.dup2(stdout_fd, 1)
            os.dup2(stderr_fd, 2)
            os.closerange(3, 65536)
            os.setsid()
            for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_DFL)  # Python ignores some; a program expects the defaults
            limits = spec["limits"]
            resource.setrlimit(resource.RLIMIT_AS, (limits["ram_bytes"], limits["ram_bytes"]))
            resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu_s"], limits["cpu_s"] + 1))
            resource.setrlimit(resource.RLIMIT_NPROC, (limits["processes"], limits["processes"]))
            resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_bytes"], limits["file_bytes"]))
            resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            os.setgroups([])
            os.setgid(spec["gid"])
            os.setuid(spec["uid"])  # all capabilities go with root
            _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")  # no set-uid way back
            os.chdir(spec["cwd"])
            os.execve(spec["argv"][0] if "/" in spec["argv"][0] else _which(spec["argv"][0], spec["env"]),
                      spec["argv"], spec["env"])
        except BaseException as exc:  # noqa: BLE001 - the task's stderr says why it could not start
            os.write(2, f"sandbox: cannot run {spec['argv'][0]}: {exc}\n".encode())
            os._exit(127)
    while True:  # PID 1: reap everything until the command itself has ended
        try:
            waited, status = os.wait()
        except ChildProcessError:
            return 127 << 8
        if waited == pid:
            return status


def _which(name: str, env: dict[str, str]) -> str:
    for folder in env.get("PATH", "/usr/bin:/bin").split(":"):
        candidate = os.path.join(folder, name)
        if os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(f"{name} is not on the task's PATH")


def main() -> None:
    spec_fd, status_fd = int(sys.argv[1]), int(sys.argv[2])
    with os.fdopen(spec_fd) as f:
        spec = json.load(f)
    status_file = os.fdopen(status_fd, "w")
    # the command's standard streams, opened before the view changes (the captures live outside it)
    stdin_fd = os.open(spec["stdin"] or "/dev/null", os.O_RDONLY)
    stdout_fd = os.open(spec["stdout"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    stderr_fd = os.open(spec["stderr"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        build_root(spec)
    except OSError as exc:
        status_file.write(json.dumps({"setup_error": str(exc)}) + "\n")
        status_file.close()
        sys.exit(125)
    status = run_command(spec, stdin_fd, stdout_fd, stderr_fd)
    if os.WIFSIGNALED(status):
        report = {"signal": os.WTERMSIG(status)}
    else:
        report = {"exit_code": os.WEXITSTATUS(status)}
    status_file.write(json.dumps(report) + "\n")
    status_file.close()
    sys.exit(0)  # leaving PID 1 ends every other process of the task


if __name__ == "__main__":
    main()
