"""GA4GH WES 1.1 (``/ga4gh/wes/v1``): researchers run approved CWL workflows next to the data.

``POST /runs`` (multipart/form-data, as WES says) publishes ``workflow.requested`` as the verified
caller and answers the run id once the run is visible. ``workflow_url`` is the TRS URL of an approved
workflow version of this node; ``workflow_params`` is the CWL job object, its files DRS URIs of this
node's objects; attachments are accepted only if each is a file of that version, byte for byte (the
version's own files are what runs). The scheduler admits the run as it admits a task (grants,
audited; the approved version; limits) and cwltool runs it in the task sandbox (``infra/cwl.py``);
each job cwltool ran is a WES task with its log. Outputs go to the airlock as a task's do. A caller
sees only their own runs (an operator all); another's is a 404. Errors are WES ``ErrorResponse``
(``msg``, ``status_code``) with the RFC 7807 members beside it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from importlib import metadata
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ValidationError

from genomebus.gateway.deps import PoolDep, PrincipalDep, PublisherDep, SettingsDep, as_roles
from genomebus.gateway import page_tokens
from genomebus.gateway.problems import Problem, problem_responses
from genomebus.gateway.routers import service_info
from genomebus.infra import cwl
from genomebus.infra.identity import Principal
from genomebus.infra.projection import wait_for_position
from genomebus.infra.readmodels import tools, workflows
from genomebus.infra.readmodels.workflows import WorkflowsProjection
from genomebus.infra.settings import Settings
from genomebus.schemas.envelope import new_envelope
from genomebus.schemas.tasks import TaskCancelRequested
from genomebus.schemas.workflows import RunRequest, WorkflowRequested

router = APIRouter(prefix="/ga4gh/wes/v1", tags=["WES"])

WES_VERSION = "1.1.0"
RunIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="The run's id")]
TaskIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{32}-[0-9]{1,6}$", description="A task (step job) of the run")]
PageSize = Annotated[int, Query(ge=1, le=1000, description="At most this many")]
PageToken = Annotated[str | None, Query(max_length=100, description="From the previous page's next_page_token")]
DEFAULT_PAGE = 100
MAX_ATTACHMENT_BYTES = 1 << 20
FORM_FIELDS = {"workflow_params", "workflow_type", "workflow_type_version", "tags", "workflow_engine",
               "workflow_engine_version", "workflow_engine_parameters", "workflow_url", "workflow_attachment"}


class RunId(BaseModel):
    run_id: str


class State(BaseModel):
    run_id: str
    state: str


class RunSummary(State):
    start_time: str | None = None
    end_time: str | None = None
    tags: dict[str, str]


class RunListResponse(BaseModel):
    runs: list[RunSummary]
    next_page_token: str = ""


class Log(BaseModel):
    name: str | None = None
    cmd: list[str] | None = None
    start_time: str | None = None
    end_time: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    exit_code: int | None = None
    system_logs: list[str] | None = None


class TaskLog(Log):
    id: str
    name: str
    tes_uri: str | None = None


class RunLog(BaseModel):
    run_id: str
    request: dict[str, Any]
    state: str
    run_log: Log
    task_logs_url: str
    task_logs: list[TaskLog] | None = None
    outputs: dict[str, Any]


class TaskListResponse(BaseModel):
    task_logs: list[TaskLog]
    next_page_token: str = ""


class WorkflowTypeVersion(BaseModel):
    workflow_type_version: list[str]


class WorkflowEngineVersion(BaseModel):
    workflow_engine_version: list[str]


class DefaultWorkflowEngineParameter(BaseModel):
    name: str
    type: str
    default_value: str


class WesServiceInfo(service_info.Service):
    workflow_type_versions: dict[str, WorkflowTypeVersion]
    supported_wes_versions: list[str]
    supported_filesystem_protocols: list[str]
    workflow_engine_versions: dict[str, WorkflowEngineVersion]
    default_workflow_engine_parameters: list[DefaultWorkflowEngineParameter]
    system_state_counts: dict[str, int]
    auth_instructions_url: str
    tags: dict[str, str]


def _time(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _engine_version() -> str:
    try:
        return metadata.version("cwltool")
    except metadata.PackageNotFoundError:  # pragma: no cover - a dependency of the package
        return "unknown"


async def _visible(pool: Any, principal: Principal, run_id: str) -> dict[str, Any]:
    async with pool.acquire() as conn:
        row = await workflows.get_run(conn, run_id)
    if row is None or (row["owner"] != principal.user_id and not principal.operator):
        raise Problem(404, "run-not-found", f"you have no run {run_id} here")
    return row


def _task_logs(row: dict[str, Any]) -> list[TaskLog]:
    return [TaskLog(id=s["id"], name=s["name"], cmd=s.get("cmd") or None, start_time=_time_text(s.get("start_time")),
                    end_time=_time_text(s.get("end_time")), exit_code=s.get("exit_code"),
                    system_logs=list(s.get("system_logs") or ()) or None)
            for s in row["steps"]]


def _time_text(value: str | None) -> str | None:
    return value.replace("+00:00", "Z") if isinstance(value, str) else value


@router.get("/service-info", response_model=WesServiceInfo, response_model_exclude_none=True,
            responses=problem_responses(500, 503))
async def wes_service_info(settings: SettingsDep, pool: PoolDep) -> WesServiceInfo:
    node = await service_info.service_info(settings)
    async with pool.acquire() as conn:
        counts = await workflows.state_counts(conn)
    return WesServiceInfo(**{
        **node.model_dump(), "id": f"{node.id}.wes", "name": f"{node.name} WES",
        "type": service_info.ServiceType(group="org.ga4gh", artifact="wes", version=WES_VERSION),
        "description": "GA4GH WES 1.1: approved CWL workflows run by cwltool next to the data, in the task sandbox "
                       "without network; inputs are this node's DRS objects (an active grant needed); outputs go to "
                       "the airlock"},
        workflow_type_versions={"CWL": WorkflowTypeVersion(workflow_type_version=list(cwl.CWL_VERSIONS))},
        supported_wes_versions=[WES_VERSION], supported_filesystem_protocols=["drs"],
        workflow_engine_versions={cwl.ENGINE: WorkflowEngineVersion(workflow_engine_version=[_engine_version()])},
        default_workflow_engine_parameters=[DefaultWorkflowEngineParameter(
            name="wall_s", type="int", default_value=str(settings.tes_max_wall_s))],
        system_state_counts=counts, auth_instructions_url=f"{settings.gateway_url}/docs",
        tags={"workflow_url": "the TRS URL of a workflow version approved at this node",
              "inputs": "CWL File locations are DRS URIs of this node's objects (drs://host/id)"})


@router.get("/runs", response_model=RunListResponse, responses=problem_responses(400, 401, 403, 500, 503))
async def list_runs(principal: PrincipalDep, pool: PoolDep, page_size: PageSize = DEFAULT_PAGE,
                    page_token: PageToken = None) -> RunListResponse:
    """Your runs, newest first (an operator: everyone's)."""
    offset = page_tokens.offset_of(page_token)
    async with pool.acquire() as conn:
        rows = await workflows.list_runs(conn, owner=None if principal.operator else principal.user_id,
                                         offset=offset, limit=page_size + 1)
    runs = [RunSummary(run_id=r["run_id"], state=r["state"], start_time=_time(r["start_time"]),
                       end_time=_time(r["end_time"]), tags=r["tags"]) for r in rows[:page_size]]
    more = len(rows) > page_size
    return RunListResponse(runs=runs, next_page_token=page_tokens.page_token(offset + page_size) if more else "")


_RUN_BODY = {"requestBody": {"content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["workflow_type", "workflow_type_version", "workflow_url"],
    "properties": {**{name: {"type": "string"} for name in sorted(FORM_FIELDS - {"workflow_attachment"})},
                   "workflow_attachment": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}},
    "required": True}}


@router.post("/runs", response_model=RunId, openapi_extra=_RUN_BODY,
             responses=problem_responses(400, 401, 403, 415, 500, 503))
async def run_workflow(request: Request, principal: PrincipalDep, settings: SettingsDep, pool: PoolDep,
                       publisher: PublisherDep) -> RunId:
    """Ask for a run (researchers): its id; the scheduler decides whether it runs (GET it to see)."""
    if not principal.researcher:
        raise Problem(403, "not-researcher", "only a researcher may run workflows")
    run_request, attachments = await _read_form(request)
    async with pool.acquire() as conn:
        await _check_attachments(settings, conn, run_request.workflow_url, attachments)
    run_id = uuid.uuid4().hex
    envelope = new_envelope(WorkflowRequested(run_id=run_id, request=run_request, as_roles=as_roles(principal)),
                            source=settings.source, actor=principal.user_id, subject=cwl.run_task_id(run_id))
    published = await publisher.publish(envelope)
    try:  # read-your-writes: the id answered is a run the caller can GET at once
        await wait_for_position(pool, WorkflowsProjection, published.topic, published.partition, published.offset,
                                settings.read_your_writes_timeout_s)
    except TimeoutError:
        pass
    return RunId(run_id=run_id)


async def _read_form(request: Request) -> tuple[RunRequest, dict[str, bytes]]:
    if not request.headers.get("content-type", "").startswith(("multipart/form-data",
                                                                "application/x-www-form-urlencoded")):
        raise Problem(415, "not-a-form", "POST /runs takes multipart/form-data, as WES 1.1 says (or a form "
                      "without attachments, urlencoded)")
    try:
        form = await request.form(max_files=100, max_fields=50, max_part_size=MAX_ATTACHMENT_BYTES)
    except Exception as exc:  # noqa: BLE001 - the multipart parser's errors, all a malformed body
        raise Problem(400, "bad-form", f"the form cannot be read: {type(exc).__name__}") from None
    unknown = sorted(set(form.keys()) - FORM_FIELDS)
    if unknown:
        raise Problem(400, "unknown-field", f"unknown form field {unknown[0]!r}; WES 1.1 names "
                      f"{', '.join(sorted(FORM_FIELDS))}")
    fields: dict[str, Any] = {}
    for name in FORM_FIELDS - {"workflow_attachment"}:
        values = form.getlist(name)
        if len(values) > 1 or (values and not isinstance(values[0], str)):
            raise Problem(400, "bad-field", f"{name} must be given once, as text")
        if values:
            fields[name] = values[0]
    for name in ("workflow_params", "tags", "workflow_engine_parameters"):
        if name in fields:
            try:
                fields[name] = json.loads(fields[name])
            except ValueError:
                raise Problem(400, "bad-json", f"{name} is not JSON") from None
            if not isinstance(fields[name], dict):
                raise Problem(400, "bad-json", f"{name} must be a JSON object")
    for name in ("workflow_type", "workflow_type_version", "workflow_url"):
        if not fields.get(name):
            raise Problem(400, "missing-field", f"{name} is required")
    if fields["workflow_type"] != "CWL":
        raise Problem(400, "unsupported-workflow-type", f"workflow_type {fields['workflow_type']!r}: this node runs "
                      "CWL only")
    if fields["workflow_type_version"] not in cwl.CWL_VERSIONS:
        raise Problem(400, "unsupported-workflow-type-version", f"workflow_type_version must be one of "
                      f"{', '.join(cwl.CWL_VERSIONS)}")
    if fields.get("workflow_engine") not in (None, cwl.ENGINE):
        raise Problem(400, "unsupported-engine", f"this node's engine is {cwl.ENGINE}")
    if fields.get("workflow_engine_version") not in (None, _engine_version()):
        raise Problem(400, "unsupported-engine-version", f"this node runs {cwl.ENGINE} {_engine_version()}")
    engine_parameters = fields.get("workflow_engine_parameters") or {}
    bad = sorted(k for k, v in engine_parameters.items() if k not in cwl.ENGINE_PARAMETERS or not isinstance(v, str))
    if bad:
        raise Problem(400, "bad-engine-parameter", f"workflow_engine_parameters {bad[0]!r} is not accepted here; "
                      f"accepted (as strings): {', '.join(cwl.ENGINE_PARAMETERS)}")
    try:
        run_request = RunRequest(**fields)
        cwl.stage_params(run_request.workflow_params)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise Problem(400, "bad-request", f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    except cwl.RunRefused as exc:
        raise Problem(400, "bad-workflow-params", str(exc), reasons=[r.model_dump() for r in exc.reasons]) from None
    attachments: dict[str, bytes] = {}
    for part in form.getlist("workflow_attachment"):
        if isinstance(part, str):
            raise Problem(400, "bad-attachment", "workflow_attachment must be files")
        name = part.filename or ""
        if not name or name.startswith("/") or ".." in name.split("/"):
            raise Problem(400, "bad-attachment", f"attachment name {name!r}: a relative path without '..' is needed")
        attachments[name] = await part.read()
    return run_request, attachments


async def _check_attachments(settings: Settings, conn: Any, workflow_url: str, attachments: dict[str, bytes]) -> None:
    """Attachments are refused unless each is a file of the approved version, byte for byte."""
    if not attachments:
        return
    ref = tools.parse_trs_url(settings, workflow_url)
    version = await tools.runnable_version(conn, *ref) if ref else None
    if version is None:
        raise Problem(400, "attachments-without-version", "attachments are accepted only beside an approved "
                      "workflow version of this node, and only its own files")
    digests = {f["path"]: f.get("sha256") or hashlib.sha256(f["content"].encode()).hexdigest()
               for f in version["files"]}
    for name, content in attachments.items():
        if digests.get(name) != hashlib.sha256(content).hexdigest():
            raise Problem(400, "attachment-not-in-version", f"attachment {name} is not a file of the approved "
                          f"version (or differs from it); only the version's own files run here")


@router.get("/runs/{run_id}", response_model=RunLog, response_model_exclude_none=True,
            responses=problem_responses(400, 401, 403, 404, 500, 503))
async def get_run_log(run_id: RunIdPath, principal: PrincipalDep, pool: PoolDep, settings: SettingsDep) -> RunLog:
    """The run: its request, state, the engine's log, each task's (step job's) log and the outputs."""
    row = await _visible(pool, principal, run_id)
    request = {k: v for k, v in row["request"].items() if v not in (None, {}, [])}
    return RunLog(
        run_id=run_id, request=request, state=row["state"],
        run_log=Log(name=f"WES run {run_id}", cmd=cwl.engine_command("<primary descriptor>"),
                    start_time=_time(row["start_time"]), end_time=_time(row["end_time"]), exit_code=row["exit_code"],
                    system_logs=list(row["system_logs"]) or None),
        task_logs_url=f"{settings.gateway_url}/ga4gh/wes/v1/runs/{run_id}/tasks",
        task_logs=_task_logs(row), outputs=row["outputs"])


@router.get("/runs/{run_id}/status", response_model=State, responses=problem_responses(400, 401, 403, 404, 500, 503))
async def get_run_status(run_id: RunIdPath, principal: PrincipalDep, pool: PoolDep) -> State:
    row = await _visible(pool, principal, run_id)
    return State(run_id=run_id, state=row["state"])


@router.get("/runs/{run_id}/tasks", response_model=TaskListResponse, response_model_exclude_none=True,
            responses=problem_responses(400, 401, 403, 404, 500, 503))
async def list_run_tasks(run_id: RunIdPath, principal: PrincipalDep, pool: PoolDep,
                         page_size: PageSize = DEFAULT_PAGE, page_token: PageToken = None) -> TaskListResponse:
    """Each job cwltool ran (a step, or one element of a scattered step), in the order they started."""
    row = await _visible(pool, principal, run_id)
    offset = page_tokens.offset_of(page_token)
    logs = _task_logs(row)
    return TaskListResponse(task_logs=logs[offset:offset + page_size],
                            next_page_token=page_tokens.page_token(offset + page_size)
                            if len(logs) > offset + page_size else "")


@router.get("/runs/{run_id}/tasks/{task_id}", response_model=TaskLog, response_model_exclude_none=True,
            responses=problem_responses(400, 401, 403, 404, 500, 503))
async def get_run_task(run_id: RunIdPath, task_id: TaskIdPath, principal: PrincipalDep, pool: PoolDep) -> TaskLog:
    row = await _visible(pool, principal, run_id)
    found = next((t for t in _task_logs(row) if t.id == task_id), None)
    if found is None:
        raise Problem(404, "task-not-found", f"run {run_id} has no task {task_id}")
    return found


@router.post("/runs/{run_id}/cancel", response_model=RunId, responses=problem_responses(400, 401, 403, 404, 500, 503))
async def cancel_run(run_id: RunIdPath, principal: PrincipalDep, pool: PoolDep, publisher: PublisherDep,
                     settings: SettingsDep) -> RunId:
    """Cancel a run: its engine task is cancelled (CANCELING, then CANCELED once every process has stopped)."""
    row = await _visible(pool, principal, run_id)
    envelope = new_envelope(TaskCancelRequested(task_id=row["task_id"], as_roles=as_roles(principal)),
                            source=settings.source, actor=principal.user_id, subject=row["task_id"])
    await publisher.publish(envelope)
    return RunId(run_id=run_id)
