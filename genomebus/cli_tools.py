"""`genomebus tool`: a steward registers, approves and withdraws tool versions (TRS), and lists them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from genomebus.cli import (
    DEFAULT_DATA_DIR,
    ActorOption,
    DataDir,
    ExitCode,
    _decided,
    _who,
    add_row,
    fail,
    out,
    say,
    settings_for,
    table,
)

tool_app = typer.Typer(help="Tools and workflows (GA4GH TRS 2): register a version, approve it for execution "
                            "here, withdraw it, list them. Stewards only.", no_args_is_help=True)

ToolIdArg = Annotated[str, typer.Argument(help="The tool's id, e.g. variant-summary")]
VersionArg = Annotated[str, typer.Argument(help="The version's id, e.g. 1.0.0")]


@tool_app.command("register")
def tool_register(
    folder: Annotated[Path, typer.Argument(help="A tool folder: tool.json beside the CWL descriptor and files "
                                                "(see producers/examples/tools)")],
    actor: ActorOption = None, data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Register a tool with one version (or a new version of a known tool). Not runnable until approved."""
    from genomebus.producers.tools import InvalidTool, load_tool, register_tool

    try:
        command = load_tool(folder)
    except InvalidTool as exc:
        raise fail(f"{exc}; nothing was sent", ExitCode.USAGE) from exc
    settings = settings_for(data_dir)
    what = f"register {command.tool_id} {command.version.version_id}"
    outcome = _decided(settings, lambda: register_tool(settings, command, actor=_who(actor)), what)
    say(f"{outcome.outcome_type} {command.tool_id} {command.version.version_id}; approve it with `genomebus tool "
        f"approve {command.tool_id} {command.version.version_id}`")


@tool_app.command("approve")
def tool_approve(tool_id: ToolIdArg, version: VersionArg, actor: ActorOption = None,
                 data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Approve a registered version for execution at this node: tasks may then name its TRS URL."""
    from genomebus.infra.readmodels.tools import trs_url
    from genomebus.producers.tools import approve_tool

    settings = settings_for(data_dir)
    outcome = _decided(settings, lambda: approve_tool(settings, tool_id, version, actor=_who(actor)),
                       f"approve {tool_id} {version}")
    say(f"{outcome.outcome_type} {tool_id} {version}: tasks name it as {trs_url(settings, tool_id, version)}")


@tool_app.command("withdraw")
def tool_withdraw(tool_id: ToolIdArg, version: VersionArg,
                  reason: Annotated[str, typer.Option(help="Why, in words (recorded on the log)")],
                  actor: ActorOption = None, data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Withdraw a version: it stays readable through TRS and is never run again."""
    from genomebus.producers.tools import withdraw_tool

    settings = settings_for(data_dir)
    outcome = _decided(settings, lambda: withdraw_tool(settings, tool_id, version, reason=reason,
                                                       actor=_who(actor)), f"withdraw {tool_id} {version}")
    say(f"{outcome.outcome_type} {tool_id} {version}")


@tool_app.command("list")
def tool_list(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Every tool and version registered here, with its state and runtime (from the gateway's TRS)."""
    import httpx

    settings = settings_for(data_dir)
    try:
        response = httpx.get(f"{settings.gateway_url}/ga4gh/trs/v2/tools", timeout=10)
    except httpx.TransportError as exc:
        raise fail(f"the gateway at {settings.gateway_url} does not answer ({type(exc).__name__}); start the node "
                   "with `genomebus up`", ExitCode.UNAVAILABLE) from exc
    if response.status_code != 200:
        raise fail(f"the gateway answered {response.status_code}; see `genomebus status`", ExitCode.UNAVAILABLE)
    rows = table(None, "tool", "version", "approved", "runtime", "TRS URL")
    for tool in response.json():
        for version in tool["versions"]:
            runtime = (version.get("images") or [{}])[0].get("image_name", "").removeprefix("genomebus-runtime:")
            add_row(rows, tool["id"], version["id"], "yes" if version["is_production"] else "no", runtime,
                    version["url"])
    out().print(rows)
