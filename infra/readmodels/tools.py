"""The ``tools`` read model: tools and their versions as the tool registry decided them (TRS 2), and the
tool commands with their outcomes (so ``GET /commands/{id}`` answers for them too).

Owned here: the tables, the version, and the queries the TRS router, the tool registry, the scheduler and
the executor run on them (``runnable_version``: approved and not withdrawn; ``parse_trs_url``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg

from genomebus.infra.projection import Projection, Record
from genomebus.infra.settings import Settings
from genomebus.schemas.envelope import Envelope
from genomebus.schemas.processing import ProcessingCommandRejected
from genomebus.schemas.tools import (
    TOOL_COMMANDS,
    ToolRegistered,
    ToolVersionAdded,
    ToolVersionApproved,
    ToolVersionSpec,
    ToolVersionWithdrawn,
)

COMMAND_TYPES = frozenset(c.model_fields["type"].default for c in TOOL_COMMANDS)
Conn = asyncpg.Connection | asyncpg.Pool
TRS_PREFIX = "/ga4gh/trs/v2/tools/"


class ToolsProjection(Projection):
    """Tools, their versions (with files and approval state) and the tool commands' outcomes."""

    name = "tools"
    version = 1
    contexts = ("processing", "processing.commands")
    tables = {
        "tools": (
            "tool_id text PRIMARY KEY, name text NOT NULL, description text NOT NULL, organization text NOT NULL, "
            "toolclass text NOT NULL, aliases text[] NOT NULL, registered_at timestamptz NOT NULL, "
            "registered_by text NOT NULL, updated_at timestamptz NOT NULL"
        ),
        "versions": (
            "tool_id text NOT NULL, version_id text NOT NULL, name text NOT NULL, descriptor_type text NOT NULL, "
            "runtime text NOT NULL, authors text[] NOT NULL, files jsonb NOT NULL, state text NOT NULL, "
            "added_at timestamptz NOT NULL, added_by text NOT NULL, approved_at timestamptz, approved_by text, "
            "withdrawn_at timestamptz, withdrawn_reason text, PRIMARY KEY (tool_id, version_id)"
        ),
        "commands": (
            "command_id uuid PRIMARY KEY, type text, tool_id text, actor text, requested_at timestamptz, "
            "status text NOT NULL, outcome_event_id uuid, outcome_type text, reasons jsonb, state text, "
            "decided_at timestamptz"
        ),
    }

    async def apply(self, conn: asyncpg.Connection, schema: str, event: Envelope[Any], record: Record) -> None:
        await self.apply_many(conn, schema, [(event, record)])

    async def apply_many(self, conn: asyncpg.Connection, schema: str,
                         events: Sequence[tuple[Envelope[Any], Record]]) -> None:
        for event, _ in events:
            await _fold(conn, schema, event)


async def _fold(conn: asyncpg.Connection, schema: str, event: Envelope[Any]) -> None:
    s = f'"{schema}"'
    data = event.data
    if event.type in COMMAND_TYPES:
        await conn.execute(
            f"INSERT INTO {s}.commands (command_id, type, tool_id, actor, requested_at, status) "
            "VALUES ($1, $2, $3, $4, $5, 'pending') ON CONFLICT (command_id) DO UPDATE SET type = $2, tool_id = $3, "
            "actor = $4, requested_at = $5", event.id, event.type, data.tool_id, event.actor, event.time)
        return
    tool_fact = isinstance(data, (ToolRegistered, ToolVersionAdded, ToolVersionApproved, ToolVersionWithdrawn))
    rejected = isinstance(data, ProcessingCommandRejected) and data.command_type in COMMAND_TYPES
    if (tool_fact or rejected) and event.causation_id is not None:
        await conn.execute(
            f"INSERT INTO {s}.commands (command_id, status, outcome_event_id, outcome_type, reasons, state, "
            "decided_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7) ON CONFLICT (command_id) DO UPDATE SET "
            "status = $2, outcome_event_id = $3, outcome_type = $4, reasons = $5::jsonb, state = $6, decided_at = $7",
            event.causation_id, "rejected" if rejected else "accepted", event.id, event.type,
            json.dumps([r.model_dump() for r in data.reasons]) if rejected else None,
            data.state if rejected else None, event.time)
    match data:
        case ToolRegistered() as t:
            await conn.execute(
                f"INSERT INTO {s}.tools (tool_id, name, description, organization, toolclass, aliases, "
                "registered_at, registered_by, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $7) "
                "ON CONFLICT (tool_id) DO NOTHING",
                t.tool_id, t.name, t.description, t.organization, t.toolclass, list(t.aliases), event.time,
                event.actor)
            await _add_version(conn, s, t.tool_id, t.version, event)
        case ToolVersionAdded() as t:
            await _add_version(conn, s, t.tool_id, t.version, event)
        case ToolVersionApproved() as t:
            await conn.execute(
                f"UPDATE {s}.versions SET state = 'approved', approved_at = $3, approved_by = $4 "
                "WHERE tool_id = $1 AND version_id = $2 AND state = 'registered'",
                t.tool_id, t.version_id, event.time, event.actor)
            await conn.execute(f"UPDATE {s}.tools SET updated_at = $2 WHERE tool_id = $1", t.tool_id, event.time)
        case ToolVersionWithdrawn() as t:
            await conn.execute(
                f"UPDATE {s}.versions SET state = 'withdrawn', withdrawn_at = $3, withdrawn_reason = $4 "
                "WHERE tool_id = $1 AND version_id = $2", t.tool_id, t.version_id, event.time, t.reason)
            await conn.execute(f"UPDATE {s}.tools SET updated_at = $2 WHERE tool_id = $1", t.tool_id, event.time)


async def _add_version(conn: asyncpg.Connection, s: str, tool_id: str, version: ToolVersionSpec,
                       event: Envelope[Any]) -> None:
    await conn.execute(
        f"INSERT INTO {s}.versions (tool_id, version_id, name, descriptor_type, runtime, authors, files, state, "
        "added_at, added_by) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, 'registered', $8, $9) "
        "ON CONFLICT (tool_id, version_id) DO NOTHING",
        tool_id, version.version_id, version.name, version.descriptor_type, version.runtime, list(version.authors),
        json.dumps([f.model_dump() for f in version.files]), event.time, event.actor)
    await conn.execute(f"UPDATE {s}.tools SET updated_at = $2 WHERE tool_id = $1", tool_id, event.time)


SCHEMA = ToolsProjection.live_schema()


# -- queries --------------------------------------------------------------------------------------------


def trs_url(settings: Settings, tool_id: str, version_id: str) -> str:
    """The TRS URL of a version at this node: what a task's executor names as its ``image``."""
    return f"{settings.gateway_url}{TRS_PREFIX}{tool_id}/versions/{version_id}"


def parse_trs_url(settings: Settings, url: str) -> tuple[str, str] | None:
    """(tool id, version id) of a TRS URL of this node: ``<gateway>/ga4gh/trs/v2/tools/{id}/versions/{v}`` or
    ``trs://<host>/{id}/{v}``; None for anything else (another node's tool, a container image name)."""
    parts = urlsplit(url)
    own_hosts = {urlsplit(settings.gateway_url).netloc}
    if parts.scheme == "trs":
        segments = [unquote(p) for p in parts.path.split("/") if p]
        if parts.netloc in own_hosts and len(segments) == 2:
            return segments[0], segments[1]
        return None
    if parts.scheme not in ("http", "https") or parts.netloc not in own_hosts:
        return None
    path = parts.path
    if not path.startswith(TRS_PREFIX):
        return None
    segments = [unquote(p) for p in path[len(TRS_PREFIX):].split("/")]
    if len(segments) == 3 and segments[1] == "versions" and segments[0] and segments[2]:
        return segments[0], segments[2]
    return None


async def version_state(conn: Conn, tool_id: str, version_id: str) -> str | None:
    """``registered``, ``approved`` or ``withdrawn``; None for an unknown tool or version."""
    return await conn.fetchval(f'SELECT state FROM "{SCHEMA}".versions WHERE tool_id = $1 AND version_id = $2',
                               tool_id, version_id)


async def runnable_version(conn: Conn, tool_id: str, version_id: str) -> dict[str, Any] | None:
    """An approved, not withdrawn version: its runtime and files (``path``, ``content``, ``file_type``, ``sha256``)."""
    row = await conn.fetchrow(
        f'SELECT tool_id, version_id, runtime, files::text FROM "{SCHEMA}".versions '
        "WHERE tool_id = $1 AND version_id = $2 AND state = 'approved'", tool_id, version_id)
    if row is None:
        return None
    return {"tool_id": row["tool_id"], "version_id": row["version_id"], "runtime": row["runtime"],
            "files": json.loads(row["files"])}


async def tool_state(conn: Conn, tool_id: str) -> dict[str, str] | None:
    """The tool's versions and their states; None for an unknown tool."""
    if await conn.fetchval(f'SELECT 1 FROM "{SCHEMA}".tools WHERE tool_id = $1', tool_id) is None:
        return None
    rows = await conn.fetch(f'SELECT version_id, state FROM "{SCHEMA}".versions WHERE tool_id = $1', tool_id)
    return {r["version_id"]: r["state"] for r in rows}


async def get_tool(conn: Conn, tool_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(f'SELECT * FROM "{SCHEMA}".tools WHERE tool_id = $1', tool_id)
    if row is None:
        return None
    return {**dict(row), "versions": await list_versions(conn, tool_id)}


async def list_versions(conn: Conn, tool_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f'SELECT *, files::text AS files_json FROM "{SCHEMA}".versions WHERE tool_id = $1 ORDER BY added_at, version_id',
        tool_id)
    return [_version(r) for r in rows]


async def get_version(conn: Conn, tool_id: str, version_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(f'SELECT *, files::text AS files_json FROM "{SCHEMA}".versions '
                              "WHERE tool_id = $1 AND version_id = $2", tool_id, version_id)
    return _version(row) if row else None


def _version(row: asyncpg.Record) -> dict[str, Any]:
    out = {k: v for k, v in dict(row).items() if k not in ("files", "files_json")}
    out["files"] = json.loads(row["files_json"])
    return out


async def list_tools(conn: Conn, *, filters: dict[str, Any], offset: int, limit: int
                     ) -> tuple[list[dict[str, Any]], int]:
    """A page of tools matching TRS's filters (exact id/alias/organization/toolClass/descriptorType,
    substring toolname/description/author, and name: the image, here the runtime), and how many match."""
    where, args = ["true"], []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if filters.get("id"):
        where.append(f"t.tool_id = {arg(filters['id'])}")
    if filters.get("alias"):
        where.append(f"{arg(filters['alias'])} = ANY(t.aliases)")
    if filters.get("organization"):
        where.append(f"t.organization = {arg(filters['organization'])}")
    if filters.get("toolClass"):
        where.append(f"t.toolclass = {arg(filters['toolClass'])}")
    if filters.get("name"):  # TRS: the image's name; here, the runtime a version runs in
        where.append(f"EXISTS (SELECT 1 FROM \"{SCHEMA}\".versions v WHERE v.tool_id = t.tool_id AND "
                     f"('genomebus-runtime:' || v.runtime) ILIKE '%' || {arg(filters['name'])} || '%')")
    if filters.get("toolname"):
        where.append(f"t.name ILIKE '%' || {arg(filters['toolname'])} || '%'")
    if filters.get("description"):
        where.append(f"t.description ILIKE '%' || {arg(filters['description'])} || '%'")
    if filters.get("descriptorType"):
        where.append(f"EXISTS (SELECT 1 FROM \"{SCHEMA}\".versions v WHERE v.tool_id = t.tool_id AND "
                     f"v.descriptor_type = {arg(filters['descriptorType'])})")
    if filters.get("author"):
        where.append(f"EXISTS (SELECT 1 FROM \"{SCHEMA}\".versions v, unnest(v.authors) a WHERE v.tool_id = t.tool_id "
                     f"AND a ILIKE '%' || {arg(filters['author'])} || '%')")
    clause = " AND ".join(where)
    total = await conn.fetchval(f'SELECT count(*) FROM "{SCHEMA}".tools t WHERE {clause}', *args)
    rows = await conn.fetch(f'SELECT t.tool_id FROM "{SCHEMA}".tools t WHERE {clause} ORDER BY t.tool_id '
                            f"OFFSET {arg(offset)} LIMIT {arg(limit)}", *args)
    tools = [await get_tool(conn, r["tool_id"]) for r in rows]
    return [t for t in tools if t is not None], total


async def get_command(conn: Conn, command_id: Any) -> dict[str, Any] | None:
    """A tool command as requested and, once decided, its outcome (``status``: pending, accepted, rejected)."""
    row = await conn.fetchrow(f'SELECT * FROM "{SCHEMA}".commands WHERE command_id = $1', command_id)
    if row is None:
        return None
    out = dict(row)
    out["reasons"] = json.loads(out["reasons"]) if isinstance(out["reasons"], str) else out["reasons"]
    return out
