"""``genomebus airlock``: output checkers review finished tasks' outputs; researchers follow their own.

Through the gateway with a bearer token (``--token`` or ``GENOMEBUS_TOKEN``), like ``genomebus access``.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import typer

from genomebus.cli import DEFAULT_DATA_DIR, DataDir, ExitCode, add_row, fail, out, say, table
from genomebus.cli_access import JsonOpt, Token, _access

airlock_app = typer.Typer(help="The output airlock: list output requests, show one with its automatic checks, "
                               "approve or reject (output checkers; two distinct checkers release an output, "
                               "never its owner).", no_args_is_help=True)

TaskArg = Annotated[str, typer.Argument(help="The task whose outputs are asked for (task-…)")]
_TASK = re.compile(r"^task-[0-9a-f]{32}$")


def _processing() -> Any:
    from genomebus.producers.processing import ProcessingClient

    return ProcessingClient


def _task_id(text: str) -> str:
    if not _TASK.match(text):
        raise fail(f"{text!r} is not a task id (task- and 32 hex digits); `genomebus airlock list` shows them",
                   ExitCode.USAGE)
    return text


@airlock_app.command("list")
def airlock_list(token: Token, as_json: JsonOpt = False,
                 state: Annotated[str | None, typer.Option(help="checking, review, released or rejected")] = None,
                 limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many")] = 100,
                 data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Output requests, oldest first: all for a checker, your own otherwise."""
    if state not in (None, "checking", "review", "released", "rejected"):
        raise fail(f"--state {state}: use checking, review, released or rejected", ExitCode.USAGE)
    page = _access(data_dir, token, lambda c: c.output_requests(state=state, limit=limit), "list output requests",
                   _processing())
    if as_json:
        say(json.dumps(page, indent=2))
        return
    t = table(f"{page['total']} output request(s)", "task", "owner", "state", "checks", "approvals", "files")
    for r in page["requests"]:
        checks = r["checks"]["verdict"] if r.get("checks") else "—"
        add_row(t, r["task_id"], r["owner"], r["state"], checks,
                f"{len(r['approvals'])}/{r['approvals_required']}", ", ".join(o["path"] for o in r["outputs"]))
    out().print(t)


@airlock_app.command("show")
def airlock_show(token: Token, task: TaskArg, as_json: JsonOpt = False, data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """One request: each file's automatic checks, the approvals, the rejection or the released DRS ids."""
    task = _task_id(task)
    request = _access(data_dir, token, lambda c: c.output_request(task), f"show {task}", _processing())
    if as_json:
        say(json.dumps(request, indent=2))
        return
    show_request(request)


def show_request(request: dict[str, Any]) -> None:
    say(f"{request['task_id']} of {request['owner']}: {request['state']} "
        f"({len(request['approvals'])}/{request['approvals_required']} approvals)")
    checks = table("automatic checks", "file", "kind", "verdict", "rule", "finding")
    for f in (request.get("checks") or {}).get("files", []):
        for finding in f["findings"] or [{"rule": "—", "message": "no rule applies"}]:
            add_row(checks, f["path"], f["kind"], f["verdict"], finding["rule"], finding["message"])
    out().print(checks)
    for a in request["approvals"]:
        say(f"approved by {a['by']} at {a['at']}" + (f": {a['note']}" if a.get("note") else ""))
    if request.get("rejection"):
        say(f"rejected by {request['rejection']['by']}: {request['rejection']['reason']}")
    for r in request.get("released") or ():
        say(f"released {r['path']} as {r['object_id']} ({r['size']} bytes); `genomebus fetch {r['object_id']}`")


@airlock_app.command("approve")
def airlock_approve(token: Token, task: TaskArg,
                    note: Annotated[str | None, typer.Option(help="What you looked at (recorded)")] = None,
                    data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Approve a request under review (an output checker who did not run the task)."""
    task = _task_id(task)
    request = _access(data_dir, token, lambda c: c.approve_output(task, note), f"approve {task}", _processing())
    say(f"{task}: {request['state']} ({len(request['approvals'])}/{request['approvals_required']} approvals)")


@airlock_app.command("reject")
def airlock_reject(token: Token, task: TaskArg,
                   reason: Annotated[str, typer.Option("--reason", help="Why (the researcher sees it)")],
                   data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Reject a request under review: it ends, nothing is released."""
    task = _task_id(task)
    request = _access(data_dir, token, lambda c: c.reject_output(task, reason), f"reject {task}", _processing())
    say(f"{task}: {request['state']}")
