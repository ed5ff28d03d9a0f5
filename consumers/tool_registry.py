"""Tool registry: the one place where tool commands become facts (TRS 2's tools and versions).

- in: ``genomebus.processing.commands`` (consumer group ``genomebus-tool-registry``):
  ``tool.register_requested``, ``tool.approve_requested``, ``tool.withdraw_requested``; keyed by the tool
- out: on ``genomebus.processing``, keyed by the tool, ids derived from the command: ``tool.registered``
  (a new tool with its first version) or ``tool.version_added``, ``tool.version_approved``,
  ``tool.version_withdrawn``, each with the steward as ``actor``; or ``processing.command_rejected``
  (actor ``worker:tool-registry``) with machine-readable reasons and the version's state
- decides: ``decide(versions, command)``, a pure function. Only a steward of this node may ask
  (``not_steward``). A version is registered once (``version_exists``), with a runtime this node has
  (``unknown_runtime``) and a CWL primary descriptor whose ``class`` matches the tool class
  (``bad_descriptor``); approved only from ``registered`` (``already_approved``, ``version_withdrawn``),
  withdrawn once (``already_withdrawn``); an unknown tool or version is ``unknown_tool`` / ``unknown_version``
- state: the ``tools`` read model once it has applied everything on ``genomebus.processing``; its own
  ledger ``decider_tools.decisions`` (migration ``0007``) keeps every outcome for redeliveries
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any
from uuid import UUID

import asyncpg
import yaml
from faststream import Context

from genomebus.infra import db, kafka, telemetry
from genomebus.infra.ledger import OutcomesLedger
from genomebus.infra.projection import wait_for_position
from genomebus.infra.readmodels import tools
from genomebus.infra.readmodels.tools import ToolsProjection
from genomebus.infra.runtimes import RUNTIMES
from genomebus.infra.settings import Settings
from genomebus.infra.worker import Resources, Transient, Worker, WorkerSettings
from genomebus.schemas.base import EventModel
from genomebus.schemas.envelope import Envelope, new_envelope
from genomebus.schemas.processing import ProcessingCommandRejected
from genomebus.schemas.reception import Reason
from genomebus.schemas.tools import (
    ToolApproveRequested,
    ToolRegistered,
    ToolRegisterRequested,
    ToolVersionAdded,
    ToolVersionApproved,
    ToolVersionSpec,
    ToolVersionWithdrawn,
    ToolWithdrawRequested,
)

ACTOR = "worker:tool-registry"
LEDGER = "decider_tools.decisions"
ToolCommand = ToolRegisterRequested | ToolApproveRequested | ToolWithdrawRequested


def decide(versions: dict[str, str] | None, command: ToolCommand, command_id: UUID,
           runtimes: Mapping[str, Any] = RUNTIMES) -> list[EventModel]:
    """The facts a tool command leads to, given the tool's versions and their states (None: unknown tool)."""
    version_id = command.version.version_id if isinstance(command, ToolRegisterRequested) else command.version_id
    state = (versions or {}).get(version_id)

    def refuse(*reasons: Reason) -> list[EventModel]:
        return [ProcessingCommandRejected(aggregate_id=command.tool_id, command_id=command_id,
                                          command_type=command.type, reasons=reasons, state=state)]

    if not command.as_roles.steward:
        return refuse(Reason(code="not_steward", message="only a data steward of this node may register, approve or "
                                                         "withdraw tools"))
    match command:
        case ToolRegisterRequested():
            reasons = _check_version(command.version, command.toolclass, runtimes)
            if state is not None:
                reasons.insert(0, Reason(code="version_exists", message=f"{command.tool_id} {version_id} is "
                                         f"already registered ({state}); register a new version id"))
            if reasons:
                return refuse(*reasons)
            if versions is None:
                return [ToolRegistered(**command.model_dump(include=set(ToolRegistered.model_fields) - {"type"}))]
            return [ToolVersionAdded(tool_id=command.tool_id, version=command.version)]
        case ToolApproveRequested():
            if (missing := _unknown(versions, command.tool_id, version_id)) is not None:
                return refuse(missing)
            if state == "approved":
                return refuse(Reason(code="already_approved", message=f"{command.tool_id} {version_id} is approved"))
            if state == "withdrawn":
                return refuse(Reason(code="version_withdrawn", message=f"{command.tool_id} {version_id} was "
                                     "withdrawn and is never run again; register a new version"))
            return [ToolVersionApproved(tool_id=command.tool_id, version_id=version_id)]
        case ToolWithdrawRequested():
            if (missing := _unknown(versions, command.tool_id, version_id)) is not None:
                return refuse(missing)
            if state == "withdrawn":
                return refuse(Reason(code="already_withdrawn", message=f"{command.tool_id} {version_id} is withdrawn"))
            return [ToolVersionWithdrawn(tool_id=command.tool_id, version_id=version_id, reason=command.reason)]
    raise TypeError(f"not a tool command: {type(command).__name__}")  # pragma: no cover


def _unknown(versions: dict[str, str] | None, tool_id: str, version_id: str) -> Reason | None:
    if versions is None:
        return Reason(code="unknown_tool", message=f"no tool {tool_id} is registered here")
    if version_id not in versions:
        return Reason(code="unknown_version", message=f"{tool_id} has no version {version_id}; it has "
                                                      f"{', '.join(sorted(versions)) or 'none'}")
    return None


def _check_version(version: ToolVersionSpec, toolclass: str, runtimes: Mapping[str, Any]) -> list[Reason]:
    reasons = []
    if version.runtime not in runtimes:
        reasons.append(Reason(code="unknown_runtime", message=f"this node has no runtime {version.runtime}; it has "
                                                              f"{', '.join(sorted(runtimes))}"))
    primary = version.primary_descriptor
    try:
        document = yaml.safe_load(primary.content)
    except yaml.YAMLError as exc:
        return [*reasons, Reason(code="bad_descriptor", message=f"{primary.path} is not YAML or JSON: "
                                                                f"{str(exc).splitlines()[0]}")]
    if not isinstance(document, dict) or not str(document.get("cwlVersion", "")).startswith("v1."):
        reasons.append(Reason(code="bad_descriptor", message=f"{primary.path} is not a CWL v1.x document "
                                                             "(no cwlVersion: v1.x)"))
    elif document.get("class") != toolclass:
        reasons.append(Reason(code="bad_descriptor", message=f"{primary.path} is a CWL {document.get('class')}, "
                                                             f"not a {toolclass}"))
    return reasons


# -- the handler: I/O around the decision -----------------------------------------------------------------


async def caught_up(settings: Settings, pool: asyncpg.Pool) -> None:
    """Wait until the ``tools`` read model has applied everything on the processing topic now."""
    topic = settings.topic("processing")
    ends = await kafka.end_offsets(settings, [topic])
    try:
        for tp, end in ends.items():
            if end > 0:
                await wait_for_position(pool, ToolsProjection, tp.topic, tp.partition, end - 1,
                                        settings.read_your_writes_timeout_s)
    except TimeoutError as exc:  # the projector is behind or down: decide later, never on stale state
        raise Transient(str(exc)) from exc


async def decide_command(command: Envelope[Any], settings: Settings, pool: asyncpg.Pool,
                         ledger: OutcomesLedger) -> list[Envelope[Any]]:
    if (recorded := await ledger.outcomes(command.id)) is not None:
        return recorded
    await caught_up(settings, pool)
    async with pool.acquire() as conn:
        versions = await tools.tool_state(conn, command.data.tool_id)
    facts = decide(versions, command.data, command.id)
    outcomes = [new_envelope(fact, source=settings.source, subject=command.data.tool_id, cause=command,
                             actor=ACTOR if isinstance(fact, ProcessingCommandRejected) else command.actor)
                for fact in facts]
    return await ledger.record(command, outcomes)


async def on_register(command: Envelope[ToolRegisterRequested], settings: WorkerSettings,
                      pool: asyncpg.Pool = Context("db"), ledger: OutcomesLedger = Context("ledger")
                      ) -> list[Envelope[Any]]:
    return await decide_command(command, settings, pool, ledger)


async def on_approve(command: Envelope[ToolApproveRequested], settings: WorkerSettings,
                     pool: asyncpg.Pool = Context("db"), ledger: OutcomesLedger = Context("ledger")
                     ) -> list[Envelope[Any]]:
    return await decide_command(command, settings, pool, ledger)


async def on_withdraw(command: Envelope[ToolWithdrawRequested], settings: WorkerSettings,
                      pool: asyncpg.Pool = Context("db"), ledger: OutcomesLedger = Context("ledger")
                      ) -> list[Envelope[Any]]:
    return await decide_command(command, settings, pool, ledger)


@contextlib.asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Mapping[str, Any]]:
    pool = await db.connect(settings, max_size=3)
    try:
        yield {"db": pool, "ledger": OutcomesLedger(pool, LEDGER)}
    finally:
        await pool.close()


def build(settings: Settings, *, name: str = "tool-registry", resources: Resources = open_resources) -> Worker:
    worker = Worker(name, settings, resources=resources,
                    description="Decides tool commands: tools and versions registered, approved, withdrawn (TRS)")
    worker.handle(on_register, produces=(ToolRegistered, ToolVersionAdded, ProcessingCommandRejected))
    worker.handle(on_approve, produces=(ToolVersionApproved, ProcessingCommandRejected))
    worker.handle(on_withdraw, produces=(ToolVersionWithdrawn, ProcessingCommandRejected))
    return worker


async def main(settings: Settings, stop: asyncio.Event) -> None:
    telemetry.setup(settings, "tool-registry")
    await build(settings).run(stop)
