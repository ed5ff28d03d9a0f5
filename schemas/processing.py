"""Processing: the events of the processing context's two topics, gathered.

``genomebus.processing.commands`` carries what people ask for (tools registered and approved,
tasks asked for and cancelled, outputs reviewed); ``genomebus.processing`` carries the facts, each
decided in one place: tools by the tool registry (``schemas/tools.py``), tasks by the scheduler
and the executor (``schemas/tasks.py``), outputs by the airlock (``schemas/airlock.py``). A command
any of them refuses is a ``processing.command_rejected`` naming the command and the reasons.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

from genomebus.schemas.airlock import AIRLOCK_COMMANDS, AIRLOCK_FACTS
from genomebus.schemas.base import EventModel
from genomebus.schemas.reception import Reason
from genomebus.schemas.tasks import TASK_COMMANDS, TASK_FACTS
from genomebus.schemas.tools import TOOL_COMMANDS, TOOL_FACTS
from genomebus.schemas.workflows import WORKFLOW_COMMANDS, WORKFLOW_FACTS


class ProcessingCommandRejected(EventModel):
    """A processing command refused by the context that decides it; ``state`` is the aggregate's then."""

    context = "processing"
    type: Literal["processing.command_rejected"] = "processing.command_rejected"
    aggregate_id: Annotated[str, Field(min_length=1, description="The tool, task or output request asked about")]
    command_id: UUID
    command_type: str
    reasons: Annotated[tuple[Reason, ...], Field(min_length=1)]
    state: str | None = None


PROCESSING_COMMANDS = (*TOOL_COMMANDS, *TASK_COMMANDS, *WORKFLOW_COMMANDS, *AIRLOCK_COMMANDS)
PROCESSING_FACTS = (*TOOL_FACTS, *TASK_FACTS, *WORKFLOW_FACTS, *AIRLOCK_FACTS, ProcessingCommandRejected)
