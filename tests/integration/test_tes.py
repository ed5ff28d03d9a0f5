"""TES 1.1 on the real stack: a granted researcher runs an approved tool on an archived VCF; the scheduler
admits (audited) or refuses with reasons; the executor runs it in the sandbox, puts its output in
quarantine and says how it went; views, filters, paging, cancel, a task without network, kill -9 of the
executor. Every task answer is checked against specs/tes.openapi.yaml."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import time
import uuid
from typing import Any

import crypt4gh.lib
import httpx
import pysam
import pytest

from genomebus.infra import kafka, s3
from genomebus.infra.keys import load_archive_keys
from genomebus.infra.readmodels.tools import trs_url
from genomebus.infra.settings import Settings
from genomebus.infra.stack import read_state
from genomebus.producers.tools import EXAMPLES, approve_tool, load_tool, register_tool
from genomebus.schemas.envelope import decode
from tests.data import DATA
from tests.integration.storage import StoredDataset, archived_dataset, granted, token
from tests.openapi_schemas import check

pytestmark = pytest.mark.integration

SPEC = "tes.openapi.yaml"
VCF = DATA / "variants" / "NA18537.vcf.gz"
TERMINAL = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"}


async def approved(settings: Settings, name: str, *, approve: bool = True) -> str:
    """An example tool registered under a fresh id (and approved): its TRS URL."""
    command = load_tool(EXAMPLES / name)
    command = command.model_copy(update={"tool_id": f"{name}-{uuid.uuid4().hex[:8]}"})
    assert (await register_tool(settings, command, actor="steward-sara")).accepted
    if approve:
        assert (await approve_tool(settings, command.tool_id, "1.0.0", actor="steward-sara")).accepted
    return trs_url(settings, command.tool_id, "1.0.0")


@pytest.fixture(scope="module")
async def world(stack: Settings, publisher) -> dict[str, Any]:
    stored: StoredDataset = await archived_dataset(stack, publisher, [(VCF, None)], title="tes test")
    await granted(stack, "alice-tes", stored)
    return {"stored": stored, "summary": await approved(stack, "variant-summary"),
            "probe": await approved(stack, "net-probe"), "unapproved": await approved(stack, "genotype-dump",
                                                                                         approve=False)}


def headers(settings: Settings, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(settings, user, 'researcher', ttl=3600)}"}


async def submit(http: httpx.AsyncClient, settings: Settings, user: str, body: dict[str, Any]) -> str:
    response = await http.post("/ga4gh/tes/v1/tasks", json=body, headers=headers(settings, user))
    assert response.status_code == 200, response.text
    check(SPEC, "tesCreateTaskResponse", response.json())
    return response.json()["id"]


async def until(http: httpx.AsyncClient, settings: Settings, user: str, task_id: str, states: set[str],
                timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = (await http.get(f"/ga4gh/tes/v1/tasks/{task_id}", params={"view": "FULL"},
                               headers=headers(settings, user))).json()
        if body.get("state") in states:
            check(SPEC, "tesTask", body)
            return body
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.2)


def summary_task(world: dict[str, Any], **more: Any) -> dict[str, Any]:
    accession = world["stored"].objects[VCF.name]
    return {"name": "variant summary", "tags": {"project": "tes-test"},
            "inputs": [{"url": f"drs://node/{accession}", "path": "/work/in/calls.vcf.gz"}],
            "outputs": [{"path": "/work/out/summary.tsv"}],
            "executors": [{"image": world["summary"], "command": ["python", "/tool/variant_summary.py",
                                                                  "/work/in/calls.vcf.gz", "/work/out/summary.tsv"]}],
            **more}


def expected_counts() -> dict[tuple[str, str], int]:
    """The table the tool's own rule gives when run here, outside the sandbox."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("variant_summary", EXAMPLES / "variant-summary" / "variant_summary.py")
    tool = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(tool)  # type: ignore[union-attr]
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    with pysam.VariantFile(str(VCF)) as vcf:
        for record in vcf:
            for alt in record.alts or ():
                counts[record.chrom, tool.kind(record.ref, alt)] += 1
    return dict(counts)


async def test_a_granted_researcher_runs_an_approved_tool_on_her_vcf(stack: Settings, world) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as http:
        task_id = await submit(http, stack, "alice-tes", summary_task(world))
        minimal = (await http.get(f"/ga4gh/tes/v1/tasks/{task_id}", headers=headers(stack, "alice-tes"))).json()
        assert set(minimal) == {"id", "state"} and minimal["state"] in ("UNKNOWN", "QUEUED", "INITIALIZING",
                                                                        "RUNNING", "COMPLETE")
        done = await until(http, stack, "alice-tes", task_id, TERMINAL)
        assert done["state"] == "COMPLETE", done
        [attempt] = done["logs"]
        assert attempt["logs"][0]["exit_code"] == 0 and attempt["start_time"] <= attempt["end_time"]
        [output] = attempt["outputs"]
        assert output["path"] == "/work/out/summary.tsv" and int(output["size_bytes"]) > 0
        basic = (await http.get(f"/ga4gh/tes/v1/tasks/{task_id}", params={"view": "BASIC"},
                                headers=headers(stack, "alice-tes"))).json()
        check(SPEC, "tesTask", basic)
        assert "stdout" not in basic["logs"][0]["logs"][0] and "system_logs" not in basic["logs"][0]
        # another researcher does not see it
        other = await http.get(f"/ga4gh/tes/v1/tasks/{task_id}", headers=headers(stack, "mallory-tes"))
        assert other.status_code == 404

    # result.ready names the quarantined output; decrypted, it is the table pysam gives
    ready = None
    async for record in kafka.read_log(stack, [stack.topic("processing")], idle_timeout=1.0):
        event = decode(record.value)
        if event.type == "result.ready" and event.data.task_id == task_id:
            ready = event.data
    assert ready is not None and ready.owner == "alice-tes"
    [quarantined] = ready.outputs
    secret, _ = load_archive_keys(stack)
    async with s3.client(stack) as client:
        body = await (await client.get_object(Bucket=stack.s3_quarantine_bucket, Key=quarantined.key))["Body"].read()
    import io

    plain = io.BytesIO()
    crypt4gh.lib.decrypt([(0, secret, None)], io.BytesIO(body), plain)
    lines = plain.getvalue().decode().splitlines()
    assert lines[0] == "chrom\tvariant_type\tcount"
    assert {(c, k): int(n) for c, k, n in (line.split("\t") for line in lines[1:])} == expected_counts()

    # the read was audited as a controlled access by the task
    found = []
    async for record in kafka.read_log(stack, [stack.topic("audit")], idle_timeout=1.0):
        event = decode(record.value)
        if event.data.resource.startswith(f"TES task {task_id}"):
            found.append(event.data)
    assert [(e.decision, e.reason, e.credential, e.user_id) for e in found] == [
        ("allow", "grant_active", "task", "alice-tes")]


async def test_refusals_give_their_reasons_and_a_denied_read_is_audited(stack: Settings, world) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as http:
        carol = await submit(http, stack, "carol-tes", summary_task(world))
        unapproved = dict(summary_task(world))
        unapproved["executors"] = [{"image": world["unapproved"], "command": ["true"]}]
        greedy = summary_task(world, resources={"cpu_cores": 64, "ram_gb": 1000})
        outside = summary_task(world, outputs=[{"path": "/etc/passwd"}])
        ids = {name: await submit(http, stack, "alice-tes", body)
               for name, body in (("unapproved", unapproved), ("greedy", greedy), ("outside", outside))}
        refused = await until(http, stack, "carol-tes", carol, TERMINAL)
        assert refused["state"] == "SYSTEM_ERROR"
        assert any("no_grant" in line for line in refused["logs"][-1]["system_logs"])
        codes = {}
        for name, task_id in ids.items():
            body = await until(http, stack, "alice-tes", task_id, TERMINAL)
            assert body["state"] == "SYSTEM_ERROR", body
            codes[name] = " ".join(body["logs"][-1]["system_logs"])
        assert "tool_not_approved" in codes["unapproved"]
        assert "too_many_cpu_cores" in codes["greedy"] and "too_much_ram" in codes["greedy"]
        assert "bad_path" in codes["outside"]
        no_token = await http.post("/ga4gh/tes/v1/tasks", json=summary_task(world))
        assert no_token.status_code == 401
        steward = await http.post("/ga4gh/tes/v1/tasks", json=summary_task(world), headers={
            "Authorization": f"Bearer {token(stack, 'sara', 'steward:FI')}"})
        assert steward.status_code == 403
        bad = await http.post("/ga4gh/tes/v1/tasks", json={"executors": []}, headers=headers(stack, "alice-tes"))
        assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"
    denied = []
    async for record in kafka.read_log(stack, [stack.topic("audit")], idle_timeout=1.0):
        event = decode(record.value)
        if event.data.resource.startswith(f"TES task {carol}"):
            denied.append((event.data.decision, event.data.reason, event.data.user_id))
    assert denied == [("deny", "no_grant", "carol-tes")]


async def test_a_task_has_no_network_and_says_so(stack: Settings, world) -> None:
    gateway_port = httpx.URL(stack.gateway_url).port
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as http:
        task_id = await submit(http, stack, "alice-tes", {
            "name": "net probe", "executors": [{"image": world["probe"], "command": [
                "python", "/tool/net_probe.py", "example.org", "127.0.0.1", str(gateway_port)]}]})
        done = await until(http, stack, "alice-tes", task_id, TERMINAL)
    assert done["state"] == "EXECUTOR_ERROR"
    stdout = done["logs"][0]["logs"][0]["stdout"]
    assert "resolve example.org: refused" in stdout and f"connect 127.0.0.1:{gateway_port}: refused" in stdout
    assert done["logs"][0]["logs"][0]["exit_code"] == 1


async def test_views_filters_paging_and_cancel(stack: Settings, world) -> None:
    user = f"paula-{uuid.uuid4().hex[:6]}"
    sleeper = {"name": "sleeper-a", "tags": {"kind": "sleep"}, "executors": [
        {"image": world["summary"], "command": ["python", "-c", "import time; time.sleep(120)"]}]}
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as http:
        first = await submit(http, stack, user, sleeper)
        second = await submit(http, stack, user, {**sleeper, "name": "other-b", "tags": {"kind": "other"}})
        await until(http, stack, user, first, {"RUNNING", "QUEUED", "INITIALIZING"})

        def listed(**params: Any) -> Any:
            return http.get("/ga4gh/tes/v1/tasks", params=params, headers=headers(stack, user))

        everything = (await listed(view="BASIC")).json()
        check(SPEC, "tesListTasksResponse", everything)
        assert [t["id"] for t in everything["tasks"]] == [second, first]
        assert [t["id"] for t in (await listed(name_prefix="sleeper")).json()["tasks"]] == [first]
        assert [t["id"] for t in (await listed(tag_key="kind", tag_value="other")).json()["tasks"]] == [second]
        assert {t["id"] for t in (await listed(tag_key="kind")).json()["tasks"]} == {first, second}
        page = (await listed(page_size=1)).json()
        assert [t["id"] for t in page["tasks"]] == [second] and page["next_page_token"]
        rest = (await listed(page_size=1, page_token=page["next_page_token"])).json()
        assert [t["id"] for t in rest["tasks"]] == [first] and "next_page_token" not in rest
        assert (await listed(page_token="not-ours")).status_code == 400

        for task_id in (first, second):
            cancel = await http.post(f"/ga4gh/tes/v1/tasks/{task_id}:cancel", headers=headers(stack, user))
            assert cancel.status_code == 200 and cancel.json() == {}
        for task_id in (first, second):
            assert (await until(http, stack, user, task_id, TERMINAL))["state"] == "CANCELED"
        assert [t["id"] for t in (await listed(state="CANCELED")).json()["tasks"]] == [second, first]
        again = await http.post(f"/ga4gh/tes/v1/tasks/{first}:cancel", headers=headers(stack, user))
        assert again.status_code == 200  # an ended task stays as it ended
        assert (await until(http, stack, user, first, TERMINAL))["state"] == "CANCELED"
        info = (await http.get("/ga4gh/tes/v1/service-info")).json()
        check(SPEC, "tesServiceInfo", info)
        assert info["type"]["artifact"] == "tes"


def executor_pid(settings: Settings) -> int:
    return read_state(settings.data_dir)["components"]["executor"]["pid"]


def sandboxed(uid_base: int = 620000) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if uid_base <= os.stat(f"/proc/{entry}").st_uid < uid_base + 1000:
                    found.append(int(entry))
            except FileNotFoundError:
                pass
    return found


async def test_kill_9_of_the_executor_mid_task_ends_it_as_a_system_error_never_complete(stack: Settings,
                                                                                        world) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as http:
        task_id = await submit(http, stack, "alice-tes", {"name": "long", "executors": [
            {"image": world["summary"], "command": ["python", "-c", "import time; time.sleep(300)"]}]})
        await until(http, stack, "alice-tes", task_id, {"RUNNING"})
        os.kill(executor_pid(stack), signal.SIGKILL)
        deadline = time.monotonic() + 15
        while sandboxed():
            assert time.monotonic() < deadline, "the task outlived its executor"
            await asyncio.sleep(0.1)
        done = await until(http, stack, "alice-tes", task_id, TERMINAL, timeout=90)
    assert done["state"] == "SYSTEM_ERROR"
    assert any("executor" in line and "not run again" in line for line in done["logs"][-1]["system_logs"])
    states = []
    async for record in kafka.read_log(stack, [stack.topic("processing")], idle_timeout=1.0):
        event = decode(record.value)
        if event.type == "task.state_changed" and event.data.task_id == task_id:
            states.append(event.data.state)
    assert "COMPLETE" not in states and states.count("RUNNING") == 1, states
