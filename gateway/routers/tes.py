"""GA4GH TES 1.1 (``/ga4gh/tes/v1``): researchers ask for tasks that run next to the data.

``POST /tasks`` publishes ``task.requested`` as the verified caller and answers its id once the task is
visible (state ``UNKNOWN`` until the scheduler decides: ``QUEUED``, or ``SYSTEM_ERROR`` with the reasons
in its system logs). ``POST /tasks/{id}:cancel`` publishes ``task.cancel_requested``. A caller sees only
their own tasks (an operator sees all); another's is a 404, as if it did not exist. Views as TES says:
MINIMAL (id, state), BASIC (no stdout/stderr, no input contents, no system logs), FULL.
Errors are RFC 7807 (TES names no error body).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from genomebus.gateway.deps import PoolDep, PrincipalDep, PublisherDep, SettingsDep, as_roles
from genomebus.gateway import page_tokens
from genomebus.gateway.problems import Problem, problem_responses
from genomebus.gateway.routers import service_info
from genomebus.infra.identity import Principal
from genomebus.infra.projection import wait_for_position
from genomebus.infra.readmodels import tasks
from genomebus.infra.readmodels.tasks import TasksProjection
from genomebus.schemas.envelope import new_envelope
from genomebus.schemas.tasks import TaskCancelRequested, TaskRequested, TaskSpec, TesState

router = APIRouter(prefix="/ga4gh/tes/v1", tags=["TES"])

TES_VERSION = "1.1.0"
View = Literal["MINIMAL", "BASIC", "FULL"]
TaskIdPath = Annotated[str, Path(pattern=r"^task-[0-9a-f]{32}$", description="The task's id")]
DEFAULT_PAGE, MAX_PAGE = 256, 2047
_AUTH = problem_responses(400, 401, 403, 503)


class CreateTaskResponse(BaseModel):
    id: str


class ListTasksResponse(BaseModel):
    tasks: list[dict[str, Any]]
    next_page_token: str | None = None


class TesServiceInfo(service_info.Service):
    storage: list[str] = []
    tesResources_backend_parameters: list[str] = []  # noqa: N815 - the spec's name


def _visible(principal: Principal, row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None or (row["owner"] != principal.user_id and not principal.operator):
        return None
    return row


def render(row: dict[str, Any], view: View, quarantine: str = "genomebus-quarantine") -> dict[str, Any]:
    """A task as tesTask, in the view asked for."""
    if view == "MINIMAL":
        return {"id": row["task_id"], "state": row["state"]}
    spec = dict(row["spec"])
    body: dict[str, Any] = {"id": row["task_id"], "state": row["state"], **{k: v for k, v in spec.items()
                                                                           if v not in (None, [], {}, ())}}
    body["creation_time"] = row["creation_time"].isoformat()
    logs = []
    for attempt in row["attempts"]:
        log: dict[str, Any] = {"logs": [], "metadata": {"backend": "local"}, "outputs": attempt.get("outputs", [])}
        for key in ("start_time", "end_time"):
            if attempt.get(key):
                log[key] = attempt[key]
        for executor in attempt.get("logs", []):
            entry = {k: v for k, v in executor.items() if v is not None}
            if view == "BASIC":
                entry.pop("stdout", None)
                entry.pop("stderr", None)
            log["logs"].append(entry)
        if view == "FULL":
            log["system_logs"] = attempt.get("system_logs", [])
        logs.append(log)
    if view == "FULL" and row["system_logs"]:  # a rejection: the scheduler's reasons
        logs.append({"logs": [], "outputs": [], "system_logs": row["system_logs"]})
    if logs:
        body["logs"] = logs
    if view == "BASIC" and body.get("inputs"):
        body["inputs"] = [{k: v for k, v in i.items() if k != "content"} for i in body["inputs"]]
    for log in logs:  # tesOutputFileLog.size_bytes is an int64 as a string
        log["outputs"] = [{**o, "size_bytes": str(o["size_bytes"])} for o in log["outputs"]]
    # Outputs never leave the node but through the airlock: their url is where they wait in quarantine
    # (a url the caller gave is kept, as asked, and never written to).
    body["outputs"] = [{**{k: v for k, v in o.items() if v is not None},
                        "url": o.get("url") or f"s3://{quarantine}/{row['task_id']}/{o['path'].removeprefix('/work/')}"}
                       for o in body.get("outputs", [])]
    body["inputs"] = [{k: v for k, v in i.items() if v is not None} for i in body.get("inputs", [])]
    body["executors"] = [{k: v for k, v in e.items() if v is not None} for e in body.get("executors", [])]
    if body.get("resources"):
        body["resources"] = {k: v for k, v in body["resources"].items() if v is not None}
    return body


@router.get("/service-info", response_model=TesServiceInfo, response_model_exclude_none=True,
            responses=problem_responses(503))
async def tes_service_info(settings: SettingsDep) -> TesServiceInfo:
    node = await service_info.service_info(settings)
    return TesServiceInfo(**{
        **node.model_dump(), "id": f"{node.id}.tes", "name": f"{node.name} TES",
        "type": service_info.ServiceType(group="org.ga4gh", artifact="tes", version=TES_VERSION),
        "description": "GA4GH TES 1.1: approved tools run next to the data in a sandbox without network; inputs "
                       "are this node's DRS objects (an active grant needed), outputs go to the airlock"},
        storage=[f"drs://{settings.gateway_url.split('://', 1)[-1]}/"], tesResources_backend_parameters=["wall_s"])


@router.post("/tasks", response_model=CreateTaskResponse, responses=_AUTH)
async def create_task(body: Annotated[TaskSpec, Body()], principal: PrincipalDep, settings: SettingsDep,
                      pool: PoolDep, publisher: PublisherDep) -> CreateTaskResponse:
    """Ask for a task (researchers): its id; the scheduler decides whether it runs (GET it to see)."""
    if not principal.researcher:
        raise Problem(403, "not-researcher", "only a researcher may run tasks")
    task_id = f"task-{uuid.uuid4().hex}"
    envelope = new_envelope(TaskRequested(task_id=task_id, spec=body, as_roles=as_roles(principal)),
                            source=settings.source, actor=principal.user_id)
    published = await publisher.publish(envelope)
    try:  # read-your-writes: the id answered is a task the caller can GET at once
        await wait_for_position(pool, TasksProjection, published.topic, published.partition, published.offset,
                                settings.read_your_writes_timeout_s)
    except TimeoutError:
        pass  # published; visible shortly
    return CreateTaskResponse(id=task_id)


@router.get("/tasks", response_model=ListTasksResponse, response_model_exclude_none=True,
            responses=problem_responses(400, 401, 503))
async def list_tasks(
        principal: PrincipalDep, pool: PoolDep, settings: SettingsDep,
        name_prefix: Annotated[str | None, Query(max_length=1000)] = None,
        state: TesState | None = None,
        tag_key: Annotated[list[str], Query(max_length=50)] = [],  # noqa: B006 - FastAPI's way to a list query
        tag_value: Annotated[list[str], Query(max_length=50)] = [],  # noqa: B006
        page_size: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
        page_token: Annotated[str | None, Query(max_length=100)] = None,
        view: View = "MINIMAL") -> JSONResponse:
    """The caller's tasks, newest first, filtered by name prefix, state and tags (a key alone: present)."""
    if len(tag_value) > len(tag_key):
        raise Problem(400, "bad-tags", "every tag_value needs its tag_key, in the same order")
    tags = {key: (tag_value[i] if i < len(tag_value) else None) for i, key in enumerate(tag_key)}
    offset = page_tokens.offset_of(page_token)
    async with pool.acquire() as conn:
        rows = await tasks.list_tasks(conn, owner=None if principal.operator else principal.user_id,
                                      name_prefix=name_prefix, state=state, tags=tags, offset=offset,
                                      limit=page_size + 1)
    body: dict[str, Any] = {"tasks": [render(r, view, settings.s3_quarantine_bucket) for r in rows[:page_size]]}
    if len(rows) > page_size:
        body["next_page_token"] = page_tokens.page_token(offset + page_size)
    return JSONResponse(body)


@router.get("/tasks/{id}", responses=problem_responses(400, 401, 404, 503),
            response_description="The task (tesTask) in the view asked for")
async def get_task(id: TaskIdPath, principal: PrincipalDep, pool: PoolDep,  # noqa: A002 - the spec's name
                   settings: SettingsDep, view: View = "MINIMAL") -> JSONResponse:
    async with pool.acquire() as conn:
        row = _visible(principal, await tasks.get_task(conn, id))
    if row is None:
        raise Problem(404, "task-not-found", f"you have no task {id} here")
    return JSONResponse(render(row, view, settings.s3_quarantine_bucket))


@router.post("/tasks/{id}:cancel", responses=problem_responses(400, 401, 404, 503),
             response_description="Empty (tesCancelTaskResponse): the cancel is asked for")
async def cancel_task(id: TaskIdPath, principal: PrincipalDep, settings: SettingsDep,  # noqa: A002
                      pool: PoolDep, publisher: PublisherDep) -> JSONResponse:
    """Cancel a task: CANCELING, then CANCELED once its processes are stopped. An ended task stays as it ended."""
    async with pool.acquire() as conn:
        row = _visible(principal, await tasks.get_task(conn, id))
    if row is None:
        raise Problem(404, "task-not-found", f"you have no task {id} here")
    envelope = new_envelope(TaskCancelRequested(task_id=id, as_roles=as_roles(principal)), source=settings.source,
                            actor=principal.user_id)
    await publisher.publish(envelope)
    return JSONResponse({})
