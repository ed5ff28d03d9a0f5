"""WES 1.1 on the real stack: a granted researcher runs an approved two-step CWL workflow, scattered over two
VCFs, by cwltool in the task sandbox; each job is a WES task with its log; the outputs go to the airlock.
A failing step, a step that tries the network, no grant, an unapproved workflow, attachments that are
not the version's, cancel mid-run. Every answer is checked against specs/wes.openapi.yaml."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pysam
import pytest

from genomebus.infra import kafka
from genomebus.infra.readmodels.tools import trs_url
from genomebus.infra.settings import Settings
from genomebus.producers.tools import EXAMPLES, approve_tool, load_tool, register_tool
from genomebus.schemas.envelope import decode
from tests.data import DATA
from tests.integration.storage import StoredDataset, archived_dataset, granted, token
from tests.openapi_schemas import check

pytestmark = pytest.mark.integration

SPEC = "wes.openapi.yaml"
WES = "/ga4gh/wes/v1"
BIG = DATA / "variants" / "HG02102.vcf.gz"
SMALL = DATA / "variants" / "NA18537.vcf.gz"
REGION = "21:10000001-20000000"
OWNER = "alice-wes"
TERMINAL = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"}


def workflow_folder(tmp: Path, name: str, steps: str, inputs: str = "variants: File[]") -> Path:
    """A one-file CWL workflow whose steps run Python in the node's runtime."""
    folder = tmp / name
    folder.mkdir()
    (folder / f"{name}.cwl").write_text(
        f"cwlVersion: v1.2\nclass: Workflow\nrequirements:\n  ScatterFeatureRequirement: {{}}\n"
        f"inputs:\n  {inputs}\noutputs: []\nsteps:\n{steps}")
    (folder / "tool.json").write_text(json.dumps({
        "id": name, "name": name, "description": f"{name} (a test workflow)", "organization": "tests",
        "toolclass": "Workflow", "version": "1.0.0", "runtime": "python-pysam", "authors": ["tests"],
        "primary_descriptor": f"{name}.cwl"}))
    return folder


def python_step(name: str, code: str) -> str:
    return (f"  {name}:\n    in: {{vcfs: variants}}\n    out: []\n    run:\n      class: CommandLineTool\n"
            f"      baseCommand: [python, -c, {json.dumps(code)}]\n      inputs:\n        vcfs: File[]\n"
            "      outputs: []\n")


async def approved(settings: Settings, folder: Path, *, approve: bool = True) -> str:
    command = load_tool(folder)
    command = command.model_copy(update={"tool_id": f"{command.tool_id}-{uuid.uuid4().hex[:8]}"})
    assert (await register_tool(settings, command, actor="steward-sara")).accepted
    if approve:
        assert (await approve_tool(settings, command.tool_id, "1.0.0", actor="steward-sara")).accepted
    return trs_url(settings, command.tool_id, "1.0.0")


@pytest.fixture(scope="module")
async def world(stack: Settings, publisher, tmp_path_factory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("workflows")
    stored: StoredDataset = await archived_dataset(stack, publisher, [(BIG, None), (SMALL, None)], title="wes test")
    await granted(stack, OWNER, stored)
    marker = f"wes-sleep-{uuid.uuid4().hex[:8]}"
    return {
        "stored": stored, "marker": marker,
        "summary": await approved(stack, EXAMPLES / "region-summary"),
        "unapproved": await approved(stack, EXAMPLES / "region-summary", approve=False),
        "failing": await approved(stack, workflow_folder(tmp, "fails", python_step(
            "breaks", "import sys; print('about to fail'); sys.stderr.write('boom\\n'); sys.exit(3)"))),
        "network": await approved(stack, workflow_folder(tmp, "phones-home", python_step(
            "phone", "import socket; socket.create_connection(('127.0.0.1', 80), timeout=5)"))),
        "sleepy": await approved(stack, workflow_folder(tmp, "sleeps", python_step(
            "sleep", f"import time; marker = '{marker}'; time.sleep(120)"))),
    }


def headers(settings: Settings, user: str = OWNER) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(settings, user, 'researcher', ttl=3600)}"}


def drs(world: dict[str, Any], vcf: Path) -> dict[str, str]:
    return {"class": "File", "location": f"drs://node/{world['stored'].objects[vcf.name]}", "basename": vcf.name}


def form(url: str, params: dict[str, Any], **more: str) -> dict[str, str]:
    return {"workflow_url": url, "workflow_type": "CWL", "workflow_type_version": "v1.2",
            "workflow_params": json.dumps(params), **more}


async def submit(http: httpx.AsyncClient, settings: Settings, data: dict[str, str], user: str = OWNER,
                 files: Any = None) -> str:
    response = await http.post(f"{WES}/runs", data=data, files=files, headers=headers(settings, user))
    assert response.status_code == 200, response.text
    check(SPEC, "RunId", response.json())
    return response.json()["run_id"]


async def until(http: httpx.AsyncClient, settings: Settings, run_id: str, states: set[str],
                timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = (await http.get(f"{WES}/runs/{run_id}", headers=headers(settings))).json()
        if body.get("state") in states and (body["state"] not in TERMINAL or body["state"] == "SYSTEM_ERROR"
                                            or body.get("task_logs") is not None):
            check(SPEC, "RunLog", body)
            return body
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.3)


def region_counts(vcf: Path) -> dict[tuple[str, str], int]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("variant_summary", EXAMPLES / "variant-summary" / "variant_summary.py")
    tool = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(tool)  # type: ignore[union-attr]
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    with pysam.VariantFile(str(vcf)) as records:
        for r in records:
            if r.chrom == "21" and r.pos <= 20_000_000 and r.stop >= 10_000_001:
                for alt in r.alts or ():
                    counts[r.chrom, tool.kind(r.ref, alt)] += 1
    return dict(counts)


async def test_a_two_step_workflow_scattered_over_two_vcfs_runs_and_its_outputs_reach_the_airlock(
        stack: Settings, world) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as http:
        info = (await http.get(f"{WES}/service-info")).json()
        check(SPEC, "ServiceInfo", info)
        assert info["workflow_type_versions"]["CWL"]["workflow_type_version"] == ["v1.0", "v1.1", "v1.2"]
        run_id = await submit(http, stack, form(world["summary"], {"variants": [drs(world, BIG), drs(world, SMALL)],
                                                                   "region": REGION}, tags=json.dumps({"p": "1"})))
        status = (await http.get(f"{WES}/runs/{run_id}/status", headers=headers(stack))).json()
        check(SPEC, "RunStatus", status)
        done = await until(http, stack, run_id, TERMINAL)
        assert done["state"] == "COMPLETE", done
        jobs = {t["name"]: t for t in done["task_logs"]}
        assert set(jobs) == {"filter", "filter_2", "summarise", "summarise_2"}, jobs
        assert all(t["exit_code"] == 0 and t["start_time"] <= t["end_time"] for t in jobs.values())
        assert jobs["filter"]["cmd"][:2] == ["python", "/tool/filter_region.py"]
        assert [t["basename"] for t in done["outputs"]["tables"]] == ["HG02102.summary.tsv", "NA18537.summary.tsv"]
        assert done["request"]["tags"] == {"p": "1"} and done["run_log"]["exit_code"] == 0

        page = (await http.get(f"{WES}/runs/{run_id}/tasks", params={"page_size": 3},
                               headers=headers(stack))).json()
        check(SPEC, "TaskListResponse", page)
        rest = (await http.get(f"{WES}/runs/{run_id}/tasks", params={"page_token": page["next_page_token"]},
                               headers=headers(stack))).json()
        assert [t["id"] for t in page["task_logs"] + rest["task_logs"]] == [t["id"] for t in done["task_logs"]]
        assert rest["next_page_token"] == ""
        one = (await http.get(f"{WES}/runs/{run_id}/tasks/{page['task_logs'][0]['id']}", headers=headers(stack)))
        check(SPEC, "TaskLog", one.json())
        listed = (await http.get(f"{WES}/runs", headers=headers(stack))).json()
        check(SPEC, "RunListResponse", listed)
        assert run_id in [r["run_id"] for r in listed["runs"]]
        assert (await http.get(f"{WES}/runs/{run_id}", headers=headers(stack, "mallory-wes"))).status_code == 404

        # the outputs went to quarantine and the airlock checked them: the counts of the region, per VCF
        request = await _airlock(http, stack, f"task-{run_id}")
        assert {f["path"] for f in request["outputs"]} == {"/work/out/HG02102.summary.tsv",
                                                           "/work/out/NA18537.summary.tsv"}
        assert request["state"] in ("review", "rejected")  # NA18537's region has counts under 10: rejected
    assert region_counts(BIG)  # the region holds variants, so the table is not empty


async def _airlock(http: httpx.AsyncClient, settings: Settings, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        response = await http.get(f"/airlock/requests/{task_id}", headers=headers(settings))
        if response.status_code == 200 and response.json()["state"] != "checking":
            return response.json()
        assert time.monotonic() < deadline, response.text
        await asyncio.sleep(0.3)


async def test_a_failing_step_makes_the_run_an_executor_error_with_that_steps_log(stack: Settings, world) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as http:
        run_id = await submit(http, stack, form(world["failing"], {"variants": [drs(world, SMALL)]}))
        done = await until(http, stack, run_id, TERMINAL)
        assert done["state"] == "EXECUTOR_ERROR", done
        [step] = done["task_logs"]
        assert step["name"] == "breaks" and step["exit_code"] == 3
        assert "boom" in step["system_logs"] and "about to fail" in step["system_logs"]
        assert any("final status permanentFail" in line for line in done["run_log"]["system_logs"])
        # nothing of a failed run goes to the airlock
        assert (await http.get(f"/airlock/requests/task-{run_id}", headers=headers(stack))).status_code == 404


async def test_a_step_that_tries_the_network_fails(stack: Settings, world) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as http:
        run_id = await submit(http, stack, form(world["network"], {"variants": [drs(world, SMALL)]}))
        done = await until(http, stack, run_id, TERMINAL)
        assert done["state"] == "EXECUTOR_ERROR", done
        assert len(done["task_logs"]) == 1, done
        [step] = done["task_logs"]
        assert step["exit_code"] == 1 and any("Network is unreachable" in line for line in step["system_logs"])


async def test_no_grant_or_an_unapproved_workflow_is_rejected_and_audited(stack: Settings, world) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as http:
        ungranted = await submit(http, stack, form(world["summary"], {"variants": [drs(world, BIG)],
                                                                      "region": REGION}), user="mallory-wes")
        unapproved = await submit(http, stack, form(world["unapproved"], {"variants": [drs(world, BIG)],
                                                                          "region": REGION}))
        for run_id, user, code in ((ungranted, "mallory-wes", "no_grant"),
                                   (unapproved, OWNER, "workflow_not_approved")):
            body = (await http.get(f"{WES}/runs/{run_id}", headers=headers(stack, user))).json()
            deadline = time.monotonic() + 60
            while body["state"] == "UNKNOWN" and time.monotonic() < deadline:
                await asyncio.sleep(0.3)
                body = (await http.get(f"{WES}/runs/{run_id}", headers=headers(stack, user))).json()
            check(SPEC, "RunLog", body)
            assert body["state"] == "SYSTEM_ERROR" and any(code in line for line in body["run_log"]["system_logs"])
    denied = []
    async for record in kafka.read_log(stack, [stack.topic("audit")], idle_timeout=1.0):
        event = decode(record.value)
        if event.type == "data.access_denied" and event.data.user_id == "mallory-wes":
            denied.append(event.data)
    assert denied and all(d.credential == "task" and d.reason == "no_grant" for d in denied)


async def test_bad_requests_get_wes_errors(stack: Settings, world) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as http:
        good = form(world["summary"], {"variants": [drs(world, BIG)], "region": REGION})
        cases = [
            ({**good, "workflow_type": "WDL"}, None),
            ({**good, "workflow_type_version": "v2.0"}, None),
            ({**good, "workflow_params": "[1]"}, None),
            ({**good, "workflow_params": json.dumps({"v": {"class": "File", "location": "https://x.org/a"}})}, None),
            ({**good, "workflow_engine_parameters": json.dumps({"outdir": "/"})}, None),
            (good, {"workflow_attachment": ("region-summary.cwl", b"cwlVersion: v1.2\nclass: Workflow\n")}),
            (good, {"workflow_attachment": ("other.py", b"print(1)")}),
        ]
        for data, files in cases:
            response = await http.post(f"{WES}/runs", data=data, files=files, headers=headers(stack))
            assert response.status_code == 400, (data, response.text)
            check(SPEC, "ErrorResponse", response.json())
            assert response.json()["status_code"] == 400
        own = (EXAMPLES / "region-summary" / "filter_region.py").read_bytes()
        accepted = await http.post(f"{WES}/runs", data=good, files={"workflow_attachment": ("filter_region.py", own)},
                                   headers=headers(stack))
        assert accepted.status_code == 200, accepted.text
        assert (await http.post(f"{WES}/runs", data=good)).status_code == 401
        assert (await http.get(f"{WES}/runs/{'0' * 32}", headers=headers(stack))).status_code == 404


def processes_with(marker: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            pass
    return found


async def test_cancel_mid_run_stops_every_process(stack: Settings, world) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as http:
        run_id = await submit(http, stack, form(world["sleepy"], {"variants": [drs(world, SMALL)]}))
        deadline = time.monotonic() + 90
        while not processes_with(world["marker"]):
            assert time.monotonic() < deadline, "the sleeping step never started"
            await asyncio.sleep(0.3)
        cancelled = await http.post(f"{WES}/runs/{run_id}/cancel", headers=headers(stack))
        assert cancelled.status_code == 200 and cancelled.json() == {"run_id": run_id}
        done = await until(http, stack, run_id, {"CANCELED"}, timeout=60)
        assert done["state"] == "CANCELED"
        assert processes_with(world["marker"]) == []
