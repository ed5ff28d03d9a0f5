"""TRS 2 on the real stack: a steward registers, approves and withdraws a tool version with the CLI; the
tool registry decides; the gateway serves it, every answer checked against specs/trs.openapi.yaml."""

from __future__ import annotations

import io
import json
import shutil
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest

from genomebus.infra.readmodels import tools
from genomebus.infra.settings import Settings
from genomebus.producers.tools import EXAMPLES, approve_tool, load_tool, register_tool
from genomebus.schemas.access import AsRoles
from tests.integration.helpers import cli
from tests.openapi_schemas import check, check_list

pytestmark = pytest.mark.integration

SPEC = "trs.openapi.yaml"


def tool_folder(tmp_path: Path, tool_id: str, version: str = "1.0.0") -> Path:
    folder = tmp_path / tool_id
    shutil.copytree(EXAMPLES / "variant-summary", folder)
    manifest = json.loads((folder / "tool.json").read_text())
    (folder / "tool.json").write_text(json.dumps({**manifest, "id": tool_id, "version": version}))
    return folder


def trs(settings: Settings, path: str, **params) -> httpx.Response:
    return httpx.get(f"{settings.gateway_url}/ga4gh/trs/v2{path}", params=params, timeout=10)


def test_a_steward_registers_approves_and_withdraws_a_version_and_trs_serves_it(stack: Settings,
                                                                                 tmp_path: Path) -> None:
    tool_id = f"variant-summary-{uuid.uuid4().hex[:8]}"
    done = cli(stack, "tool", "register", str(tool_folder(tmp_path, tool_id)), "--actor", "steward-sara")
    assert done.returncode == 0, done.stderr
    assert f"tool.registered {tool_id} 1.0.0" in done.stdout

    version = trs(stack, f"/tools/{tool_id}/versions/1.0.0")
    assert version.status_code == 200
    check(SPEC, "ToolVersion", version.json())
    assert version.json()["is_production"] is False and version.json()["verified"] is False

    done = cli(stack, "tool", "approve", tool_id, "1.0.0")
    assert done.returncode == 0, done.stderr
    url = f"{stack.gateway_url}/ga4gh/trs/v2/tools/{tool_id}/versions/1.0.0"
    assert url in done.stdout
    tool = trs(stack, f"/tools/{tool_id}").json()
    check(SPEC, "Tool", tool)
    [v] = tool["versions"]
    assert (v["url"], v["is_production"], v["verified"], v["descriptor_type"]) == (url, True, True, ["CWL"])
    assert v["descriptor_type_version"] == {"CWL": ["v1.2"]}

    descriptor = trs(stack, f"/tools/{tool_id}/versions/1.0.0/CWL/descriptor")
    check(SPEC, "FileWrapper", descriptor.json())
    original = (EXAMPLES / "variant-summary" / "variant-summary.cwl").read_text()
    assert descriptor.json()["content"] == original
    plain = trs(stack, f"/tools/{tool_id}/versions/1.0.0/PLAIN_CWL/descriptor")
    assert plain.text == original and plain.headers["content-type"].startswith("text/plain")
    script = trs(stack, f"/tools/{tool_id}/versions/1.0.0/PLAIN_CWL/descriptor/variant_summary.py")
    assert script.text == (EXAMPLES / "variant-summary" / "variant_summary.py").read_text()
    files = trs(stack, f"/tools/{tool_id}/versions/1.0.0/CWL/files").json()
    check_list(SPEC, "ToolFile", files)
    assert {f["path"]: f["file_type"] for f in files} == {
        "test.json": "TEST_FILE", "variant-summary.cwl": "PRIMARY_DESCRIPTOR", "variant_summary.py": "OTHER"}
    archive = zipfile.ZipFile(io.BytesIO(trs(stack, f"/tools/{tool_id}/versions/1.0.0/CWL/files",
                                             format="zip").content))
    assert sorted(archive.namelist()) == ["test.json", "variant-summary.cwl", "variant_summary.py"]
    tests = trs(stack, f"/tools/{tool_id}/versions/1.0.0/CWL/tests").json()
    check_list(SPEC, "FileWrapper", tests)
    assert json.loads(tests[0]["content"])["output_name"] == "summary.tsv"

    listed = trs(stack, "/tools", id=tool_id, organization="genomebus demo node", toolname="variant sum",
                 descriptorType="CWL", name="python-pysam", author="genomebus")
    check_list(SPEC, "Tool", listed.json())
    assert [t["id"] for t in listed.json()] == [tool_id]
    assert trs(stack, "/tools", id=tool_id, toolClass="Workflow").json() == []
    assert trs(stack, "/tools", id=tool_id, name="docker").json() == []
    assert listed.headers["current_limit"] == "1000" and "self_link" in listed.headers

    done = cli(stack, "tool", "withdraw", tool_id, "1.0.0", "--reason", "counts MNVs as SNVs")
    assert done.returncode == 0, done.stderr
    withdrawn = trs(stack, f"/tools/{tool_id}/versions/1.0.0").json()
    assert withdrawn["is_production"] is False and withdrawn["verified"] is False

    again = cli(stack, "tool", "approve", tool_id, "1.0.0")
    assert again.returncode == 5
    assert "version_withdrawn" in again.stderr and again.stderr.strip().splitlines()[-1].startswith("error: refused")


async def test_the_registry_refuses_with_reasons_and_a_redelivery_decides_nothing_twice(
        stack: Settings, pool, publisher, tmp_path: Path) -> None:
    tool_id = f"variant-summary-{uuid.uuid4().hex[:8]}"
    command = load_tool(tool_folder(tmp_path, tool_id))
    first = await register_tool(stack, command, actor="steward-sara")
    assert first.accepted and first.outcome_type == "tool.registered"
    twice = await register_tool(stack, command, actor="steward-sara")
    assert [r.code for r in twice.reasons] == ["version_exists"] and twice.state == "registered"
    stranger = await register_tool(stack, command.model_copy(update={"as_roles": AsRoles(researcher=True)}),
                                   actor="someone")
    assert [r.code for r in stranger.reasons] == ["not_steward"]
    unknown = await approve_tool(stack, tool_id, "9.9.9", actor="steward-sara")
    assert [r.code for r in unknown.reasons] == ["unknown_version"]
    async with pool.acquire() as conn:
        assert await tools.version_state(conn, tool_id, "1.0.0") == "registered"
        assert await tools.runnable_version(conn, tool_id, "1.0.0") is None
    approved = await approve_tool(stack, tool_id, "1.0.0", actor="steward-sara")
    assert approved.accepted
    async with pool.acquire() as conn:
        runnable = await tools.runnable_version(conn, tool_id, "1.0.0")
    assert runnable is not None and runnable["runtime"] == "python-pysam"
    assert {f["path"] for f in runnable["files"]} == {"test.json", "variant-summary.cwl", "variant_summary.py"}

    # the same approve command again (a redelivery): the ledger's outcome, not a second decision
    from genomebus.producers.commands import wait_for_outcome
    from genomebus.schemas.envelope import new_envelope
    from genomebus.schemas.tools import ToolApproveRequested

    envelope = new_envelope(ToolApproveRequested(tool_id=tool_id, version_id="1.0.0", as_roles=AsRoles(steward=True)),
                            source=stack.source, actor="steward-sara")
    await publisher.publish(envelope)
    await publisher.publish(envelope)
    outcome = await wait_for_outcome(stack, envelope.id)
    assert [r.code for r in outcome.reasons] == ["already_approved"]


def test_trs_errors_are_trs_errors(stack: Settings) -> None:
    for path, status in (("/tools/no-such-tool", 404), ("/tools/no-such-tool/versions/1.0", 404),
                         ("/tools/NOT%20AN%20ID", 400), ("/tools?limit=0", 400)):
        response = httpx.get(f"{stack.gateway_url}/ga4gh/trs/v2{path}", timeout=10)
        assert response.status_code == status, (path, response.text)
        body = response.json()
        check(SPEC, "Error", body)
        assert body["code"] == status and body["status"] == status and body["message"] == body["detail"]
    info = trs(stack, "/service-info").json()
    assert info["type"] == {"group": "org.ga4gh", "artifact": "trs", "version": "2.0.1"}
    classes = trs(stack, "/toolClasses").json()
    check_list(SPEC, "ToolClass", classes)
    assert {c["id"] for c in classes} == {"CommandLineTool", "Workflow"}
