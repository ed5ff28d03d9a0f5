"""The local stack's pure parts: where ports are picked, where each server writes, what the demo prints."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from genomebus import demo
from genomebus.infra import stack
from genomebus.infra.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def in_ephemeral_range(port: int) -> bool:
    low, high = stack.ephemeral_range()
    return low <= port <= high


# -- ports -------------------------------------------------------------------------------------------


def test_a_port_left_in_time_wait_by_a_client_is_not_free() -> None:
    """Why a port inside the ephemeral range is lost between runs: the node's own clients take it."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
        port = client.getsockname()[1]
        client.close()  # the client closes first: its local port stays in TIME_WAIT for a minute
        accepted.close()
    assert in_ephemeral_range(port)
    assert not stack.port_is_free(port)


@pytest.mark.parametrize("grpc", [False, True])
def test_free_ports_are_never_in_the_ephemeral_range(grpc: bool) -> None:
    taken: set[int] = set()
    ports = [stack.free_port(with_grpc_offset=grpc, taken=taken) for _ in range(60)]
    assert len(set(ports)) == len(ports)
    for port in ports:
        group = [port, port + stack.GRPC_OFFSET] if grpc else [port]
        assert all(stack.PORT_FLOOR <= p <= 65535 and not in_ephemeral_range(p) for p in group), group


def test_choose_ports_reuses_the_recorded_ports_and_picks_new_ones_outside_the_ephemeral_range(
        tmp_path: Path) -> None:
    supervisor = stack.Supervisor(Settings(data_dir=tmp_path, node_id="FI"), [])
    first = supervisor.choose_ports({})
    assert set(first) == {"s3", "master", "volume", "filer", "admin", "postgres", "kafka", "gateway"}
    assert not any(in_ephemeral_range(p) for p in first.values()), first
    assert supervisor.choose_ports({"ports": first}) == first

    with socket.socket() as busy:  # a recorded port now held by someone else: only that one moves
        busy.bind(("127.0.0.1", first["gateway"]))
        busy.listen()
        moved = supervisor.choose_ports({"ports": first})
    assert moved["gateway"] != first["gateway"]
    assert {k: v for k, v in moved.items() if k != "gateway"} == {k: v for k, v in first.items() if k != "gateway"}


def test_port_candidates_follow_the_kernels_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stack, "ephemeral_range", lambda: (32768, 60999))
    assert stack.port_candidates() == [range(15000, 32768), range(61000, 65536)]
    assert stack.port_candidates(with_grpc_offset=True) == [range(15000, 22768)]


# -- every file of the node under its data directory ----------------------------------------------


def test_seaweedfs_logs_and_temporary_files_go_under_the_data_directory(tmp_path: Path) -> None:
    supervisor = stack.Supervisor(Settings(data_dir=tmp_path, node_id="FI"), [])
    ports = supervisor.choose_ports({})
    creds = {"s3_access_key_id": "k", "s3_secret_access_key": "s"}
    weed = supervisor.seaweedfs(ports, creds)
    assert weed.argv.index(f"-logdir={tmp_path / 'logs' / 'seaweedfs'}") < weed.argv.index("mini")
    assert weed.env["TMPDIR"] == str(tmp_path / "tmp")
    for child in (supervisor.tansu(ports, creds), supervisor.genomebus_child("qc", "worker", ["worker", "qc"])):
        assert child.env["TMPDIR"] == str(tmp_path / "tmp")
    # weed mini puts its gRPC sockets in /tmp whatever it is told; the supervisor removes them
    assert weed.leftovers == stack.seaweedfs_grpc_sockets(ports)
    assert Path(f"/tmp/seaweedfs-master-grpc-{ports['master'] + 10000}.sock") in weed.leftovers
    supervisor.prepare_dirs()
    assert (tmp_path / "tmp").is_dir() and (tmp_path / "logs" / "seaweedfs").is_dir()


def test_weed_accepts_the_logdir_option(tmp_path: Path) -> None:
    result = subprocess.run([str(stack.weed_binary()), f"-logdir={tmp_path}", "version"], capture_output=True,
                            text=True, timeout=30, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "flag provided but not defined" not in result.stderr


def test_a_stopped_child_leaves_nothing_behind(tmp_path: Path) -> None:
    leftover = tmp_path / "sock"
    child = stack.Child("sleeper", "server", [sys.executable, "-c", "import time; time.sleep(30)"],
                        leftovers=[leftover])
    child.start(tmp_path)
    leftover.write_text("")
    child.stop(timeout=5)
    assert not leftover.exists()


# -- the demo's output -------------------------------------------------------------------------------


def test_the_demos_hint_names_a_genomebus_that_works_from_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    command = demo.genomebus_command()
    script = Path(sys.executable).parent / "genomebus"
    if script.is_relative_to(REPO):
        assert command == script.relative_to(REPO).as_posix()  # e.g. .venv/bin/genomebus
    found = REPO / command if not command.startswith("/") else Path(command)  # as the shell finds it from here
    assert found.is_file() and os.access(found, os.X_OK), command
    assert found.read_text().splitlines()[0] == f"#!{sys.executable}"  # this very installation
    hint = demo.hint(Settings(data_dir=Path(".genomebus")), "status")
    assert hint == f"{command} status --data-dir .genomebus"


def test_the_demos_hint_is_absolute_outside_the_checkout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    command = demo.genomebus_command()
    assert command.startswith("/"), command


def test_the_demos_output_is_not_cut_at_80_columns_when_piped() -> None:
    piped = Console(file=io.StringIO(), width=80, force_terminal=False)
    wide = demo.readable_console(piped)
    row = {"filename": "htsnexus_test_NA12878.bam", "alias": "htsnexus_test_NA12878", "format": "BAM",
           "state": "archived", "accession": "GDI-FI-FILE-187784540206414218",
           "qc_metrics": {"reads": 12345, "mapped_pct": 99.5}, "encrypted_size": 2_500_000}
    wide.print(demo._files_table([row]))
    text = wide.file.getvalue()  # type: ignore[attr-defined]
    assert "…" not in text
    assert "GDI-FI-FILE-187784540206414218" in text and "htsnexus_test_NA12878" in text


def test_stopping_a_node_stops_the_nodes_inside_its_data_directory(tmp_path: Path) -> None:
    """The demo's second node lives in ``<data_dir>/peers/SE``: `genomebus down` of the first stops it too."""
    node, inside = tmp_path / "node", tmp_path / "node" / stack.PEERS_DIR / "SE"
    inside.mkdir(parents=True)
    supervisor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", str(inside)])
    stack.write_state(inside, {"status": "running", "supervisor_pid": supervisor.pid, "components": {}})
    try:
        assert stack.stop_stack(node)  # the node itself never ran: what ran was inside it
        assert not stack.pid_alive(supervisor.pid)
        assert not stack.stop_stack(node)
    finally:
        supervisor.kill()
