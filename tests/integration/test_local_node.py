"""A new user's local node: same ports after down/up, nothing written outside the data directory, and
the demo run twice from a fresh data directory (the second run recognises the work already done)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from genomebus.infra.settings import Settings
from genomebus.infra.stack import ephemeral_range, read_state, start_detached, stop_stack
from tests.conftest import make_node_dir

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def node() -> Iterator[tuple[Settings, Path]]:
    """One extra node (not the session's): started and stopped by the tests below, stopped in the end."""
    base = make_node_dir("genomebus-it-local-")
    settings = Settings(data_dir=base / "node", node_id="FI")
    try:
        yield settings, base
    finally:
        stop_stack(settings.data_dir)
        shutil.rmtree(base, ignore_errors=True)


def occupy_like_a_busy_machine(ports: list[int]) -> None:
    """Leave each port that the kernel may hand to outgoing connections in TIME_WAIT, as the node's own
    clients do during a session (that is how the gateway moved from 56598 to 22699)."""
    low, high = ephemeral_range()
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        for port in ports:
            if not low <= port <= high:
                continue  # outside the range no client ever gets this port
            client = socket.socket()
            client.bind(("127.0.0.1", port))
            client.connect(server.getsockname())
            accepted, _ = server.accept()
            client.close()
            accepted.close()


def weed_files_in_tmp(pid: int, grpc_ports: list[int]) -> list[str]:
    """/tmp entries of this node's SeaweedFS: glog files end with its PID, gRPC sockets name its ports."""
    found = []
    for entry in os.listdir("/tmp"):
        if entry.startswith("weed.") and entry.endswith(f".{pid}"):
            found.append(entry)
        if entry.startswith("seaweedfs-") and any(entry.endswith(f"-grpc-{p}.sock") for p in grpc_ports):
            found.append(entry)
    return found


def test_ports_survive_down_and_up_and_nothing_is_written_outside_the_data_dir(
        node: tuple[Settings, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    settings, base = node
    tmpdir = base / "TMPDIR"
    tmpdir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))  # what the user's shell has: children must not write there

    start_detached(settings)
    first = read_state(settings.data_dir)
    weed_pid = first["components"]["seaweedfs"]["pid"]
    grpc = [first["ports"][n] + 10000 for n in ("master", "volume", "filer", "s3", "admin")]
    assert stop_stack(settings.data_dir)
    stopped = read_state(settings.data_dir)
    assert stopped["status"] == "stopped" and stopped["ports"] == first["ports"], "down loses the ports"

    assert not sorted(os.listdir(tmpdir)), "a server of the node wrote into $TMPDIR"
    assert not weed_files_in_tmp(weed_pid, grpc), "SeaweedFS left files in /tmp"
    assert list((settings.data_dir / "logs" / "seaweedfs").glob("weed.*")), "SeaweedFS's own logs are not kept"

    occupy_like_a_busy_machine(list(first["ports"].values()))
    start_detached(settings)
    second = read_state(settings.data_dir)
    assert second["ports"] == first["ports"]
    assert second["gateway_url"] == first["gateway_url"]
    assert not sorted(os.listdir(tmpdir))


# -- the demo, twice ----------------------------------------------------------------------------------


def run_demo(settings: Settings) -> subprocess.CompletedProcess[str]:
    """`make demo` as a user runs it: from the checkout, output piped (not a terminal), no COLUMNS."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TMPDIR")}
    env["GENOMEBUS_DATA_DIR"] = str(settings.data_dir)
    return subprocess.run([str(Path(sys.executable).parent / "genomebus"), "demo"], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=600)


@pytest.fixture(scope="module")
def demo_runs(node: tuple[Settings, Path]) -> tuple[subprocess.CompletedProcess[str], ...]:
    settings, _ = node
    first = run_demo(settings)
    assert first.returncode == 0, first.stdout + first.stderr
    second = run_demo(settings)
    print("--- first run ---\n" + first.stdout + "\n--- second run ---\n" + second.stdout)
    return first, second


def history(settings: Settings, subject: str) -> list[dict]:
    result = subprocess.run([sys.executable, "-m", "genomebus", "audit", "history", subject, "--json"],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "GENOMEBUS_DATA_DIR": str(settings.data_dir)})
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_a_second_demo_recognises_the_work_already_done(node, demo_runs) -> None:
    settings, _ = node
    first, second = demo_runs
    assert second.returncode == 0, second.stdout + second.stderr
    out = second.stdout
    assert "already registered by an earlier run" in out
    assert "GDI-FI-DATASET-001 is already released" in out
    assert "so nothing is submitted or uploaded again" in out
    assert "already refused by QC in an earlier run" in out
    assert "not released" not in out and "refused: file_not_archived" not in out

    files = httpx_get(settings, "/datasets/GDI-FI-DATASET-001")["files"]
    bam = next(f for f in files if f["filename"].endswith(".bam"))
    types = [e["type"] for e in history(settings, bam["id"])]
    assert types.count("file.uploaded") == 1, types
    assert types.count("file.archived") == 1, types

    qc_files = httpx_get(settings, "/datasets/GDI-FI-DATASET-002")["files"]
    assert [f["state"] for f in qc_files] == ["qc_failed"]
    assert [e["type"] for e in history(settings, qc_files[0]["id"])].count("file.uploaded") == 1


def test_the_demos_hints_work_as_written_where_make_demo_was_run(node, demo_runs) -> None:
    settings, _ = node
    for run in demo_runs:
        lines = [line.strip() for line in run.stdout.splitlines() if "--data-dir" in line and "#" in line]
        assert len(lines) == 2, run.stdout
        for line in lines:
            command = line.split("#")[0].strip()
            assert not command.startswith("genomebus "), "genomebus is not on the PATH after `make demo`"
            if " status " in command:
                result = subprocess.run(shlex.split(command), cwd=REPO, capture_output=True, text=True, timeout=120,
                                        env={**os.environ, "PATH": "/usr/bin:/bin"})
                assert result.returncode == 0, result.stdout + result.stderr


def test_the_demos_output_is_readable_when_piped(demo_runs) -> None:
    for run in demo_runs:
        assert "…" not in run.stdout, run.stdout
        assert "\x1b[" not in run.stdout
        assert "GDI-FI-FILE-" in run.stdout  # accessions are whole
    for run in demo_runs:  # the BAM's row is on one line, name and accession whole
        rows = [line for line in run.stdout.splitlines() if "htsnexus_test_NA12878 " in line and "archived" in line]
        assert rows and "GDI-FI-FILE-" in rows[0], run.stdout


def httpx_get(settings: Settings, path: str) -> dict:
    import httpx

    deadline = time.monotonic() + 30
    while True:
        response = httpx.get(f"{read_state(settings.data_dir)['gateway_url']}{path}", timeout=10)
        if response.status_code == 200 or time.monotonic() > deadline:
            assert response.status_code == 200, response.text
            return response.json()
        time.sleep(0.5)


def test_the_demos_discovery_chapter_answers_by_who_asks_and_across_two_nodes(node, demo_runs) -> None:
    settings, _ = node
    for run in demo_runs:
        out = run.stdout
        assert "anonymous → boolean: found" in out, out
        assert "(rounded up)" in out and "carol → count" in out, out
        assert "GDI-FI-DATASET-001 (record): found" in out and "read audited: event" in out, out
        assert "GDI-SE-DATASET-001 at SE (boolean): found" in out, out
    assert "SE: it was already running" in demo_runs[1].stdout
    peers = json.loads((settings.data_dir / "beacon-peers.json").read_text())
    assert [p["name"] for p in peers] == ["SE"], "a second run adds SE to the peers file twice"


def test_the_demos_processing_chapter_runs_checks_releases_and_blocks(node, demo_runs) -> None:
    for run in demo_runs:
        out = run.stdout
        assert "variant-summary: approved" in out, out
        assert "request review" in out and "maria-checker approves: released (2/2)" in out, out
        assert "refused, 403" in out and "you ran this task" in out, out
        assert "sha256 matches" in out and "52184" in out, out  # HG02102's SNVs, as pysam counts them
        assert "Network is unreachable" in out and "EXECUTOR_ERROR" in out, out
        assert "request rejected: the automatic checks stop it" in out and "vcf_genotypes" in out, out


def test_the_demos_journey_is_on_the_log_in_order_with_its_actors(node, demo_runs) -> None:
    settings, _ = node
    for run in demo_runs:
        assert "every step of the story is on the log, in order: yes" in run.stdout, run.stdout
    trace = re.search(r"as one trace \(([0-9a-f]{32})\)", demo_runs[1].stdout).group(1)
    researcher = re.search(r"The journey of one researcher, (dana-[0-9a-f]+),", demo_runs[1].stdout).group(1)
    result = subprocess.run([str(REPO / ".venv" / "bin" / "genomebus"), "audit", "journey", trace, "--json",
                             "--data-dir", str(settings.data_dir)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    events = json.loads(result.stdout)
    steps = [e["step"] for e in events]
    order = ["discover", "apply", "approve", "run", "check", "release", "download"]
    assert [s for s in dict.fromkeys(steps) if s in order] == order, steps
    by_step = {s: {e["who"] for e in events if e["step"] == s} for s in order}
    assert by_step["discover"] == {f"gateway:enforcement ({researcher})"}
    assert researcher in by_step["apply"] and by_step["approve"] == {"dac-chair-1"}
    assert {researcher, "worker:executor"} <= by_step["run"]
    assert {"olli-checker", "maria-checker", "worker:airlock"} <= by_step["check"]
    assert by_step["release"] == {"worker:airlock"}
    assert by_step["download"] == {f"gateway:enforcement ({researcher})"}
    times = [e["time"] for e in events]
    assert times == sorted(times)
