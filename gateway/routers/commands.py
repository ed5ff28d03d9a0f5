"""Commands and their outcomes, so that clients learn what the decider made of what they asked.

A command is ``pending`` until its context's decider has answered, then ``accepted`` (with the
fact it published, and its warnings if any) or ``rejected`` (with machine-readable reasons and
the aggregate's state).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Path
from pydantic import BaseModel

from genomebus.gateway.deps import PoolDep
from genomebus.gateway.problems import Problem, problem_responses
from genomebus.infra.readmodels import airlock, datasets, tools

router = APIRouter(tags=["commands"])


class Reason(BaseModel):
    code: str
    message: str


class CommandWarning(Reason):
    """Something an accepted command lacks, e.g. catalogue metadata (``property`` and ``field`` name it)."""

    property: str | None = None
    field: str | None = None


class Command(BaseModel):
    id: UUID
    type: str | None
    dataset_id: str | None
    requested_at: datetime | None
    status: Literal["pending", "accepted", "rejected"]
    outcome_event_id: UUID | None
    outcome_type: str | None
    reasons: list[Reason]
    warnings: list[CommandWarning] = []
    state: str | None
    decided_at: datetime | None


@router.get("/commands/{command_id}", response_model=Command, responses=problem_responses(404, 503))
async def get_command(pool: PoolDep, command_id: Annotated[UUID, Path(description="The command event's id")]
                      ) -> Command:
    """A reception or tool command's status and outcome; 404 until the command or its outcome is projected."""
    async with pool.acquire() as conn:
        row = await datasets.get_command(conn, command_id)
        if row is None:
            row = await tools.get_command(conn, command_id) or await airlock.get_command(conn, command_id)
            if row is not None:
                row = {**row, "dataset_id": None, "warnings": []}
    if row is None:
        raise Problem(404, "command-not-found", f"no command {command_id} on this node (yet)")
    return Command(id=row["command_id"], type=row["type"], dataset_id=row["dataset_id"],
                   requested_at=row["requested_at"], status=row["status"], outcome_event_id=row["outcome_event_id"],
                   outcome_type=row["outcome_type"], reasons=row["reasons"] or [],
                   warnings=row["warnings"] or [], state=row["state"],
                   decided_at=row["decided_at"])
