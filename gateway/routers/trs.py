"""GA4GH TRS 2 (``/ga4gh/trs/v2``): the tools and workflows registered at this node, read-only.

Served from the ``tools`` read model; the tool registry decides what is in it (``genomebus tool register /
approve / withdraw``). Tool metadata is public, like the rest of the node's metadata: no credential is
needed. A version's approval for execution here shows as ``is_production`` and ``verified`` (with
``verified_source`` naming this node); a withdrawn version stays readable, with ``is_production`` false
and ``verified`` false, and no task may name it. Errors are TRS ``Error`` bodies (``code``, ``message``)
with the RFC 7807 members beside them.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel

from genomebus.gateway.deps import PoolDep, SettingsDep
from genomebus.gateway.problems import Problem, problem_responses
from genomebus.gateway.routers import service_info
from genomebus.infra.readmodels import tools
from genomebus.infra.settings import Settings

router = APIRouter(prefix="/ga4gh/trs/v2", tags=["TRS"])

TRS_VERSION = "2.0.1"
DescriptorType = Literal["CWL", "WDL", "NFL", "GALAXY", "SMK"]
DescriptorTypeWithPlain = Literal["CWL", "WDL", "NFL", "GALAXY", "SMK", "PLAIN_CWL", "PLAIN_WDL", "PLAIN_NFL",
                                  "PLAIN_GALAXY", "PLAIN_SMK"]
ToolIdPath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$", description="The tool's id")]
VersionIdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="The version's id")]
MAX_LIMIT = 1000
TOOL_CLASSES = {"CommandLineTool": "A single command-line tool (CWL CommandLineTool)",
                "Workflow": "A workflow of tools (CWL Workflow)"}


class Checksum(BaseModel):
    checksum: str
    type: str


class ToolClass(BaseModel):
    id: str
    name: str
    description: str


class ImageData(BaseModel):
    registry_host: str | None = None
    image_name: str | None = None
    size: int | None = None
    updated: str | None = None
    checksum: list[Checksum] | None = None
    image_type: Literal["Docker", "Singularity", "Conda"] | None = None


class ToolVersion(BaseModel):
    author: list[str] = []
    name: str | None = None
    url: str
    id: str
    is_production: bool
    images: list[ImageData] = []
    descriptor_type: list[DescriptorType] = []
    descriptor_type_version: dict[str, list[str]] = {}
    containerfile: bool = False
    meta_version: str | None = None
    verified: bool
    verified_source: list[str] = []
    signed: bool = False
    included_apps: list[str] = []


class Tool(BaseModel):
    url: str
    id: str
    aliases: list[str] = []
    organization: str
    name: str | None = None
    toolclass: ToolClass
    description: str | None = None
    meta_version: str | None = None
    has_checker: bool = False
    checker_url: str | None = None
    versions: list[ToolVersion]


class FileWrapper(BaseModel):
    content: str | None = None
    checksum: list[Checksum] = []
    image_type: str | None = None
    url: str | None = None


class ToolFile(BaseModel):
    path: str
    file_type: Literal["TEST_FILE", "PRIMARY_DESCRIPTOR", "SECONDARY_DESCRIPTOR", "CONTAINERFILE", "OTHER"]
    checksum: Checksum | None = None


class TrsServiceInfo(service_info.Service):
    pass


def _base(settings: Settings) -> str:
    return f"{settings.gateway_url}/ga4gh/trs/v2"


def _tool_class(name: str) -> ToolClass:
    return ToolClass(id=name, name=name, description=TOOL_CLASSES.get(name, name))


def _version(settings: Settings, tool_id: str, row: dict[str, Any]) -> ToolVersion:
    approved = row["state"] == "approved"
    primary = next((f for f in row["files"] if f["file_type"] == "PRIMARY_DESCRIPTOR"), None)
    cwl_version = _cwl_version(primary["content"]) if primary else None
    return ToolVersion(
        author=list(row["authors"]), name=row["name"], id=row["version_id"],
        url=f"{_base(settings)}/tools/{tool_id}/versions/{row['version_id']}", is_production=approved,
        descriptor_type=[row["descriptor_type"]],
        descriptor_type_version={row["descriptor_type"]: [cwl_version]} if cwl_version else {},
        containerfile=any(f["file_type"] == "CONTAINERFILE" for f in row["files"]),
        meta_version=str(row["withdrawn_at"] or row["approved_at"] or row["added_at"]),
        verified=approved, verified_source=[f"genomebus node {settings.node_id}: approved for execution "
                                            f"(runtime {row['runtime']})"] if approved else [],
        images=[ImageData(image_name=f"genomebus-runtime:{row['runtime']}", registry_host=settings.node_id)])


def _cwl_version(content: str) -> str | None:
    for line in content.splitlines():
        if line.strip().startswith("cwlVersion:"):
            return line.split(":", 1)[1].strip().strip("'\"")
    return None


def _tool(settings: Settings, row: dict[str, Any]) -> Tool:
    return Tool(url=f"{_base(settings)}/tools/{row['tool_id']}", id=row["tool_id"], aliases=list(row["aliases"]),
                organization=row["organization"], name=row["name"], toolclass=_tool_class(row["toolclass"]),
                description=row["description"] or None, meta_version=str(row["updated_at"]),
                versions=[_version(settings, row["tool_id"], v) for v in row["versions"]])


def _checksum(content: str) -> list[Checksum]:
    return [Checksum(checksum=hashlib.sha256(content.encode()).hexdigest(), type="sha-256")]


async def _version_row(pool: Any, tool_id: str, version_id: str) -> dict[str, Any]:
    async with pool.acquire() as conn:
        row = await tools.get_version(conn, tool_id, version_id)
    if row is None:
        raise Problem(404, "tool-version-not-found", f"no version {version_id} of tool {tool_id} at this node")
    return row


def _check_type(row: dict[str, Any], descriptor_type: str) -> None:
    if descriptor_type.removeprefix("PLAIN_") != row["descriptor_type"]:
        raise Problem(404, "descriptor-type-not-found", f"this version has a {row['descriptor_type']} descriptor, "
                      f"not {descriptor_type.removeprefix('PLAIN_')}")


def _file_response(descriptor_type: str, file: dict[str, Any]) -> Response:
    if descriptor_type.startswith("PLAIN_"):
        return PlainTextResponse(file["content"])
    return JSONResponse(FileWrapper(content=file["content"], checksum=_checksum(file["content"])).model_dump(
        exclude_none=True))


_FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/FileWrapper"}},
                      "text/plain": {"schema": {"type": "string"}}}},
    **problem_responses(400, 404, 503)}


@router.get("/service-info", response_model=TrsServiceInfo, response_model_exclude_none=True,
            responses=problem_responses(503))
async def trs_service_info(settings: SettingsDep) -> TrsServiceInfo:
    node = await service_info.service_info(settings)
    return TrsServiceInfo(**{
        **node.model_dump(), "id": f"{node.id}.trs", "name": f"{node.name} TRS",
        "type": service_info.ServiceType(group="org.ga4gh", artifact="trs", version=TRS_VERSION),
        "description": "GA4GH TRS 2: the tools and workflows registered at this node; an approved version "
                       "(is_production, verified) is what tasks and workflow runs may name"})


@router.get("/toolClasses", response_model=list[ToolClass], responses=problem_responses(503))
async def tool_classes() -> list[ToolClass]:
    return [_tool_class(name) for name in TOOL_CLASSES]


@router.get("/tools", response_model=list[Tool], response_model_exclude_none=True,
            responses={**problem_responses(400, 503), 200: {"headers": {
                h: {"schema": {"type": "string"}} for h in ("next_page", "last_page", "self_link", "current_offset",
                                                            "current_limit")}}})
async def list_tools(
        request: Request, settings: SettingsDep, pool: PoolDep,
        id: Annotated[str | None, Query(max_length=200)] = None,  # noqa: A002 - the spec's name
        alias: Annotated[str | None, Query(max_length=200)] = None,
        toolClass: Annotated[str | None, Query(max_length=200)] = None,  # noqa: N803
        descriptorType: DescriptorType | None = None,  # noqa: N803
        registry: Annotated[str | None, Query(max_length=200)] = None,
        organization: Annotated[str | None, Query(max_length=200)] = None,
        name: Annotated[str | None, Query(max_length=200)] = None,
        toolname: Annotated[str | None, Query(max_length=200)] = None,
        description: Annotated[str | None, Query(max_length=200)] = None,
        author: Annotated[str | None, Query(max_length=200)] = None,
        checker: bool | None = None,
        offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = MAX_LIMIT) -> JSONResponse:
    """Every tool, or those matching the filters (exact id, alias, toolClass, descriptorType, registry,
    organization; substring name, toolname, description, author); paged by offset and limit."""
    base = _base(settings)
    if checker or (registry is not None and registry != settings.node_id):
        rows, total = [], 0  # no checker workflows here; this registry is the node itself
    else:
        async with pool.acquire() as conn:
            rows, total = await tools.list_tools(conn, filters={
                "id": id, "alias": alias, "toolClass": toolClass, "descriptorType": descriptorType,
                "organization": organization, "name": name, "toolname": toolname, "description": description,
                "author": author}, offset=offset, limit=limit)
    query = [(k, v) for k, v in request.query_params.multi_items() if k not in ("offset", "limit")]

    def link(at: int) -> str:
        from urllib.parse import urlencode

        return f"{base}/tools?{urlencode([*query, ('offset', at), ('limit', limit)])}"

    headers = {"self_link": link(offset), "current_offset": str(offset), "current_limit": str(limit),
               "last_page": link(max(0, (max(total, 1) - 1) // limit * limit))}
    if offset + limit < total:
        headers["next_page"] = link(offset + limit)
    body = [_tool(settings, row).model_dump(exclude_none=True) for row in rows]
    return JSONResponse(body, headers=headers)


@router.get("/tools/{id}", response_model=Tool, response_model_exclude_none=True,
            responses=problem_responses(400, 404, 503))
async def get_tool(settings: SettingsDep, pool: PoolDep, id: ToolIdPath) -> Tool:  # noqa: A002
    async with pool.acquire() as conn:
        row = await tools.get_tool(conn, id)
    if row is None:
        raise Problem(404, "tool-not-found", f"no tool {id} at this node")
    return _tool(settings, row)


@router.get("/tools/{id}/versions", response_model=list[ToolVersion], response_model_exclude_none=True,
            responses=problem_responses(400, 404, 503))
async def list_versions(settings: SettingsDep, pool: PoolDep, id: ToolIdPath) -> list[ToolVersion]:  # noqa: A002
    async with pool.acquire() as conn:
        row = await tools.get_tool(conn, id)
    if row is None:
        raise Problem(404, "tool-not-found", f"no tool {id} at this node")
    return [_version(settings, id, v) for v in row["versions"]]


@router.get("/tools/{id}/versions/{version_id}", response_model=ToolVersion, response_model_exclude_none=True,
            responses=problem_responses(400, 404, 503))
async def get_version(settings: SettingsDep, pool: PoolDep, id: ToolIdPath,  # noqa: A002
                      version_id: VersionIdPath) -> ToolVersion:
    return _version(settings, id, await _version_row(pool, id, version_id))


@router.get("/tools/{id}/versions/{version_id}/{type}/descriptor", responses=_FILE_RESPONSES)
async def get_descriptor(pool: PoolDep, id: ToolIdPath, version_id: VersionIdPath,  # noqa: A002
                         type: DescriptorTypeWithPlain) -> Response:  # noqa: A002
    """The primary descriptor: a FileWrapper, or the raw text for ``PLAIN_<type>``."""
    row = await _version_row(pool, id, version_id)
    _check_type(row, type)
    return _file_response(type, next(f for f in row["files"] if f["file_type"] == "PRIMARY_DESCRIPTOR"))


@router.get("/tools/{id}/versions/{version_id}/{type}/descriptor/{relative_path:path}", responses=_FILE_RESPONSES)
async def get_relative_descriptor(pool: PoolDep, id: ToolIdPath, version_id: VersionIdPath,  # noqa: A002
                                  type: DescriptorTypeWithPlain,  # noqa: A002
                                  relative_path: Annotated[str, Path(min_length=1, max_length=255)]) -> Response:
    """Any file of the version by its path relative to the primary descriptor."""
    row = await _version_row(pool, id, version_id)
    _check_type(row, type)
    file = next((f for f in row["files"] if f["path"] == relative_path), None)
    if file is None:
        raise Problem(404, "file-not-found", f"version {version_id} of {id} has no file {relative_path}")
    return _file_response(type, file)


@router.get("/tools/{id}/versions/{version_id}/{type}/tests", response_model=list[FileWrapper],
            response_model_exclude_none=True, responses=problem_responses(400, 404, 503))
async def get_tests(pool: PoolDep, id: ToolIdPath, version_id: VersionIdPath,  # noqa: A002
                    type: DescriptorTypeWithPlain) -> list[FileWrapper]:  # noqa: A002
    row = await _version_row(pool, id, version_id)
    _check_type(row, type)
    return [FileWrapper(content=f["content"], checksum=_checksum(f["content"]))
            for f in row["files"] if f["file_type"] == "TEST_FILE"]


@router.get("/tools/{id}/versions/{version_id}/{type}/files",
            responses={200: {"content": {"application/json": {"schema": {
                "type": "array", "items": {"$ref": "#/components/schemas/ToolFile"}}},
                "application/zip": {"schema": {"type": "string", "format": "binary"}}}},
                **problem_responses(400, 404, 503)})
async def get_files(pool: PoolDep, id: ToolIdPath, version_id: VersionIdPath,  # noqa: A002
                    type: DescriptorType, format: Literal["zip"] | None = None) -> Response:  # noqa: A002
    """The version's files (path, type, checksum), or all of them as a zip with ``format=zip``."""
    row = await _version_row(pool, id, version_id)
    _check_type(row, type)
    if format == "zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for f in row["files"]:
                archive.writestr(f["path"], f["content"])
        return Response(buffer.getvalue(), media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{id}-{version_id}.zip"'})
    return JSONResponse([ToolFile(path=f["path"], file_type=f["file_type"],
                                  checksum=Checksum(checksum=f["sha256"], type="sha-256")).model_dump()
                         for f in row["files"]])


@router.get("/tools/{id}/versions/{version_id}/containerfile", response_model=list[FileWrapper],
            response_model_exclude_none=True, responses=problem_responses(400, 404, 503))
async def get_containerfile(pool: PoolDep, id: ToolIdPath, version_id: VersionIdPath  # noqa: A002
                            ) -> list[FileWrapper]:
    """The version's container files; none here means the runtime is one the node provides (no image)."""
    row = await _version_row(pool, id, version_id)
    files = [f for f in row["files"] if f["file_type"] == "CONTAINERFILE"]
    if not files:
        raise Problem(404, "containerfile-not-found", f"version {version_id} of {id} runs in the node's runtime "
                      f"{row['runtime']}; it has no container file")
    return [FileWrapper(content=f["content"], checksum=_checksum(f["content"])) for f in files]
