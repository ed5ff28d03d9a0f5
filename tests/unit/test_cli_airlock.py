"""`genomebus airlock` against a fake gateway: tables for lists, one plain line per error."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from genomebus.cli import ExitCode, app
from tests.unit.test_cli import assert_plain_error, running_node  # noqa: F401 - a fixture

TASK = "task-" + "b" * 32
REQUEST = {"task_id": TASK, "owner": "alice", "state": "review", "approvals_required": 2,
           "outputs": [{"path": "/work/out/t.tsv", "name": "t.tsv", "size": 3, "sha256": "0" * 64}],
           "checks": {"verdict": "review", "files": [{"path": "/work/out/t.tsv", "kind": "table", "verdict": "flag",
                                                      "findings": [{"rule": "zeros", "verdict": "flag",
                                                                    "message": "1 zero count(s)", "cells": []}]}]},
           "approvals": [], "rejection": None, "released": [], "created_at": "2026-12-06T10:00:00Z",
           "updated_at": "2026-12-06T10:00:00Z"}


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GENOMEBUS_TOKEN", raising=False)
    return CliRunner()


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/airlock/requests":
            return httpx.Response(200, json={"requests": [REQUEST], "total": 1})
        if request.url.path.endswith("/approve"):
            return httpx.Response(403, json={"type": "https://genomebus.dev/problems/own-output", "title": "Forbidden",
                                             "status": 403, "detail": "you ran this task: someone else must check",
                                             "instance": request.url.path,
                                             "reasons": [{"code": "own_output", "message": "you ran this task"}]})
        if request.url.path.endswith("/reject"):
            return httpx.Response(200, json={**REQUEST, "state": "rejected"})
        return httpx.Response(200, json=REQUEST)

    real = httpx.AsyncClient
    monkeypatch.setattr(httpx, "AsyncClient", lambda **kw: real(transport=httpx.MockTransport(answer), **kw))
    return seen


def airlock(runner: CliRunner, node: Path, *args: str):
    return runner.invoke(app, ["airlock", *args, "--data-dir", str(node), "--token", "t0ken"])


def test_list_and_show_print_tables_and_json(runner, running_node, gateway) -> None:
    listed = airlock(runner, running_node, "list", "--state", "review")
    assert listed.exit_code == 0 and TASK in listed.stdout and "1/2" not in listed.stdout and "0/2" in listed.stdout
    assert gateway[-1].url.params["state"] == "review"
    assert gateway[-1].headers["authorization"] == "Bearer t0ken"
    shown = airlock(runner, running_node, "show", TASK)
    assert shown.exit_code == 0 and "zeros" in shown.stdout and "review" in shown.stdout
    as_json = airlock(runner, running_node, "show", TASK, "--json")
    assert json.loads(as_json.stdout)["task_id"] == TASK


def test_a_refusal_is_one_plain_line_with_its_reason(runner, running_node, gateway) -> None:
    result = airlock(runner, running_node, "approve", TASK)
    assert result.exit_code == ExitCode.REFUSED
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "own_output" in result.stderr  # the reasons, as a table above the line
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: approve {TASK}: not allowed (you ran this task") and "Traceback" not in result.output


def test_reject_sends_the_reason(runner, running_node, gateway) -> None:
    result = airlock(runner, running_node, "reject", TASK, "--reason", "a rare class")
    assert result.exit_code == 0 and "rejected" in result.stdout
    assert json.loads(gateway[-1].content) == {"reason": "a rare class"}


def test_bad_arguments_are_refused_before_anything_is_sent(runner, running_node, gateway) -> None:
    for args in (["show", "nope"], ["list", "--state", "maybe"]):
        assert_plain_error(airlock(runner, running_node, *args), ExitCode.USAGE)
    assert gateway == []
