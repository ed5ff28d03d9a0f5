"""Processing: tasks (GA4GH TES 1.1) asked for, admitted or refused, run in the sandbox, cancelled.

A task is keyed by its id (``task_id``, the TES id the gateway gives it). Who decides what:

- ``task.requested`` and ``task.cancel_requested`` are commands (``genomebus.processing.commands``),
  published by the gateway as the verified caller (``actor``, ``as_roles``).
- The scheduler (``consumers/scheduler.py``) is the one place that admits a task: ``task.accepted``
  (every input's dataset granted to the requester now, every executor an approved tool version,
  resources within the node's limits) or ``task.rejected`` with reasons; and that accepts a
  cancellation: ``task.cancel_accepted`` (a cancel of a finished task is a
  ``processing.command_rejected``).
- The executor worker (``consumers/executor.py``) is the one place that says how a run goes:
  ``task.state_changed`` (INITIALIZING, RUNNING, COMPLETE, EXECUTOR_ERROR, SYSTEM_ERROR, CANCELED),
  with the TES logs, and ``result.ready`` once a finished task's outputs are in quarantine.

A task's TES state is derived from these in the read model: requested → (``UNKNOWN`` until decided)
→ accepted: ``QUEUED`` | rejected: ``SYSTEM_ERROR`` (the reasons in ``system_logs``) → the executor's
states; ``task.cancel_accepted`` of a task not yet ended shows ``CANCELING`` until the executor says
``CANCELED``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

from genomebus.schemas.access import AsRoles, UserId
from genomebus.schemas.base import EventModel
from genomebus.schemas.reception import Accession, DatasetId, Reason, Sha256, _Value

TaskId = Annotated[str, Field(pattern=r"^task-[0-9a-f]{32}$", examples=["task-0f8c2d9e4b1a4c3d8e7f6a5b4c3d2e1f"],
                              description="A TES task id, given by the gateway")]
TesState = Literal["UNKNOWN", "QUEUED", "INITIALIZING", "RUNNING", "PAUSED", "COMPLETE", "EXECUTOR_ERROR",
                   "SYSTEM_ERROR", "CANCELED", "PREEMPTED", "CANCELING"]
TERMINAL_STATES: frozenset[str] = frozenset({"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED", "PREEMPTED"})
AbsolutePath = Annotated[str, Field(pattern=r"^/[^\x00]*$", max_length=4096)]
FileType = Literal["FILE", "DIRECTORY"]


# -- the TES task as asked for (tesTask's writable fields) ---------------------------------------------


class TesInput(_Value):
    name: str | None = None
    description: str | None = None
    url: str | None = Field(None, description="A DRS URI of this node's object (drs://<host>/<id>) or its DRS "
                                              "object id; none with inline content")
    path: AbsolutePath
    type: FileType = "FILE"
    content: Annotated[str | None, Field(max_length=1_048_576)] = None
    streamable: bool | None = None


class TesOutput(_Value):
    name: str | None = None
    description: str | None = None
    url: str | None = Field(None, description="Ignored here: outputs go to the airlock's quarantine, never out")
    path: AbsolutePath
    path_prefix: str | None = None
    type: FileType = "FILE"


class TesResources(_Value):
    cpu_cores: Annotated[int | None, Field(ge=1)] = None
    preemptible: bool | None = None
    ram_gb: Annotated[float | None, Field(gt=0)] = None
    disk_gb: Annotated[float | None, Field(gt=0)] = None
    zones: tuple[str, ...] | None = None
    backend_parameters: dict[str, str] | None = None
    backend_parameters_strict: bool | None = False


class TesExecutor(_Value):
    image: Annotated[str, Field(min_length=1, max_length=2048,
                                description="The TRS URL of a tool version approved at this node")]
    command: Annotated[tuple[str, ...], Field(min_length=1, max_length=1000)]
    workdir: AbsolutePath | None = None
    stdin: AbsolutePath | None = None
    stdout: AbsolutePath | None = None
    stderr: AbsolutePath | None = None
    env: dict[str, str] | None = None
    ignore_error: bool | None = False


class TaskSpec(_Value):
    """What a researcher asks TES to run: the writable fields of ``tesTask``."""

    name: Annotated[str | None, Field(max_length=1000)] = None
    description: Annotated[str | None, Field(max_length=100_000)] = None
    inputs: Annotated[tuple[TesInput, ...], Field(max_length=1000)] = ()
    outputs: Annotated[tuple[TesOutput, ...], Field(max_length=1000)] = ()
    resources: TesResources | None = None
    executors: Annotated[tuple[TesExecutor, ...], Field(min_length=1, max_length=100)]
    volumes: Annotated[tuple[AbsolutePath, ...], Field(max_length=100)] = ()
    tags: dict[str, str] = Field(default_factory=dict)


# -- what the scheduler resolved -----------------------------------------------------------------------


class ToolRef(_Value):
    """An executor's tool version, as approved: what the executor runs it with."""

    tool_id: str
    version_id: str
    runtime: str = Field(description="The node-provided environment the version runs in (see docs/sandbox.md)")
    trs_url: str


class StagedInput(_Value):
    """An input that is an archived object: staged decrypted at ``path``."""

    path: AbsolutePath
    object_id: Accession
    dataset_id: DatasetId
    size: int = Field(ge=0)
    sha256: Sha256
    grant_id: UUID | None = Field(None, description="The grant the scheduler found active for it")


class Limits(_Value):
    """What the sandbox enforces on the whole task."""

    cpu_cores: int = Field(ge=1)
    ram_bytes: int = Field(ge=1)
    disk_bytes: int = Field(ge=1)
    wall_s: int = Field(ge=1)
    processes: int = Field(ge=1)


# -- commands ------------------------------------------------------------------------------------------


class TaskRequested(EventModel):
    """A researcher asks for a task (``POST /ga4gh/tes/v1/tasks``)."""

    context = "processing.commands"
    type: Literal["task.requested"] = "task.requested"
    task_id: TaskId
    spec: TaskSpec
    as_roles: AsRoles = AsRoles()


class TaskCancelRequested(EventModel):
    """The task's owner (or an operator) asks to cancel it (``POST /tasks/{id}:cancel``)."""

    context = "processing.commands"
    type: Literal["task.cancel_requested"] = "task.cancel_requested"
    task_id: TaskId
    as_roles: AsRoles = AsRoles()


# -- facts ---------------------------------------------------------------------------------------------


class TaskAccepted(EventModel):
    """The scheduler admitted the task: it is QUEUED for an executor."""

    context = "processing"
    type: Literal["task.accepted"] = "task.accepted"
    task_id: TaskId
    owner: UserId
    spec: TaskSpec
    tools: tuple[ToolRef, ...] = Field(description="One per executor, in order")
    staged_inputs: tuple[StagedInput, ...] = ()
    limits: Limits


class TaskRejected(EventModel):
    """The scheduler refused the task; it shows as SYSTEM_ERROR with these reasons in its system logs."""

    context = "processing"
    type: Literal["task.rejected"] = "task.rejected"
    task_id: TaskId
    owner: UserId
    spec: TaskSpec
    reasons: Annotated[tuple[Reason, ...], Field(min_length=1)]


class TaskCancelAccepted(EventModel):
    """The scheduler accepted a cancel of a task not yet ended: CANCELING until the executor stops it."""

    context = "processing"
    type: Literal["task.cancel_accepted"] = "task.cancel_accepted"
    task_id: TaskId
    by: UserId


class ExecutorLog(_Value):
    """tesExecutorLog: one executor's run."""

    start_time: datetime | None = None
    end_time: datetime | None = None
    stdout: str = Field("", description="The tail of its stdout (tes_log_tail_bytes)")
    stderr: str = Field("", description="The tail of its stderr (tes_log_tail_bytes)")
    exit_code: int


class OutputFile(_Value):
    """tesOutputFileLog, and where the airlock keeps it."""

    url: str = Field(description="Where it is: quarantine until the airlock releases it (never a public URL)")
    path: AbsolutePath
    size_bytes: int = Field(ge=0)
    sha256: Sha256 | None = None


class TaskStateChanged(EventModel):
    """The executor moved a task to ``state``; logs so far (the executor's logs on every end state)."""

    context = "processing"
    type: Literal["task.state_changed"] = "task.state_changed"
    task_id: TaskId
    state: Literal["INITIALIZING", "RUNNING", "COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"]
    attempt: int = Field(1, ge=1)
    start_time: datetime | None = None
    end_time: datetime | None = None
    logs: tuple[ExecutorLog, ...] = ()
    outputs: tuple[OutputFile, ...] = ()
    system_logs: tuple[str, ...] = ()
    reason: Reason | None = Field(None, description="Why, for SYSTEM_ERROR, EXECUTOR_ERROR and CANCELED")


class QuarantinedOutput(_Value):
    """One output file of a finished task, Crypt4GH-encrypted in the quarantine bucket."""

    path: AbsolutePath
    name: str | None = None
    key: str = Field(description="Its object key in the quarantine bucket")
    size: int = Field(ge=0, description="Plaintext bytes")
    sha256: Sha256


class ResultReady(EventModel):
    """A finished task's outputs are in quarantine, awaiting the airlock (published before COMPLETE)."""

    context = "processing"
    type: Literal["result.ready"] = "result.ready"
    task_id: TaskId
    owner: UserId
    outputs: tuple[QuarantinedOutput, ...]


TASK_COMMANDS = (TaskRequested, TaskCancelRequested)
TASK_FACTS = (TaskAccepted, TaskRejected, TaskCancelAccepted, TaskStateChanged, ResultReady)
