"""RFC 7807 problem documents for every error the gateway returns, and their place in the OpenAPI.

Errors are answered here and documented here, so a router only names the statuses of its own
domain (``responses=problem_responses(404, 410, 503)``). ``install`` post-processes the OpenAPI
document so that every route gets the rest by default: FastAPI's 422 becomes the 400 the gateway
really answers, every operation may answer 500, and each of them points at the one ``Problem``
schema under ``application/problem+json``.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://genomebus.example.org/problems/"

# Failures of reaching PostgreSQL, not of the query: the node is degraded, the client may retry.
DATABASE_UNAVAILABLE = (ConnectionError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError,
                        asyncpg.TooManyConnectionsError)


class Problem(Exception):
    """An error answered as ``application/problem+json``; ``code`` names its type."""

    def __init__(self, status: int, code: str, detail: str, *, title: str | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.headers = headers
        self.extra = extra


class ProblemDocument(BaseModel):
    """The body of every error (RFC 7807); extension members (such as `errors`) may follow."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str
    title: str
    status: int
    detail: str
    instance: str


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for a route that answers these statuses with a problem document."""
    return {status: {"description": HTTPStatus(status).phrase,
                     "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
            for status in statuses}


def document_problems(openapi: dict[str, Any]) -> dict[str, Any]:
    """Make the OpenAPI say what the gateway answers: 400 not 422, 500 anywhere, one Problem schema."""
    # Each operation gets its own copies: the GA4GH dialects below rewrite some of them in place.
    for path_item in openapi.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            if responses.pop("422", None) is not None:  # FastAPI's mark of a route that validates input
                responses.setdefault("400", problem_responses(400)[400])
            responses.setdefault("500", problem_responses(500)[500])
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    for path, path_item in openapi.get("paths", {}).items():  # GA4GH APIs with their own error shape
        dialect = next((v for prefix, v in DIALECT_SCHEMAS.items() if path.startswith(prefix)), None)
        if dialect is None:
            continue
        name, schema = dialect
        schemas[name] = schema
        for operation in path_item.values():
            for response in (operation.get("responses", {}) if isinstance(operation, dict) else {}).values():
                content = response.get("content", {})
                if PROBLEM_JSON in content:
                    del content[PROBLEM_JSON]
                    content["application/json"] = {"schema": {"$ref": f"#/components/schemas/{name}"}}
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = ProblemDocument.model_json_schema()
    return openapi


# -- GA4GH error shapes -----------------------------------------------------------------------------
#
# Some GA4GH APIs name their own error body: DRS an ``Error`` and WES an ``ErrorResponse`` with ``msg``
# and ``status_code``, TRS an ``Error`` with ``code`` and ``message``, htsget
# ``{"htsget": {"error": <name>, "message": ...}}``, Beacon v2 a ``beaconErrorResponse`` (``meta`` and
# ``error`` with ``errorCode`` and ``errorMessage``), all as ``application/json``. Under those APIs'
# paths the gateway answers exactly that shape, so their clients and compliance suites read it; the
# DRS and Beacon bodies keep the RFC 7807 members beside their own (extra members are allowed).

HTSGET_ERRORS = {400: "InvalidInput", 401: "InvalidAuthentication", 403: "PermissionDenied", 404: "NotFound",
                 413: "PayloadTooLarge", 500: "InternalServerError", 503: "InternalServerError"}
"""The htsget error name of a status, unless the problem names one itself (``htsget_error=``)."""


def _drs_body(body: dict[str, Any], request: Request) -> dict[str, Any]:
    return {"msg": body["detail"], "status_code": body["status"], **body}


def _trs_body(body: dict[str, Any], request: Request) -> dict[str, Any]:
    """TRS 2 ``Error``: ``code`` is the HTTP status, ``message`` the detail."""
    return {"code": body["status"], "message": body["detail"], **body}


def _htsget_body(body: dict[str, Any], request: Request) -> dict[str, Any]:
    name = body.get("htsget_error") or HTSGET_ERRORS.get(body["status"], "InternalServerError")
    return {"htsget": {"error": name, "message": body["detail"]}}


BEACON_API_VERSION = "v2.0.0"


def _beacon_body(body: dict[str, Any], request: Request) -> dict[str, Any]:
    """A ``beaconErrorResponse``; its ``meta`` says the request as far as it was understood (``beacon_summary``)."""
    settings = getattr(request.app.state, "settings", None)
    summary = body.pop("beacon_summary", None) or {
        "apiVersion": BEACON_API_VERSION, "requestedSchemas": [], "pagination": {}, "requestedGranularity": "boolean"}
    meta = {"beaconId": settings.beacon_identifier if settings is not None else "genomebus",
            "apiVersion": BEACON_API_VERSION, "returnedSchemas": [], "returnedGranularity": "boolean",
            "receivedRequestSummary": summary}
    return {"meta": meta, "error": {"errorCode": body["status"], "errorMessage": body["detail"]}, **body}


DIALECTS: tuple[tuple[str, Any], ...] = (("/ga4gh/drs/v1", _drs_body), ("/htsget/v1", _htsget_body),
                                         ("/beacon/v2", _beacon_body), ("/ga4gh/trs/v2", _trs_body),
                                         ("/ga4gh/wes/v1", _drs_body))  # WES ErrorResponse: msg, status_code

DIALECT_SCHEMAS: dict[str, tuple[str, dict[str, Any]]] = {
    "/ga4gh/drs/v1": ("DrsError", {
        "title": "DrsError", "type": "object", "required": ["msg", "status_code"],
        "description": "DRS 1.5 `Error` (msg, status_code), with the RFC 7807 members beside it",
        "properties": {"msg": {"type": "string"}, "status_code": {"type": "integer"},
                       "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                       "detail": {"type": "string"}, "instance": {"type": "string"}}}),
    "/ga4gh/wes/v1": ("WesErrorResponse", {
        "title": "WesErrorResponse", "type": "object", "required": ["msg", "status_code"],
        "description": "WES 1.1 `ErrorResponse` (msg, status_code), with the RFC 7807 members beside it",
        "properties": {"msg": {"type": "string"}, "status_code": {"type": "integer"},
                       "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                       "detail": {"type": "string"}, "instance": {"type": "string"}}}),
    "/ga4gh/trs/v2": ("TrsError", {
        "title": "TrsError", "type": "object", "required": ["code"],
        "description": "TRS 2 `Error` (code, message), with the RFC 7807 members beside it",
        "properties": {"code": {"type": "integer"}, "message": {"type": "string"},
                       "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                       "detail": {"type": "string"}, "instance": {"type": "string"}}}),
    "/htsget/v1": ("HtsgetError", {
        "title": "HtsgetError", "type": "object", "required": ["htsget"],
        "description": "htsget 1.3 error: the error's name and a message",
        "properties": {"htsget": {"type": "object", "required": ["error", "message"], "properties": {
            "error": {"type": "string", "enum": ["InvalidAuthentication", "PermissionDenied", "NotFound",
                                                 "UnsupportedFormat", "InvalidInput", "InvalidRange",
                                                 "PayloadTooLarge", "InternalServerError"]},
            "message": {"type": "string"}}}}}),
    "/beacon/v2": ("BeaconError", {
        "title": "BeaconError", "type": "object", "required": ["meta", "error"],
        "description": "Beacon v2 `beaconErrorResponse` (meta, error{errorCode, errorMessage}), with the RFC 7807 "
                       "members beside it",
        "properties": {
            "meta": {"type": "object", "required": ["beaconId", "apiVersion", "returnedSchemas",
                                                    "returnedGranularity", "receivedRequestSummary"],
                     "properties": {"beaconId": {"type": "string"}, "apiVersion": {"type": "string"},
                                    "returnedSchemas": {"type": "array", "items": {"type": "object"}},
                                    "returnedGranularity": {"type": "string",
                                                            "enum": ["boolean", "count", "record"]},
                                    "receivedRequestSummary": {"type": "object"}}},
            "error": {"type": "object", "required": ["errorCode"],
                      "properties": {"errorCode": {"type": "integer"}, "errorMessage": {"type": "string"}}},
            "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
            "detail": {"type": "string"}, "instance": {"type": "string"}}}),
}


def problem_response(request: Request, status: int, code: str, detail: str, *, title: str | None = None,
                     headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = {
        "type": PROBLEM_BASE + code,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    for prefix, shape in DIALECTS:
        if request.url.path.startswith(prefix):
            return JSONResponse(shape(body, request), status_code=status, media_type="application/json",
                                headers=headers)
    body.pop("htsget_error", None)
    body.pop("beacon_summary", None)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def install(app: FastAPI) -> None:
    """Answer every error as a problem document and document them in the app's OpenAPI."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(request, exc.status, exc.code, exc.detail, title=exc.title, headers=exc.headers,
                                **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        detail = "the request does not match the API"
        if errors:  # the first mismatch in the message too: some dialects (Beacon, htsget) show only the message
            detail += f": {'.'.join(str(part) for part in errors[0]['loc'])}: {errors[0]['msg']}"
        return problem_response(request, 400, "invalid-request", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not-found", 405: "method-not-allowed", 401: "unauthorized", 403: "forbidden"}.get(
            exc.status_code, "http-error")
        return problem_response(request, exc.status_code, code, str(exc.detail), headers=exc.headers)

    for unavailable in DATABASE_UNAVAILABLE:
        @app.exception_handler(unavailable)
        async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
            return problem_response(request, 503, "database-unavailable",
                                    "the node's database cannot be reached; try again later",
                                    headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # No exception text to the client: it may carry internals; the log has it.
        return problem_response(request, 500, "internal-error", "the gateway could not complete the request")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_problems(FastAPI.openapi(app))
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
