"""The output airlock (``/airlock``): output checkers review finished tasks' outputs; researchers follow theirs.

``GET /airlock/requests`` lists requests oldest first (the checkers' queue): an output checker,
steward, auditor or operator sees all; anyone else their own. ``POST …/{task_id}/approve`` and
``…/reject`` publish ``output.approve_requested`` / ``output.reject_requested`` as the verified
checker and answer once the airlock worker decided: 200 with the request, or the refusal as a
problem document (403 not a checker or the task's owner, 404 unknown, 409 closed, not checked yet
or already approved by you). No decision within ``command_timeout_s``: 202 with the command.
A released output is read through DRS (its ``object_id``) by its owner alone.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from genomebus.gateway.deps import PoolDep, PrincipalDep, PublisherDep, SettingsDep, as_roles
from genomebus.gateway.problems import Problem, problem_responses
from genomebus.gateway.routers.drs import drs_uri
from genomebus.infra.identity import Principal
from genomebus.infra.readmodels import airlock
from genomebus.infra.settings import Settings
from genomebus.schemas.airlock import CheckedFile, OutputApproveRequested, OutputRejectRequested, ReasonText
from genomebus.schemas.envelope import new_envelope

router = APIRouter(prefix="/airlock", tags=["Airlock"])

TaskIdPath = Annotated[str, Path(pattern=r"^task-[0-9a-f]{32}$", description="The task whose outputs are asked for")]
State = Literal["checking", "review", "released", "rejected"]
_NOT_FOUND = {"unknown_request"}
_FORBIDDEN = {"not_output_checker", "own_output"}


class QuarantinedFile(BaseModel):
    path: str
    name: str | None = None
    size: int
    sha256: str


class Approval(BaseModel):
    by: str
    note: str | None = None
    at: datetime


class Rejection(BaseModel):
    by: str = Field(description="The checker, or worker:airlock for the automatic checks")
    reason: str
    at: datetime


class ReleasedFile(BaseModel):
    object_id: str = Field(description="Its DRS id: GET /ga4gh/drs/v1/objects/{object_id}, readable by its owner")
    drs_uri: str
    path: str
    name: str
    size: int
    sha256: str


class Checks(BaseModel):
    verdict: Literal["review", "rejected"]
    files: list[CheckedFile]


class OutputRequest(BaseModel):
    task_id: str
    owner: str
    state: State
    outputs: list[QuarantinedFile]
    checks: Checks | None = None
    approvals: list[Approval]
    approvals_required: int
    rejection: Rejection | None = None
    released: list[ReleasedFile] = []
    created_at: datetime
    updated_at: datetime


class OutputRequests(BaseModel):
    requests: list[OutputRequest]
    total: int


class ApproveBody(BaseModel):
    note: Annotated[str | None, Field(max_length=2000, description="What the checker looked at")] = None


class RejectBody(BaseModel):
    reason: ReasonText


class Pending(BaseModel):
    command_id: UUID
    status: Literal["pending"]
    detail: str


def _reviewer(principal: Principal) -> bool:
    return principal.output_checker or principal.steward or principal.auditor or principal.operator


def _render(settings: Settings, row: dict[str, Any]) -> OutputRequest:
    released = [ReleasedFile(drs_uri=drs_uri(settings, o["object_id"]),
                             **{k: o[k] for k in ("object_id", "path", "name", "size", "sha256")})
                for o in row.get("released") or ()]
    return OutputRequest(
        task_id=row["task_id"], owner=row["owner"], state=row["state"],
        outputs=[QuarantinedFile(**{k: o.get(k) for k in ("path", "name", "size", "sha256")}) for o in row["outputs"]],
        checks=Checks(**row["checks"]) if row.get("checks") else None,
        approvals=[Approval(**a) for a in row["approvals"]], approvals_required=settings.airlock_checkers_required,
        rejection=Rejection(**row["rejection"]) if row.get("rejection") else None, released=released,
        created_at=row["created_at"], updated_at=row["updated_at"])


async def _visible(pool: Any, principal: Principal, task_id: str) -> dict[str, Any]:
    async with pool.acquire() as conn:
        row = await airlock.get_request(conn, task_id)
    if row is None or not (_reviewer(principal) or row["owner"] == principal.user_id):
        raise Problem(404, "request-not-found", f"no output request for {task_id} that you may see")
    return row


@router.get("/requests", response_model=OutputRequests, responses=problem_responses(400, 401, 503))
async def list_requests(principal: PrincipalDep, pool: PoolDep, settings: SettingsDep,
                        state: Annotated[State | None, Query(description="Only requests in this state")] = None,
                        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> OutputRequests:
    """Output requests, oldest first: all of them for a checker, steward, auditor or operator; else your own."""
    owner = None if _reviewer(principal) else principal.user_id
    async with pool.acquire() as conn:
        rows, total = await airlock.list_requests(conn, state=state, owner=owner, limit=limit, offset=offset)
    return OutputRequests(requests=[_render(settings, r) for r in rows], total=total)


@router.get("/requests/{task_id}", response_model=OutputRequest, responses=problem_responses(400, 401, 404, 503))
async def get_request(task_id: TaskIdPath, principal: PrincipalDep, pool: PoolDep,
                      settings: SettingsDep) -> OutputRequest:
    """One request: its files, the automatic checks per file, the approvals, the rejection or the release."""
    return _render(settings, await _visible(pool, principal, task_id))


_DECISION = {202: {"model": Pending, "description": "Published; not decided yet"},
             **problem_responses(400, 401, 403, 404, 409, 503)}


@router.post("/requests/{task_id}/approve", response_model=OutputRequest, responses=_DECISION)
async def approve(task_id: TaskIdPath, principal: PrincipalDep, pool: PoolDep, publisher: PublisherDep,
                  settings: SettingsDep, body: Annotated[ApproveBody | None, Body()] = None) -> Any:
    """An output checker (not the task's owner) approves; the last approval needed releases the outputs."""
    _must_check(principal)
    command = OutputApproveRequested(task_id=task_id, note=body.note if body else None, as_roles=as_roles(principal))
    return await _decide(command, principal, pool, publisher, settings)


@router.post("/requests/{task_id}/reject", response_model=OutputRequest, responses=_DECISION)
async def reject(task_id: TaskIdPath, body: RejectBody, principal: PrincipalDep, pool: PoolDep,
                 publisher: PublisherDep, settings: SettingsDep) -> Any:
    """An output checker (not the task's owner) rejects, with a reason the researcher sees: the request ends."""
    _must_check(principal)
    command = OutputRejectRequested(task_id=task_id, reason=body.reason, as_roles=as_roles(principal))
    return await _decide(command, principal, pool, publisher, settings)


def _must_check(principal: Principal) -> None:
    if not principal.output_checker:
        raise Problem(403, "not-output-checker", "only an output checker of this node may approve or reject "
                      "outputs", reason="not_output_checker")


async def _decide(command: OutputApproveRequested | OutputRejectRequested, principal: Principal, pool: Any,
                  publisher: Any, settings: Settings) -> Any:
    envelope = new_envelope(command, source=settings.source, actor=principal.user_id, subject=command.task_id)
    await publisher.publish(envelope)
    deadline = time.monotonic() + settings.command_timeout_s
    delay = 0.01
    while True:
        async with pool.acquire() as conn:
            row = await airlock.get_command(conn, envelope.id)
        if (row is not None and row["status"] != "pending") or time.monotonic() > deadline:
            break
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)
    if row is None or row["status"] == "pending":
        return JSONResponse(Pending(command_id=envelope.id, status="pending", detail=(
            "the command is published and not decided yet; poll its status")).model_dump(mode="json"),
            status_code=202, headers={"Location": f"/commands/{envelope.id}"})
    if row["status"] == "rejected":
        reasons = row.get("reasons") or []
        codes = {r["code"] for r in reasons}
        status = 404 if codes & _NOT_FOUND else 403 if codes & _FORBIDDEN else 409
        raise Problem(status, next(iter(sorted(codes)), "refused").replace("_", "-"),
                      "; ".join(r["message"] for r in reasons) or "the command was refused", reasons=reasons,
                      state=row.get("state"))
    async with pool.acquire() as conn:  # projected in the same transaction as the command's outcome
        request = await airlock.get_request(conn, command.task_id)
    if request is None:  # pragma: no cover - a decided command always names a request
        raise Problem(503, "request-unavailable", "the request cannot be read right now; try again")
    return _render(settings, request)
