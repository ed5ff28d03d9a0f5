"""The gateway's OpenAPI says what it answers, and its docs pages work on a node without internet access.

Built with `create_app` but without its lifespan: the schema and the docs need no database. Where a
route is called, the pool is one to a closed port, as when the node's PostgreSQL is down.
"""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from genomebus.gateway.app import create_app
from genomebus.gateway.problems import PROBLEM_JSON
from genomebus.infra.settings import Settings
from genomebus.schemas.base import PID_PATTERN

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


@pytest.fixture
def app() -> FastAPI:
    return create_app(Settings(node_id="FI"))


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
        yield client


def _operations(openapi: dict) -> dict[str, dict]:
    return {f"{method.upper()} {path}": op for path, item in openapi["paths"].items() for method, op in item.items()}


def test_no_operation_documents_422_nor_its_schemas(app):
    openapi = app.openapi()
    assert all("422" not in op["responses"] for op in _operations(openapi).values())
    assert not {"HTTPValidationError", "ValidationError"} & set(openapi["components"]["schemas"])


def test_errors_are_documented_as_problem_documents(app):
    operations = _operations(app.openapi())
    expected = {
        "GET /service-info": {"500"},
        "GET /health": {"500"},
        "GET /datasets": {"400", "500", "503"},
        "GET /datasets/{dataset_id}": {"400", "404", "410", "500", "503"},
        "GET /files/{file_id}": {"400", "404", "410", "500", "503"},
    }
    for name, statuses in expected.items():
        responses = operations[name]["responses"]
        assert statuses <= set(responses), name
        for status in statuses:
            assert responses[status]["content"] == {PROBLEM_JSON: {"schema": PROBLEM_REF}}, (name, status)
    assert operations["GET /health"]["responses"]["503"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Health"}


def test_every_operation_can_answer_a_500_problem(app):
    """RFC 7807 everywhere, except under the GA4GH APIs that name their own error body (DRS, htsget, Beacon, TRS,
    WES)."""
    dialects = {"/ga4gh/drs/v1": "DrsError", "/htsget/v1": "HtsgetError", "/beacon/v2": "BeaconError",
                "/ga4gh/trs/v2": "TrsError", "/ga4gh/wes/v1": "WesErrorResponse"}
    for name, op in _operations(app.openapi()).items():
        dialect = next((schema for prefix, schema in dialects.items() if prefix in name), None)
        expected = ({"application/json": {"schema": {"$ref": f"#/components/schemas/{dialect}"}}} if dialect
                    else {PROBLEM_JSON: {"schema": PROBLEM_REF}})
        assert op["responses"]["500"]["content"] == expected, name


def test_the_problem_schema_is_rfc_7807(app):
    problem = app.openapi()["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "instance"}
    assert problem["properties"]["status"]["type"] == "integer"
    assert problem["additionalProperties"] is True  # extension members, such as the validation errors


def test_numeric_parameters_are_bounded(app):
    for name, op in _operations(app.openapi()).items():
        for parameter in op.get("parameters", []):
            if parameter["schema"].get("type") == "integer":
                assert "maximum" in parameter["schema"] and "minimum" in parameter["schema"], (name, parameter)
                assert parameter["schema"]["maximum"] < 2**63, (name, parameter)  # PostgreSQL's bigint


def test_path_ids_declare_their_pattern(app):
    operations = _operations(app.openapi())
    dataset_id = operations["GET /datasets/{dataset_id}"]["parameters"][0]["schema"]
    assert dataset_id["pattern"] == PID_PATTERN
    file_id = re.compile(operations["GET /files/{file_id}"]["parameters"][0]["schema"]["pattern"])
    assert file_id.fullmatch("0c8e0bfe-0c8e-4bfe-8c8e-0bfe0c8e0bfe")
    assert file_id.fullmatch("GDI-FI-FILE-000123")
    assert not file_id.fullmatch("not-a-file")


async def test_an_unbounded_offset_is_a_400_problem_before_any_query(app, http):
    app.state.pool = object()  # no database: the request must be refused before any query
    response = await http.get("/datasets", params={"state": "registered", "offset": 3945226857094090588160,
                                                   "limit": 348})
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["errors"][0]["loc"] == ["query", "offset"]


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in {"src", "href"} and value]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_only_local_assets(http, page):
    response = await http.get(page)
    assert response.status_code == 200
    html = response.text
    parser = _Assets()
    parser.feed(html)
    # URLs in the inline script too (the OpenAPI document, the OAuth2 redirect), not only in tags.
    urls = set(parser.urls) | set(re.findall(r"""(?:url|openapi_url|oauth2RedirectUrl)['"]?\s*:\s*['"]([^'"]+)""", html))
    assert urls and not re.search(r"https?://", " ".join(urls)), urls
    assert "openapi.json" in html
    for url in urls:
        assert not urlsplit(url).netloc, url
        assert (await http.get(urljoin(page, url))).status_code == 200, url


async def test_a_database_that_cannot_be_reached_is_a_503_problem(app, http):
    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app.state.pool = await asyncpg.create_pool(f"postgresql://nobody@127.0.0.1:{port}/none", min_size=0)
    try:
        response = await http.get("/datasets")
        assert response.status_code == 503
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.json()["type"].endswith("/database-unavailable")
        assert response.headers["retry-after"]
        health = await http.get("/health")
        assert (health.status_code, health.json()) == (503, {"status": "degraded", "database": "unavailable"})
    finally:
        await app.state.pool.close()
