"""Data access applications and grants: researchers apply, DACs decide, stewards veto.

Every change is a command on ``genomebus.access.commands``, published with the caller's verified
identity and roles (``AsRoles``); the access decider decides it. The gateway waits for the outcome
(read from the ``access`` read model, so the answer shows the application as the decision left
it) and answers: 201/200 with the application, or the refusal as a problem document (403 wrong
role, 404 unknown, 409 an illegal transition with the current ``state``). If no decision comes
within ``command_timeout_s``, 202 with the command to poll at ``/access/commands/{id}``.
A wrong role is refused here, before anything is published, with 403.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from genomebus.gateway.deps import PoolDep, PrincipalDep, PublisherDep, SettingsDep, as_roles
from genomebus.gateway.problems import Problem, problem_responses
from genomebus.infra.identity import Principal
from genomebus.infra.readmodels import access
from genomebus.schemas.access import (
    AccessApplyRequested,
    AccessCloseRequested,
    AccessDecideRequested,
    AccessRevokeRequested,
    AccessSubmitRequested,
    AccessVetoRequested,
    ApplicationText,
    UserId,
    veto_subject,
)
from genomebus.schemas.base import EventModel
from genomebus.schemas.duo import ResearchUse
from genomebus.schemas.envelope import new_envelope
from genomebus.schemas.reception import DatasetId

router = APIRouter(prefix="/access", tags=["access"])

MAX_OFFSET = 2**31 - 1
_NOT_FOUND = {"unknown_application", "unknown_dataset", "not_in_application"}
_FORBIDDEN = {"not_applicant", "not_dac_member", "not_steward", "not_researcher", "not_allowed"}
_BAD_REQUEST = {"expiry_required", "expiry_in_past", "expiry_too_far", "reason_required"}


# -- bodies ---------------------------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApplicationRequest(_Body):
    datasets: Annotated[list[DatasetId], Field(min_length=1, max_length=50)]
    project_title: Annotated[str, Field(min_length=1, max_length=500, pattern=r"\S")]
    purpose: Annotated[str, Field(min_length=1, max_length=10000, pattern=r"\S")]
    research_use: ResearchUse
    collaborators: Annotated[list[UserId], Field(max_length=100)] = []


class SubmitRequest(_Body):
    changes: ApplicationText | None = Field(None, description="A resubmission may change the application's text")


class DecisionRequest(_Body):
    dataset_id: DatasetId
    decision: Literal["approve", "reject", "return"]
    expires_at: datetime | None = Field(None, description="Required to approve: when the grant ends")
    reason: Annotated[str | None, Field(max_length=2000)] = None


class DatasetReason(_Body):
    dataset_id: DatasetId
    reason: Annotated[str, Field(min_length=1, max_length=2000, pattern=r"\S")]


class CentralVetoRequest(DatasetReason):
    user_id: UserId


class CloseRequest(_Body):
    reason: Annotated[str | None, Field(max_length=2000)] = None


# -- answers --------------------------------------------------------------------------------------------


class Finding(BaseModel):
    code: str
    term: str | None = None
    message: str


class ApplicationDataset(BaseModel):
    dataset_id: str
    dac_id: str
    state: str
    grant_id: UUID | None
    expires_at: datetime | None
    decided_at: datetime | None
    decided_by: str | None
    reason: str | None
    verdict: str | None
    findings: list[Finding]


class HistoryEvent(BaseModel):
    event_id: str
    type: str
    time: datetime
    actor: str


class Application(BaseModel):
    id: UUID
    applicant: str
    project_title: str
    purpose: str
    research_use: dict[str, Any]
    collaborators: list[str]
    state: str
    round: int
    created_at: datetime
    updated_at: datetime
    datasets: list[ApplicationDataset]


class ApplicationDetail(Application):
    history: list[HistoryEvent]


class ApplicationPage(BaseModel):
    applications: list[Application]
    total: int
    limit: int
    offset: int


class Grant(BaseModel):
    grant_id: UUID
    application_id: UUID
    dataset_id: str
    user_id: str
    dac_id: str
    state: str
    decided_at: datetime | None
    expires_at: datetime | None


class Pending(BaseModel):
    command_id: UUID
    status: Literal["pending"]
    detail: str


class CommandStatus(BaseModel):
    command_id: UUID
    type: str | None
    status: Literal["pending", "accepted", "rejected"]
    outcome_type: str | None
    reasons: list[dict[str, str]]
    state: str | None
    decided_at: datetime | None


# -- routes ---------------------------------------------------------------------------------------------

ApplicationIdPath = Annotated[UUID, Path(description="The application's id")]
_CHANGE = problem_responses(400, 401, 403, 404, 409, 503)


@router.post("/applications", status_code=201, response_model=ApplicationDetail,
             responses={202: {"model": Pending, "description": "Published; not decided yet"},
                        **problem_responses(400, 401, 403, 404, 409, 503)})
async def apply(body: ApplicationRequest, principal: PrincipalDep, pool: PoolDep,
                publisher: PublisherDep, settings: SettingsDep) -> Any:
    """Open an application (a draft) for released datasets of this node; researchers only."""
    if not principal.researcher:
        raise Problem(403, "not-researcher", "only a researcher may apply for access")
    application_id = uuid.uuid4()
    command = AccessApplyRequested(application_id=application_id, datasets=tuple(dict.fromkeys(body.datasets)),
                                   project_title=body.project_title, purpose=body.purpose,
                                   research_use=body.research_use, collaborators=tuple(body.collaborators),
                                   as_roles=_roles(principal))
    return await _decide(command, principal, pool, publisher, settings, application_id, status=201)


@router.get("/applications", response_model=ApplicationPage, responses=problem_responses(401, 503))
async def list_applications(principal: PrincipalDep, pool: PoolDep,
                            limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                            offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0) -> ApplicationPage:
    """The applications the caller may see: their own; their DACs' datasets'; all for a steward or auditor."""
    everything = principal.steward or principal.auditor
    async with pool.acquire() as conn:
        rows, total = await access.list_applications(
            conn, applicant=principal.user_id, dacs=sorted(principal.dacs), everything=everything,
            limit=limit, offset=offset)
    return ApplicationPage(applications=[_application(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/applications/{application_id}", response_model=ApplicationDetail,
            responses=problem_responses(401, 403, 404, 503))
async def get_application(application_id: ApplicationIdPath, principal: PrincipalDep, pool: PoolDep
                          ) -> ApplicationDetail:
    """One application with each dataset's state, the DUO check's verdict, and its history."""
    async with pool.acquire() as conn:
        row = await access.get_application(conn, application_id)
    if row is None:
        raise Problem(404, "application-not-found", f"no application {application_id} on this node")
    _may_see(principal, row)
    return _detail(row)


@router.post("/applications/{application_id}/submit", response_model=ApplicationDetail, responses={
    202: {"model": Pending, "description": "Published; not decided yet"}, **_CHANGE})
async def submit(application_id: ApplicationIdPath, principal: PrincipalDep, pool: PoolDep,
                 publisher: PublisherDep, settings: SettingsDep,
                 body: Annotated[SubmitRequest | None, Body()] = None) -> Any:
    """Submit a draft, or resubmit after a return (optionally with a changed text); the applicant only."""
    command = AccessSubmitRequested(application_id=application_id, changes=body.changes if body else None,
                                    as_roles=_roles(principal))
    return await _decide(command, principal, pool, publisher, settings, application_id)


@router.post("/applications/{application_id}/decision", response_model=ApplicationDetail, responses={
    202: {"model": Pending, "description": "Published; not decided yet"}, **_CHANGE})
async def decide(application_id: ApplicationIdPath, body: DecisionRequest,
                 principal: PrincipalDep, pool: PoolDep, publisher: PublisherDep, settings: SettingsDep) -> Any:
    """A member of the dataset's DAC approves (with an expiry), rejects or returns (with a reason) one dataset."""
    if not principal.dacs:
        raise Problem(403, "not-dac-member", "only a member of the dataset's Data Access Committee may decide")
    command = AccessDecideRequested(application_id=application_id, dataset_id=body.dataset_id,
                                    decision=body.decision, expires_at=body.expires_at, reason=body.reason,
                                    as_roles=_roles(principal))
    return await _decide(command, principal, pool, publisher, settings, application_id)


@router.post("/applications/{application_id}/veto", response_model=ApplicationDetail, responses={
    202: {"model": Pending, "description": "Published; not decided yet"}, **_CHANGE})
async def veto(application_id: ApplicationIdPath, body: DatasetReason,
               principal: PrincipalDep, pool: PoolDep, publisher: PublisherDep, settings: SettingsDep) -> Any:
    """This node's steward vetoes a dataset of this node in an application; it overrides any approval."""
    if not principal.steward:
        raise Problem(403, "not-steward", f"only a data steward of node {settings.node_id} may veto")
    async with pool.acquire() as conn:
        row = await access.get_application(conn, application_id)
    if row is None:
        raise Problem(404, "application-not-found", f"no application {application_id} on this node")
    command = AccessVetoRequested(application_id=application_id, dataset_id=body.dataset_id,
                                  user_id=row["applicant"], reason=body.reason, as_roles=_roles(principal))
    return await _decide(command, principal, pool, publisher, settings, application_id,
                         subject=str(application_id))


@router.post("/vetoes", status_code=201, response_model=CommandStatus, responses={
    202: {"model": Pending, "description": "Published; not decided yet"}, **_CHANGE})
async def central_veto(body: CentralVetoRequest, principal: PrincipalDep, pool: PoolDep,
                       publisher: PublisherDep, settings: SettingsDep) -> Any:
    """Veto a user's access to a dataset of this node granted elsewhere (a central access service's visa)."""
    if not principal.steward:
        raise Problem(403, "not-steward", f"only a data steward of node {settings.node_id} may veto")
    command = AccessVetoRequested(dataset_id=body.dataset_id, user_id=body.user_id, reason=body.reason,
                                  as_roles=_roles(principal))
    return await _decide(command, principal, pool, publisher, settings, None, status=201,
                         subject=veto_subject(body.dataset_id, body.user_id))


@router.post("/applications/{application_id}/revoke", response_model=ApplicationDetail, responses={
    202: {"model": Pending, "description": "Published; not decided yet"}, **_CHANGE})
async def revoke(application_id: ApplicationIdPath, body: DatasetReason,
                 principal: PrincipalDep, pool: PoolDep, publisher: PublisherDep, settings: SettingsDep) -> Any:
    """End an active grant before its expiry: the dataset's DAC or a steward."""
    if not (principal.steward or principal.dacs):
        raise Problem(403, "not-allowed", "only the dataset's DAC or a steward may revoke a grant")
    command = AccessRevokeRequested(application_id=application_id, dataset_id=body.dataset_id, reason=body.reason,
                                    as_roles=_roles(principal))
    return await _decide(command, principal, pool, publisher, settings, application_id)


@router.post("/applications/{application_id}/close", response_model=ApplicationDetail, responses={
    202: {"model": Pending, "description": "Published; not decided yet"}, **_CHANGE})
async def close(application_id: ApplicationIdPath, principal: PrincipalDep, pool: PoolDep,
                publisher: PublisherDep, settings: SettingsDep,
                body: Annotated[CloseRequest | None, Body()] = None) -> Any:
    """Close an application (the applicant or a steward); its active grants end."""
    command = AccessCloseRequested(application_id=application_id, reason=body.reason if body else None,
                                   as_roles=_roles(principal))
    return await _decide(command, principal, pool, publisher, settings, application_id)


@router.get("/grants", response_model=list[Grant], responses=problem_responses(401, 403, 503))
async def list_grants(principal: PrincipalDep, pool: PoolDep,
                      dataset_id: Annotated[DatasetId | None, Query(description="DAC members and stewards only")] = None,
                      active: Annotated[bool, Query(description="Only grants active now")] = True) -> list[Grant]:
    """The caller's grants; a steward, an auditor or a DAC member may list a dataset's grants instead."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        if dataset_id is None:
            rows = await access.grants(conn, user_id=principal.user_id, now=now, active_only=active)
        else:
            rows = await access.grants(conn, dataset_id=dataset_id, now=now, active_only=active)
            if not (principal.steward or principal.auditor or {r["dac_id"] for r in rows} <= principal.dacs):
                raise Problem(403, "not-allowed", f"only {dataset_id}'s DAC, a steward or an auditor may list its "
                              "grants")
    return [Grant(**{k: r.get(k) for k in Grant.model_fields}) for r in rows]


@router.get("/commands/{command_id}", response_model=CommandStatus, responses=problem_responses(401, 404, 503))
async def get_command(command_id: Annotated[UUID, Path()], principal: PrincipalDep, pool: PoolDep) -> CommandStatus:
    """An access command's status and outcome (for a 202 answer)."""
    async with pool.acquire() as conn:
        row = await access.get_command(conn, command_id)
    if row is None:
        raise Problem(404, "command-not-found", f"no access command {command_id} on this node (yet)")
    return _command_status(command_id, row)


# -- helpers --------------------------------------------------------------------------------------------


_roles = as_roles


async def _decide(command: EventModel, principal: Principal, pool: Any, publisher: Any,
                  settings: Any, application_id: UUID | None, *, status: int = 200,
                  subject: str | None = None) -> Any:
    """Publish the command as the caller, wait for the decider, answer with what it decided."""
    envelope = new_envelope(command, source=settings.source, actor=principal.user_id, subject=subject)
    await publisher.publish(envelope)
    row = await _outcome(pool, envelope.id, settings.command_timeout_s)
    if row is None or row["status"] == "pending":
        return JSONResponse(Pending(command_id=envelope.id, status="pending", detail=(
            "the command is published and not decided yet; poll its status")).model_dump(mode="json"),
            status_code=202, headers={"Location": f"/access/commands/{envelope.id}"})
    if row["status"] == "rejected":
        raise _rejection(row)
    if application_id is None:
        return JSONResponse(_command_status(envelope.id, row).model_dump(mode="json"), status_code=status)
    async with pool.acquire() as conn:
        app = await access.get_application(conn, application_id)
    headers = {"Location": f"/access/applications/{application_id}"} if status == 201 else None
    return JSONResponse(_detail(app).model_dump(mode="json"), status_code=status, headers=headers)


async def _outcome(pool: Any, command_id: UUID, timeout: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        async with pool.acquire() as conn:
            row = await access.get_command(conn, command_id)
        if (row is not None and row["status"] != "pending") or time.monotonic() > deadline:
            return row
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)


def _rejection(row: dict[str, Any]) -> Problem:
    reasons = row.get("reasons") or []
    codes = {r["code"] for r in reasons}
    status = (404 if codes & _NOT_FOUND else 403 if codes & _FORBIDDEN else 400 if codes <= _BAD_REQUEST and codes
              else 409)
    detail = "; ".join(r["message"] for r in reasons) or "the command was refused"
    return Problem(status, next(iter(sorted(codes)), "refused").replace("_", "-"), detail, reasons=reasons,
                   state=row.get("state"))


def _may_see(principal: Principal, row: dict[str, Any]) -> None:
    if principal.steward or principal.auditor or principal.user_id == row["applicant"]:
        return
    if principal.user_id in (row.get("collaborators") or ()):
        return
    if {d["dac_id"] for d in row["datasets"]} & principal.dacs:
        return
    raise Problem(403, "not-allowed", "only the applicant, the collaborators, the datasets' DACs, stewards and "
                  "auditors may see this application")


def _application(row: dict[str, Any]) -> Application:
    return Application(**{k: row.get(k) for k in Application.model_fields if k != "datasets"},
                       datasets=[_dataset(d) for d in row.get("datasets") or ()])


def _dataset(row: dict[str, Any]) -> ApplicationDataset:
    return ApplicationDataset(**{k: row.get(k) for k in ApplicationDataset.model_fields if k != "findings"},
                              findings=row.get("findings") or [])


def _detail(row: dict[str, Any]) -> ApplicationDetail:
    history = [HistoryEvent(**(vars(h) if not isinstance(h, dict) else h)) for h in row.get("history") or ()]
    return ApplicationDetail(**_application(row).model_dump(), history=history)


def _command_status(command_id: UUID, row: dict[str, Any]) -> CommandStatus:
    return CommandStatus(command_id=command_id, type=row.get("type"), status=row["status"],
                         outcome_type=row.get("outcome_type"), reasons=row.get("reasons") or [],
                         state=row.get("state"), decided_at=row.get("decided_at"))
