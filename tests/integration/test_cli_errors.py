"""The real `genomebus` command as a user meets it: no node, a node whose servers are gone, a live node.

Without a node every command answers in one or two plain lines with its documented exit code, no
traceback and no unclosed-client warning. With the session's node, the read commands (`dataset
list/show`, `file show`) and `audit history` answer for every id a user is shown.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from genomebus.cli import ExitCode
from genomebus.infra.settings import Settings
from tests.data import DATA
from tests.integration.helpers import cli, new_dataset_id

pytestmark = pytest.mark.integration

ANY_DATASET = "GDI-FI-DATASET-001"
COMMANDS = {
    "register": ["dataset", "register", "--id", ANY_DATASET, "--title", "t", "--duo", "DUO:0000042"],
    "update": ["dataset", "update", "--id", ANY_DATASET, "--title", "t", "--duo", "DUO:0000042"],
    "release": ["dataset", "release", ANY_DATASET],
    "withdraw": ["dataset", "withdraw", ANY_DATASET, "--reason", "consent withdrawn"],
    "submit": ["submit", ANY_DATASET, str(DATA / "variants" / "spec-v4.3.vcf.gz")],
    "replay": ["replay"],
    "audit history": ["audit", "history", ANY_DATASET],
    "status": ["status"],
    "status --json": ["status", "--json"],
    "migrate": ["migrate"],
    "dataset list": ["dataset", "list"],
    "dataset show": ["dataset", "show", ANY_DATASET],
    "file show": ["file", "show", "GDI-FI-FILE-00000001"],
}
# Where no node runs: a data directory that does not exist, one that is empty, and one whose state names a
# live supervisor while every server is gone (the clients then really try to connect, and must clean up).
PLACES = ("missing", "empty", "servers gone")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def place(base: Path, kind: str) -> Path:
    data_dir = base / kind.replace(" ", "-")
    if kind == "missing":
        return data_dir
    data_dir.mkdir()
    if kind == "servers gone":
        port = closed_port()
        (data_dir / "stack.json").write_text(json.dumps({
            "status": "running", "supervisor_pid": os.getpid(), "gateway_url": f"http://127.0.0.1:{port}",
            "components": {
                "kafka": {"bootstrap_servers": f"127.0.0.1:{port}", "pid": os.getpid(), "kind": "server"},
                "postgres": {"dsn": f"postgresql://genomebus:pw@127.0.0.1:{port}/genomebus", "kind": "server"},
                "s3": {"url": f"http://127.0.0.1:{port}", "access_key_id": "k", "secret_access_key": "s"},
                "gateway": {"url": f"http://127.0.0.1:{port}", "kind": "gateway"},
            },
        }))
    return data_dir


def run_cli(data_dir: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    # Unclosed clients are reported as ResourceWarnings, which Python hides unless asked.
    env = {**os.environ, "GENOMEBUS_DATA_DIR": str(data_dir), "PYTHONWARNINGS": "always::ResourceWarning"}
    return subprocess.run([sys.executable, "-m", "genomebus", *args], capture_output=True, text=True, env=env,
                          timeout=120)


@pytest.fixture(scope="module")
def without_node(tmp_path_factory) -> dict[tuple[str, str], subprocess.CompletedProcess[str]]:
    """Every command in every place, run side by side (each is a separate process)."""
    base = tmp_path_factory.mktemp("no-node")
    dirs = {kind: place(base, kind) for kind in PLACES}
    jobs = [(kind, name) for kind in PLACES for name in COMMANDS]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = pool.map(lambda job: run_cli(dirs[job[0]], COMMANDS[job[1]]), jobs)
        return dict(zip(jobs, results, strict=True))


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize("kind", PLACES)
def test_without_a_node_every_command_says_so_in_a_line(without_node, kind, name):
    result = without_node[(kind, name)]
    said = result.stdout + result.stderr
    assert result.returncode == ExitCode.UNAVAILABLE, said
    assert "Traceback" not in said and "Unclosed" not in said and "ResourceWarning" not in said, said
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 2 and lines[-1].startswith("error: "), said
    assert any(f"`genomebus {hint} " in said for hint in ("up --data-dir", "status --data-dir", "logs")), said
    if kind != "servers gone":
        assert result.stdout == "", said


def test_up_and_schemas_export_refuse_a_regular_file(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for args in (["up", "--data-dir", str(a_file)], ["schemas", "export", str(a_file)]):
        result = run_cli(tmp_path, args)
        assert result.returncode == ExitCode.USAGE, result.stderr
        assert "Traceback" not in result.stderr and "FileExistsError" not in result.stderr
        assert result.stderr.startswith("error: ") and "is a file" in result.stderr


# -- a live node ------------------------------------------------------------------------------------------


def gateway(settings: Settings) -> httpx.Client:
    return httpx.Client(base_url=settings.gateway_url, timeout=10)


@pytest.fixture(scope="module")
def archived(stack: Settings) -> dict[str, str]:
    """A dataset registered and a file submitted through the CLI, waited for until it is archived."""
    dataset_id = new_dataset_id()
    registered = cli(stack, "dataset", "register", "--id", dataset_id, "--title", "CLI read commands",
                     "--duo", "DUO:0000042")
    assert registered.returncode == 0, registered.stderr
    submitted = cli(stack, "submit", dataset_id, str(DATA / "variants" / "spec-v4.3.vcf.gz"))
    assert submitted.returncode == 0, submitted.stderr
    deadline = time.monotonic() + 90
    with gateway(stack) as http:
        while True:
            files = http.get(f"/datasets/{dataset_id}").json()["files"]
            if files and files[0]["state"] in ("archived", "qc_failed"):
                break
            assert time.monotonic() < deadline, f"not archived in 90 s: {files}"
            time.sleep(0.2)
    assert files[0]["state"] == "archived", files
    return {"dataset_id": dataset_id, "file_id": files[0]["id"], "accession": files[0]["accession"],
            "filename": files[0]["filename"]}


def test_dataset_list_shows_the_dataset_whole(stack, archived):
    result = cli(stack, "dataset", "list", env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    assert archived["dataset_id"] in result.stdout and "CLI read commands" in result.stdout
    assert "…" not in result.stdout
    released = cli(stack, "dataset", "list", "--state", "released", "--json")
    assert released.returncode == 0, released.stderr
    assert archived["dataset_id"] not in {d["id"] for d in json.loads(released.stdout)}


def test_dataset_show_lists_its_files_with_state_and_accession(stack, archived):
    result = cli(stack, "dataset", "show", archived["dataset_id"], env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    for whole in (archived["file_id"], archived["accession"], archived["filename"], "archived",
                  "dataset.registered", "title: CLI read commands"):
        assert whole in result.stdout, whole
    assert "…" not in result.stdout


@pytest.mark.parametrize("by", ["file_id", "accession"])
def test_file_show_by_id_and_by_accession(stack, archived, by):
    result = cli(stack, "file", "show", archived[by], env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    for whole in (f"id: {archived['file_id']}", f"accession: {archived['accession']}", "sha-256: ", "md5: ",
                  "qc records: ", "file.qc_passed", "file.archived"):
        assert whole in result.stdout, whole


def test_unknown_dataset_and_file_are_not_found(stack):
    for args in (["dataset", "show", "GDI-FI-DATASET-000000000"], ["file", "show", "GDI-FI-FILE-999999999"]):
        result = cli(stack, *args)
        assert result.returncode == ExitCode.NOT_FOUND, result.stderr
        assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1


def test_audit_history_of_an_accession_is_the_files_history(stack, archived):
    by_accession = cli(stack, "audit", "history", archived["accession"], "--json")
    assert by_accession.returncode == 0, by_accession.stderr
    events = json.loads(by_accession.stdout)
    assert [e["type"] for e in events] == ["file.uploaded", "file.qc_passed", "file.archived"]
    by_id = cli(stack, "audit", "history", archived["file_id"], "--json")
    assert json.loads(by_id.stdout) == events
    table = cli(stack, "audit", "history", archived["accession"], env={"COLUMNS": "80"})
    assert table.returncode == 0, table.stderr
    assert "file.qc_passed" in table.stdout and archived["file_id"] in table.stdout and "…" not in table.stdout


def test_audit_history_of_a_command_is_the_command_and_its_outcome(stack, archived):
    events = json.loads(cli(stack, "audit", "history", archived["dataset_id"], "--json").stdout)
    command = next(e for e in events if e["type"] == "dataset.register_requested")
    result = cli(stack, "audit", "history", command["id"], "--json")
    assert result.returncode == 0, result.stderr
    trail = json.loads(result.stdout)
    assert [e["type"] for e in trail] == ["dataset.register_requested", "dataset.registered"]
    assert trail[1]["causation_id"] == command["id"]


def test_logs_of_one_component(stack):
    result = cli(stack, "logs", "supervisor", "-n", "3")
    assert result.returncode == 0, result.stderr
    assert 1 <= len(result.stdout.splitlines()) <= 3
