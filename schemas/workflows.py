"""Processing: workflow runs (GA4GH WES 1.1) asked for, admitted or refused, run by cwltool in the sandbox.

A run is keyed by its id (``run_id``, 32 hex digits, given by the gateway); it runs as one engine task
``task-<run_id>`` (``infra/cwl.py``), so everything a task has — admission, the sandbox, its states,
cancel, quarantine and the airlock — a run has too. Who decides what:

- ``workflow.requested`` is a command (``genomebus.processing.commands``), published by the gateway as
  the verified caller with the run request as WES gives it.
- The scheduler is the one place that admits a run: ``workflow.started`` (with the engine task's
  ``task.accepted`` beside it: a grant for every input's dataset, audited; an approved workflow
  version; within the limits) or ``workflow.rejected`` with reasons.
- The executor says how it ended, from cwltool's own log: ``workflow.completed``,
  ``workflow.failed`` or ``workflow.canceled``, each with a log per job cwltool ran (WES task logs)
  and cwltool's output object; the engine task's ``task.state_changed`` are the state changes between.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from genomebus.schemas.access import AsRoles, UserId
from genomebus.schemas.base import EventModel
from genomebus.schemas.reception import Reason, _Value
from genomebus.schemas.tasks import TaskId

RunId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$", description="A WES run id, given by the gateway")]


class RunRequest(_Value):
    """WES ``RunRequest`` as the caller sent it (attachments checked against the version and not kept)."""

    workflow_url: Annotated[str, Field(min_length=1, max_length=2048,
                                       description="The TRS URL of an approved workflow version")]
    workflow_type: Literal["CWL"] = "CWL"
    workflow_type_version: Literal["v1.0", "v1.1", "v1.2"]
    workflow_params: dict[str, Any] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    workflow_engine: Literal["cwltool"] | None = None
    workflow_engine_version: str | None = None
    workflow_engine_parameters: dict[str, str] = Field(default_factory=dict)


class WorkflowRequested(EventModel):
    """A researcher asks for a workflow run (``POST /ga4gh/wes/v1/runs``)."""

    context = "processing.commands"
    type: Literal["workflow.requested"] = "workflow.requested"
    run_id: RunId
    request: RunRequest
    as_roles: AsRoles = AsRoles()


class WorkflowStarted(EventModel):
    """The scheduler admitted the run: its engine task is QUEUED (``task.accepted`` beside this)."""

    context = "processing"
    type: Literal["workflow.started"] = "workflow.started"
    run_id: RunId
    owner: UserId
    task_id: TaskId
    request: RunRequest


class WorkflowRejected(EventModel):
    """The scheduler refused the run (SYSTEM_ERROR), with reasons."""

    context = "processing"
    type: Literal["workflow.rejected"] = "workflow.rejected"
    run_id: RunId
    owner: UserId
    request: RunRequest
    reasons: Annotated[tuple[Reason, ...], Field(min_length=1)]


class StepLog(_Value):
    """One job cwltool ran: a step, or one element of a scattered step (WES ``TaskLog``)."""

    id: str
    name: str
    cmd: tuple[str, ...] = ()
    start_time: datetime | None = None
    end_time: datetime | None = None
    exit_code: int | None = None
    status: str | None = Field(None, description="cwltool's: success, permanentFail, temporaryFail")
    system_logs: tuple[str, ...] = Field((), description="What the job and cwltool said about it (capped)")


class _RunEnded(EventModel):
    context = "processing"
    run_id: RunId
    task_id: TaskId
    state: Literal["COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"]
    steps: tuple[StepLog, ...] = ()
    outputs: dict[str, Any] = Field(default_factory=dict, description="cwltool's output object, paths in /work/out")
    engine_status: str | None = Field(None, description="cwltool's final process status")
    system_logs: tuple[str, ...] = ()


class WorkflowCompleted(_RunEnded):
    """The run succeeded; its outputs are in quarantine for the airlock."""

    type: Literal["workflow.completed"] = "workflow.completed"


class WorkflowFailed(_RunEnded):
    """A step failed (EXECUTOR_ERROR, that step's log among the steps) or the system did (SYSTEM_ERROR)."""

    type: Literal["workflow.failed"] = "workflow.failed"


class WorkflowCanceled(_RunEnded):
    """The run was cancelled: every process stopped."""

    type: Literal["workflow.canceled"] = "workflow.canceled"


WORKFLOW_COMMANDS = (WorkflowRequested,)
WORKFLOW_FACTS = (WorkflowStarted, WorkflowRejected, WorkflowCompleted, WorkflowFailed, WorkflowCanceled)
