"""Tools: a steward registers, approves and withdraws tool versions (commands on
``genomebus.processing.commands``, decided by the tool registry).

A tool is a folder: ``tool.json`` (id, name, description, organization, toolclass, version,
version_name, runtime, authors, aliases, primary_descriptor) beside its files. Every file of the folder
is part of the version: the primary descriptor (CWL), ``*.cwl`` as secondary descriptors, ``test*.json``
as test parameter files, ``Dockerfile``/``*.def`` as container files, anything else as OTHER.
``producers/examples/tools/`` has the demo's tools.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from genomebus.infra.settings import Settings
from genomebus.producers.commands import CommandOutcome, send_command
from genomebus.schemas.access import AsRoles
from genomebus.schemas.tools import (
    MAX_FILE_BYTES,
    ToolApproveRequested,
    ToolFile,
    ToolRegisterRequested,
    ToolWithdrawRequested,
)

EXAMPLES = Path(__file__).parent / "examples" / "tools"
STEWARD = AsRoles(steward=True)
"""A steward's client: the Kafka ACL lets only node staff's clients write tool commands."""


class InvalidTool(ValueError):
    """The tool folder cannot become a command: the message says what to fix."""


def _file_type(path: str, primary: str) -> str:
    name = Path(path).name
    if path == primary:
        return "PRIMARY_DESCRIPTOR"
    if name.endswith(".cwl"):
        return "SECONDARY_DESCRIPTOR"
    if name.startswith("test") and name.endswith((".json", ".yaml", ".yml")):
        return "TEST_FILE"
    if name == "Dockerfile" or name.endswith(".def"):
        return "CONTAINERFILE"
    return "OTHER"


def load_tool(folder: Path) -> ToolRegisterRequested:
    """The register command for a tool folder; ``InvalidTool`` says what is wrong, nothing is sent."""
    manifest_path = folder / "tool.json"
    try:
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
    except FileNotFoundError:
        raise InvalidTool(f"{folder} has no tool.json (see producers/examples/tools/variant-summary)") from None
    except ValueError as exc:
        raise InvalidTool(f"{manifest_path} is not JSON: {exc}") from None
    primary = manifest.get("primary_descriptor")
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "tool.json"
                       and "__pycache__" not in p.parts):
        relative = path.relative_to(folder).as_posix()
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InvalidTool(f"{relative} is larger than {MAX_FILE_BYTES} bytes; a tool's files are scripts and "
                              "descriptors, not data")
        try:
            content = path.read_text()
        except UnicodeDecodeError:
            raise InvalidTool(f"{relative} is not text; a tool's files are scripts and descriptors") from None
        files.append(ToolFile.of(relative, _file_type(relative, primary), content))  # type: ignore[arg-type]
    if primary not in {f.path for f in files}:
        raise InvalidTool(f"tool.json names primary_descriptor {primary!r}, which is not a file of {folder}")
    try:
        return ToolRegisterRequested(
            tool_id=manifest.get("id"), name=manifest.get("name"), description=manifest.get("description", ""),
            organization=manifest.get("organization"), toolclass=manifest.get("toolclass", "CommandLineTool"),
            aliases=tuple(manifest.get("aliases", ())), as_roles=STEWARD,
            version={"version_id": manifest.get("version"), "name": manifest.get("version_name") or
                     f"{manifest.get('id')} {manifest.get('version')}", "runtime": manifest.get("runtime"),
                     "authors": tuple(manifest.get("authors", ())), "files": tuple(files)})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidTool(f"{manifest_path}: {where}: {first['msg']}") from None


async def register_tool(settings: Settings, command: ToolRegisterRequested, *, actor: str,
                        timeout: float | None = None) -> CommandOutcome:
    return await send_command(settings, command, actor=actor, timeout=timeout)


async def approve_tool(settings: Settings, tool_id: str, version_id: str, *, actor: str,
                       timeout: float | None = None) -> CommandOutcome:
    command = ToolApproveRequested(tool_id=tool_id, version_id=version_id, as_roles=STEWARD)
    return await send_command(settings, command, actor=actor, timeout=timeout)


async def withdraw_tool(settings: Settings, tool_id: str, version_id: str, *, reason: str, actor: str,
                        timeout: float | None = None) -> CommandOutcome:
    command = ToolWithdrawRequested(tool_id=tool_id, version_id=version_id, reason=reason, as_roles=STEWARD)
    return await send_command(settings, command, actor=actor, timeout=timeout)
