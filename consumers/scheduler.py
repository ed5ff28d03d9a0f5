"""Scheduler: the one place that admits a TES task or a WES run, and accepts a task's cancellation.

- in: ``genomebus.processing.commands`` (consumer group ``genomebus-scheduler``): ``task.requested``,
  ``task.cancel_requested``, ``workflow.requested``; keyed by the task (a run by its engine task)
- a WES run is planned as its engine task (``plan_run``, ``infra/cwl.py``) and admitted as that task
  would be (``decide_run``): ``workflow.started`` beside ``task.accepted``, or ``workflow.rejected``
- out: ``task.accepted`` (QUEUED for an executor: each executor's tool version, each input's object,
  dataset and grant, the limits) or ``task.rejected`` with every reason, on ``genomebus.processing``;
  for each input that names an archived object, the access decision on ``genomebus.audit``
  (``data.accessed`` / ``data.access_denied``, credential ``task``) — a task is a controlled read;
  ``task.cancel_accepted`` or ``processing.command_rejected`` for a cancel
- decides: ``admit(task, facts, limits)``, a pure function of what the read models say. A task is
  accepted only if its asker is a researcher; every executor's ``image`` is the TRS URL of a version
  approved here, in a runtime this node has; every input is inline content or a DRS id/URI of an
  archived object of a released dataset for which the asker holds an active grant now (not vetoed);
  every path is under /work; and the resources asked for are within the node's limits
- state: the ``tools``, ``files``, ``datasets``, ``access`` and ``tasks`` read models, each caught up
  with its topic first; its ledger ``decider_tasks.decisions`` (migration ``0008``)
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import asyncpg
from faststream import Context

import yaml

from genomebus.infra import cwl, db, kafka, telemetry
from genomebus.infra.backends import inside_work
from genomebus.infra.ledger import OutcomesLedger
from genomebus.infra.projection import Projection, wait_for_position
from genomebus.infra.readmodels import access, files, tasks, tools
from genomebus.infra.readmodels.access import AccessProjection
from genomebus.infra.readmodels.datasets import DatasetsProjection
from genomebus.infra.readmodels.files import FilesProjection
from genomebus.infra.readmodels.tasks import TasksProjection
from genomebus.infra.readmodels.tools import ToolsProjection
from genomebus.infra.runtimes import RUNTIMES
from genomebus.infra.settings import Settings
from genomebus.infra.worker import Resources, Transient, Worker, WorkerSettings
from genomebus.schemas.audit import DataAccessDenied, DataAccessed
from genomebus.schemas.base import EventModel
from genomebus.schemas.envelope import Envelope, new_envelope
from genomebus.schemas.processing import ProcessingCommandRejected
from genomebus.schemas.reception import Reason
from genomebus.schemas.workflows import WorkflowRejected, WorkflowRequested, WorkflowStarted
from genomebus.schemas.tasks import (
    TERMINAL_STATES,
    Limits,
    StagedInput,
    TaskAccepted,
    TaskCancelAccepted,
    TaskCancelRequested,
    TaskRejected,
    TaskRequested,
    ToolRef,
)

ACTOR = "worker:scheduler"
LEDGER = "decider_tasks.decisions"
_AUDIT_IDS = uuid.UUID("0b8e6f35-2a3c-4df1-9a57-4f0d6a1c7e22")
GB = 2**30


@dataclass(frozen=True)
class NodeLimits:
    cpu_cores: int
    ram_gb: float
    disk_gb: float
    wall_s: int
    processes: int
    inputs_bytes: int

    @classmethod
    def of(cls, settings: Settings) -> NodeLimits:
        return cls(settings.tes_max_cpu_cores, settings.tes_max_ram_gb, settings.tes_max_disk_gb,
                   settings.tes_max_wall_s, settings.tes_max_processes, settings.tes_max_inputs_bytes)


@dataclass
class InputFacts:
    """What the read models say of one input that names an object."""

    path: str
    object_id: str
    found: dict[str, Any] | None  # files.drs_object
    grant: dict[str, Any] | None = None
    vetoed: bool = False


@dataclass
class TaskFacts:
    tools: dict[str, dict[str, Any] | str | None] = field(default_factory=dict)
    """image → the runnable version, or its state (``registered``/``withdrawn``), or None (unknown/not ours)."""
    inputs: list[InputFacts] = field(default_factory=list)


def object_id_of(url: str) -> str:
    """The DRS id an input names: ``drs://host/ID``, ``https://host/ga4gh/drs/v1/objects/ID``, or ``ID``."""
    parts = urlsplit(url)
    if parts.scheme == "drs":
        return parts.path.lstrip("/")
    if parts.scheme in ("http", "https") and "/ga4gh/drs/v1/objects/" in parts.path:
        return parts.path.rsplit("/ga4gh/drs/v1/objects/", 1)[1].strip("/")
    return url


def admit(task: TaskRequested, asker: str, facts: TaskFacts, limits: NodeLimits) -> tuple[list[Reason], list[ToolRef],
                                                                                         list[StagedInput], Limits]:
    """Every reason to refuse the task (none: admit it), the tools and inputs it runs with, its limits."""
    reasons: list[Reason] = []
    spec = task.spec
    if not task.as_roles.researcher:
        reasons.append(Reason(code="not_researcher", message="only a researcher may run tasks"))
    refs: list[ToolRef] = []
    for n, executor in enumerate(spec.executors):
        found = facts.tools.get(executor.image)
        if isinstance(found, dict):
            if found["runtime"] not in RUNTIMES:
                reasons.append(Reason(code="unknown_runtime", message=f"executor {n}: {executor.image} needs the "
                                      f"runtime {found['runtime']}, which this node does not have"))
            refs.append(ToolRef(tool_id=found["tool_id"], version_id=found["version_id"], runtime=found["runtime"],
                                trs_url=executor.image))
        elif found == "registered":
            reasons.append(Reason(code="tool_not_approved", message=f"executor {n}: {executor.image} is registered "
                                  "but not approved for execution at this node"))
        elif found == "withdrawn":
            reasons.append(Reason(code="tool_withdrawn", message=f"executor {n}: {executor.image} was withdrawn"))
        else:
            reasons.append(Reason(code="unknown_tool", message=f"executor {n}: {executor.image} is not the TRS URL "
                                  "of a tool version of this node (see /ga4gh/trs/v2/tools)"))
        for what, path in (("workdir", executor.workdir), ("stdin", executor.stdin), ("stdout", executor.stdout),
                           ("stderr", executor.stderr)):
            if path is not None and not inside_work(path):
                reasons.append(Reason(code="bad_path", message=f"executor {n}: {what} {path} is not under /work"))
    for item in (*spec.inputs, *spec.outputs):
        if not inside_work(item.path) or item.path.rstrip("/") == "/work":
            reasons.append(Reason(code="bad_path", message=f"{item.path} is not a path under /work, the task's "
                                                           "work directory"))
    staged: list[StagedInput] = []
    total = 0
    by_path = {i.path: i for i in facts.inputs}
    for item in spec.inputs:
        if item.url is None:
            if item.content is None:
                reasons.append(Reason(code="bad_input", message=f"input {item.path} has neither url nor content"))
            continue
        if item.type == "DIRECTORY":
            reasons.append(Reason(code="bad_input", message=f"input {item.path}: a DRS object is a file, not a "
                                                            "directory"))
            continue
        seen = by_path.get(item.path)
        found = seen.found if seen else None
        if found is None:
            reasons.append(Reason(code="unknown_object", message=f"input {item.path}: {item.url} is no DRS object "
                                                                 "of this node"))
            continue
        if found["dataset_state"] != "released":
            reasons.append(Reason(code="dataset_not_released", message=f"input {item.path}: {found['dataset_id']} "
                                                                       "is not released"))
            continue
        if seen.grant is None or seen.vetoed:
            reasons.append(Reason(code="no_grant", message=f"input {item.path}: you hold no active grant for "
                                  f"{found['dataset_id']}; apply with `genomebus access apply`"))
            continue
        total += found["size"]
        staged.append(StagedInput(path=item.path, object_id=found["accession"], dataset_id=found["dataset_id"],
                                  size=found["size"], sha256=found["sha256"], grant_id=seen.grant["grant_id"]))
    if total > limits.inputs_bytes:
        reasons.append(Reason(code="inputs_too_large", message=f"the inputs are {total} bytes; this node stages at "
                                                               f"most {limits.inputs_bytes}"))
    resources = spec.resources
    cpu = (resources.cpu_cores if resources and resources.cpu_cores else 1)
    ram = (resources.ram_gb if resources and resources.ram_gb else min(2.0, limits.ram_gb))
    disk = (resources.disk_gb if resources and resources.disk_gb else min(5.0, limits.disk_gb))
    if cpu > limits.cpu_cores:
        reasons.append(Reason(code="too_many_cpu_cores", message=f"{cpu} cores asked for; at most {limits.cpu_cores}"))
    if ram > limits.ram_gb:
        reasons.append(Reason(code="too_much_ram", message=f"{ram} GB of memory asked for; at most {limits.ram_gb}"))
    if disk > limits.disk_gb:
        reasons.append(Reason(code="too_much_disk", message=f"{disk} GB of disk asked for; at most {limits.disk_gb}"))
    wall = limits.wall_s
    parameters = (resources.backend_parameters or {}) if resources else {}
    for key, value in parameters.items():
        if key == "wall_s" and value.isdigit() and 0 < int(value) <= limits.wall_s:
            wall = int(value)
        elif key == "wall_s":
            reasons.append(Reason(code="bad_backend_parameter", message=f"wall_s {value!r}: a whole number of "
                                                                        f"seconds up to {limits.wall_s}"))
        elif resources and resources.backend_parameters_strict:
            reasons.append(Reason(code="bad_backend_parameter", message=f"backend parameter {key} is not supported "
                                                                        "here (only wall_s)"))
    return reasons, refs, staged, Limits(cpu_cores=min(cpu, limits.cpu_cores), ram_bytes=int(min(ram, limits.ram_gb) * GB),
                                         disk_bytes=int(min(disk, limits.disk_gb) * GB), wall_s=wall,
                                         processes=limits.processes)


def audit_of(task: TaskRequested, asker: str, facts: TaskFacts) -> list[EventModel]:
    """The access decision for each input that names an object of this node (a task reads it)."""
    events: list[EventModel] = []
    for seen in facts.inputs:
        if seen.found is None:
            continue
        common = dict(dataset_id=seen.found["dataset_id"], user_id=asker, credential="task",
                      resource=f"TES task {task.task_id} input {seen.path}", object_id=seen.found["accession"])
        if seen.grant is not None and not seen.vetoed and seen.found["dataset_state"] == "released":
            events.append(DataAccessed(reason="grant_active", grant_id=str(seen.grant["grant_id"]), issuer="node",
                                       **common))
        else:
            reason = "vetoed" if seen.vetoed else "no_grant" if seen.found["dataset_state"] == "released" \
                else "dataset_not_released"
            events.append(DataAccessDenied(reason=reason, status=403, **common))
    return events


def decide_task(task: TaskRequested, asker: str, facts: TaskFacts, limits: NodeLimits) -> list[EventModel]:
    reasons, refs, staged, task_limits = admit(task, asker, facts, limits)
    audit = audit_of(task, asker, facts)
    if reasons:
        return [TaskRejected(task_id=task.task_id, owner=asker, spec=task.spec, reasons=tuple(reasons)), *audit]
    return [TaskAccepted(task_id=task.task_id, owner=asker, spec=task.spec, tools=tuple(refs),
                         staged_inputs=tuple(staged), limits=task_limits), *audit]


def plan_run(settings: Settings, run: WorkflowRequested, version: dict[str, Any] | None,
             state: str | None) -> TaskRequested | list[Reason]:
    """The engine task of a WES run (``infra/cwl.py``), or why the run cannot be planned at all."""
    request = run.request
    if version is None:
        why = {"registered": "is registered but not approved for execution here",
               "withdrawn": "was withdrawn and is never run again"}.get(state or "", "is not a tool version of this "
                                                                                 "node's TRS")
        return [Reason(code="workflow_not_approved", message=f"{request.workflow_url} {why}")]
    primary = next((f for f in version["files"] if f.get("file_type") == "PRIMARY_DESCRIPTOR"), None)
    if primary is None:  # pragma: no cover - the tool registry refuses a version without one
        return [Reason(code="bad_descriptor", message="the version has no primary descriptor")]
    try:
        document = yaml.safe_load(primary["content"])
    except yaml.YAMLError:
        document = None
    declared = document.get("cwlVersion") if isinstance(document, dict) else None
    if declared != request.workflow_type_version:
        return [Reason(code="version_mismatch", message=f"the workflow is CWL {declared}, not "
                                                        f"{request.workflow_type_version} as asked")]
    try:
        spec = cwl.engine_task(run.run_id, request.workflow_url, primary["path"], request.workflow_params,
                               request.tags, request.workflow_engine_parameters)
    except cwl.RunRefused as exc:
        return exc.reasons
    return TaskRequested(task_id=cwl.run_task_id(run.run_id), spec=spec, as_roles=run.as_roles)


def decide_run(run: WorkflowRequested, asker: str, planned: TaskRequested | list[Reason], facts: TaskFacts,
               limits: NodeLimits) -> list[EventModel]:
    """A run is admitted as its engine task is: ``workflow.started`` beside ``task.accepted``, or
    ``workflow.rejected`` with every reason (and the audit of each input the task would have read)."""
    if isinstance(planned, list):
        return [WorkflowRejected(run_id=run.run_id, owner=asker, request=run.request, reasons=tuple(planned))]
    decided = decide_task(planned, asker, facts, limits)
    first = decided[0]
    if isinstance(first, TaskAccepted):
        return [WorkflowStarted(run_id=run.run_id, owner=asker, task_id=planned.task_id, request=run.request),
                *decided]
    assert isinstance(first, TaskRejected)
    return [WorkflowRejected(run_id=run.run_id, owner=asker, request=run.request, reasons=first.reasons),
            *decided[1:]]


def decide_cancel(command: TaskCancelRequested, command_id: UUID, asker: str,
                  current: tuple[str, str] | None) -> list[EventModel]:
    def refuse(code: str, message: str) -> list[EventModel]:
        return [ProcessingCommandRejected(aggregate_id=command.task_id, command_id=command_id, command_type=command.type,
                                          reasons=(Reason(code=code, message=message),),
                                          state=current[0] if current else None)]

    if current is None:
        return refuse("unknown_task", f"no task {command.task_id} here")
    state, owner = current
    if owner != asker and not command.as_roles.operator:
        return refuse("not_owner", "only the task's owner or an operator may cancel it")
    if state in TERMINAL_STATES:
        return refuse("task_finished", f"the task has ended ({state})")
    return [TaskCancelAccepted(task_id=command.task_id, by=asker)]


# -- the handler: I/O around the decision -----------------------------------------------------------------


async def caught_up(settings: Settings, pool: asyncpg.Pool, wanted: dict[str, type[Projection]]) -> None:
    ends = await kafka.end_offsets(settings, list(wanted))
    try:
        for tp, end in ends.items():
            if end > 0:
                await wait_for_position(pool, wanted[tp.topic], tp.topic, tp.partition, end - 1,
                                        settings.read_your_writes_timeout_s)
    except TimeoutError as exc:
        raise Transient(str(exc)) from exc


async def gather_facts(settings: Settings, conn: asyncpg.Connection, task: TaskRequested, asker: str) -> TaskFacts:
    facts = TaskFacts()
    now = datetime.now(UTC)
    for executor in task.spec.executors:
        ref = tools.parse_trs_url(settings, executor.image)
        if ref is None:
            facts.tools[executor.image] = None
            continue
        runnable = await tools.runnable_version(conn, *ref)
        facts.tools[executor.image] = runnable if runnable else await tools.version_state(conn, *ref)
    for item in task.spec.inputs:
        if item.url is None or item.type == "DIRECTORY":
            continue
        object_id = object_id_of(item.url)
        found = await files.drs_object(conn, object_id)
        seen = InputFacts(item.path, object_id, found)
        if found is not None:
            seen.grant = await access.active_grant(conn, asker, found["dataset_id"], now)
            seen.vetoed = await access.is_vetoed(conn, asker, found["dataset_id"])
        facts.inputs.append(seen)
    return facts


async def decide_command(command: Envelope[Any], settings: Settings, pool: asyncpg.Pool,
                         ledger: OutcomesLedger) -> list[Envelope[Any]]:
    if (recorded := await ledger.outcomes(command.id)) is not None:
        return recorded
    data = command.data
    subject = cwl.run_task_id(data.run_id) if isinstance(data, WorkflowRequested) else data.task_id
    if isinstance(data, WorkflowRequested):
        await caught_up(settings, pool, {settings.topic("processing"): ToolsProjection,
                                         settings.topic("reception"): FilesProjection,
                                         settings.topic("access"): AccessProjection})
        await caught_up(settings, pool, {settings.topic("reception"): DatasetsProjection})
        async with pool.acquire() as conn:
            ref = tools.parse_trs_url(settings, data.request.workflow_url)
            version = await tools.runnable_version(conn, *ref) if ref else None
            state = await tools.version_state(conn, *ref) if ref and version is None else None
            planned = plan_run(settings, data, version, state)
            facts = (await gather_facts(settings, conn, planned, command.actor)
                     if isinstance(planned, TaskRequested) else TaskFacts())
        decided = decide_run(data, command.actor, planned, facts, NodeLimits.of(settings))
    elif isinstance(data, TaskRequested):
        await caught_up(settings, pool, {settings.topic("processing"): ToolsProjection,
                                         settings.topic("reception"): FilesProjection,
                                         settings.topic("access"): AccessProjection})
        await caught_up(settings, pool, {settings.topic("reception"): DatasetsProjection})
        async with pool.acquire() as conn:
            facts = await gather_facts(settings, conn, data, command.actor)
        decided = decide_task(data, command.actor, facts, NodeLimits.of(settings))
    else:
        await caught_up(settings, pool, {settings.topic("processing"): TasksProjection})
        async with pool.acquire() as conn:
            current = await tasks.task_state(conn, data.task_id)
        decided = decide_cancel(data, command.id, command.actor, current)
    outcomes = []
    for n, fact in enumerate(decided):
        audit = isinstance(fact, (DataAccessed, DataAccessDenied))
        outcomes.append(new_envelope(
            fact, source=settings.source, cause=command,
            subject=fact.dataset_id if audit else subject,  # type: ignore[attr-defined]
            event_id=uuid.uuid5(_AUDIT_IDS, f"{command.id}/{n}") if audit else None,
            actor=ACTOR if isinstance(fact, ProcessingCommandRejected) else command.actor))
    return await ledger.record(command, outcomes)


async def on_requested(command: Envelope[TaskRequested], settings: WorkerSettings,
                       pool: asyncpg.Pool = Context("db"), ledger: OutcomesLedger = Context("ledger")
                       ) -> list[Envelope[Any]]:
    return await decide_command(command, settings, pool, ledger)


async def on_workflow(command: Envelope[WorkflowRequested], settings: WorkerSettings,
                      pool: asyncpg.Pool = Context("db"), ledger: OutcomesLedger = Context("ledger")
                      ) -> list[Envelope[Any]]:
    return await decide_command(command, settings, pool, ledger)


async def on_cancel(command: Envelope[TaskCancelRequested], settings: WorkerSettings,
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


def build(settings: Settings, *, name: str = "scheduler", resources: Resources = open_resources) -> Worker:
    worker = Worker(name, settings, resources=resources,
                    description="Admits TES tasks (grants, approved tools, limits), audited, and accepts cancels")
    worker.handle(on_requested, produces=(TaskAccepted, TaskRejected, DataAccessed, DataAccessDenied))
    worker.handle(on_workflow, produces=(WorkflowStarted, WorkflowRejected, TaskAccepted, DataAccessed,
                                         DataAccessDenied))
    worker.handle(on_cancel, produces=(TaskCancelAccepted, ProcessingCommandRejected))
    return worker


async def main(settings: Settings, stop: asyncio.Event) -> None:
    telemetry.setup(settings, "scheduler")
    await build(settings).run(stop)
