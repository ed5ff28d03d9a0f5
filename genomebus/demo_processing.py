"""The demo's processing chapter: compute goes to the data, and results leave only through the airlock.

The steward registers the example tools (``producers/examples/tools``) and approves them for this
node (TRS). alice, granted GDI-FI-DATASET-001 in the access chapter, runs variant-summary on its
HG02102 VCF through TES: the scheduler admits the task (her grant, audited; the approved version;
the limits), the executor stages the VCF decrypted into the sandbox (no network, nothing of the
node visible) and quarantines the table. The airlock's automatic checks pass it (every count is 10
or more), two output checkers (neither of them alice) approve, and alice downloads it through DRS as
her own object. A second task tries to reach the network and fails, showing why; a third writes a
per-sample genotype file, which the airlock blocks. A second run of the demo registers nothing
again (the versions are kept) and runs three new tasks.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
from rich.table import Table

from genomebus.infra.settings import Settings

TOOLS = ("variant-summary", "net-probe", "genotype-dump")
VCF = "HG02102.vcf.gz"
CHECKERS = ("olli-checker", "maria-checker")


async def _tools(settings: Settings) -> dict[str, str]:
    """Register and approve the example tools (kept from an earlier run); their TRS URLs."""
    from genomebus.infra.readmodels.tools import trs_url
    from genomebus.producers.tools import EXAMPLES, approve_tool, load_tool, register_tool

    urls = {}
    for name in TOOLS:
        command = load_tool(EXAMPLES / name)
        version = command.version.version_id
        registered = await register_tool(settings, command, actor="demo-steward")
        if not registered.accepted and {r.code for r in registered.reasons} != {"version_exists"}:
            raise RuntimeError(f"{name}: {'; '.join(r.message for r in registered.reasons)}")
        approved = await approve_tool(settings, command.tool_id, version, actor="demo-steward")
        if not approved.accepted and {r.code for r in approved.reasons} != {"already_approved"}:
            raise RuntimeError(f"{name}: {'; '.join(r.message for r in approved.reasons)}")
        urls[name] = trs_url(settings, command.tool_id, version)
    return urls


def _task(name: str, image: str, command: list[str], drs: str, output: str) -> dict[str, Any]:
    return {"name": name, "tags": {"demo": "processing"},
            "inputs": [{"url": drs, "path": "/work/in/calls.vcf.gz"}],
            "outputs": [{"path": output}],
            "executors": [{"image": image, "command": command}]}


def processing_story(settings: Settings, http: httpx.Client, dataset_id: str, say: Callable[[str], None],
                     out: Callable[[str], None], hint: Callable[..., str]) -> bool:
    return asyncio.run(_story(settings, http, dataset_id, say, out, hint))


async def _story(settings: Settings, http: httpx.Client, dataset_id: str, say: Callable[[str], None],
                 out: Callable[[str], None], hint: Callable[..., str]) -> bool:
    from genomebus.infra.visas import issue_dev_token
    from genomebus.producers.processing import ProcessingClient

    say("The steward registers three tools with their CWL descriptors (TRS) and approves them for this node: "
        f"`{hint(settings, 'tool', 'register', 'producers/examples/tools/variant-summary')}`, then `tool approve`")
    urls = await _tools(settings)
    for name, url in urls.items():
        out(f"   {name}: approved, named by tasks as {url}")

    accession = next(f["accession"] for f in http.get(f"/datasets/{dataset_id}").json()["files"]
                     if f["filename"] == VCF)
    drs = f"drs://{urlsplit(settings.gateway_url).netloc}/{accession}"
    alice = issue_dev_token(settings, sub="alice", roles=["researcher"], ttl_s=3600)
    checkers = [issue_dev_token(settings, sub=c, roles=["output_checker"], ttl_s=3600) for c in CHECKERS]

    async with ProcessingClient(settings, alice) as client:
        say(f"alice runs variant-summary on {VCF} of {dataset_id} through TES (POST /ga4gh/tes/v1/tasks): the "
            "scheduler checks her grant (audited), the approved version and the limits; the executor runs it in the "
            "sandbox with no network and puts the table in quarantine")
        summary = _task("variant summary", urls["variant-summary"],
                        ["python", "/tool/variant_summary.py", "/work/in/calls.vcf.gz", "/work/out/summary.tsv"],
                        drs, "/work/out/summary.tsv")
        task_id = await client.submit_task(summary)
        done = await client.wait_task(task_id)
        _show_task(out, done)
        if done["state"] != "COMPLETE":
            return False

        say("The airlock checks the table automatically (ACRO's rules: counts under 10, zeros, dominance); "
            f"`{hint(settings, 'airlock', 'show', task_id)}`")
        request = await client.wait_output_request(task_id, {"review", "rejected"})
        _show_checks(out, request)
        if request["state"] != "review":
            return False

        say(f"Two output checkers, {CHECKERS[0]} and {CHECKERS[1]}, approve (alice cannot approve her own): "
            f"`{hint(settings, 'airlock', 'approve', task_id)}` with GENOMEBUS_TOKEN set")
        alice_checker = issue_dev_token(settings, sub="alice", roles=["researcher", "output_checker"], ttl_s=600)
        async with ProcessingClient(settings, alice_checker) as as_alice:  # even if she held the role
            own = await _refusal(as_alice.approve_output(task_id))
        out(f"   alice, were she an output checker too, tries: {own}")
        for checker, token in zip(CHECKERS, checkers, strict=True):
            async with ProcessingClient(settings, token) as as_checker:
                after = await as_checker.approve_output(task_id, note="every count is 10 or more")
            out(f"   {checker} approves: {after['state']} ({len(after['approvals'])}/{after['approvals_required']})")
        if after["state"] != "released":
            return False

        [released] = after["released"]
        say(f"alice downloads the released table through DRS as her own object ({released['object_id']}): "
            f"`{hint(settings, 'fetch', released['object_id'])}`")
        url = await client.drs_access_url(released["object_id"])
        async with httpx.AsyncClient(timeout=30) as plain:
            table = (await plain.get(url)).content
        ok = hashlib.sha256(table).hexdigest() == released["sha256"]
        out(f"   {len(table)} bytes, sha256 {'matches' if ok else 'DOES NOT match'}:")
        for line in table.decode().splitlines():
            out(f"     {line}")
        async with ProcessingClient(settings, checkers[0]) as someone_else:
            other = await _refusal(someone_else.drs_access_url(released["object_id"]))
        out(f"   {CHECKERS[0]} asks for the same bytes: {other}")

        say("A task that tries the network (resolve a name, connect to the gateway's port) fails, and says why")
        port = urlsplit(settings.gateway_url).port or 80
        probe = _task("network probe", urls["net-probe"],
                      ["python", "/tool/net_probe.py", "example.org", "127.0.0.1", str(port)], drs,
                      "/work/out/none.txt")
        probed = await client.wait_task(await client.submit_task(probe))
        _show_task(out, probed)

        say("A task whose output is a per-sample genotype file (a VCF copy) completes, and the airlock blocks it")
        dump = _task("genotype dump", urls["genotype-dump"],
                     ["python", "/tool/genotype_dump.py", "/work/in/calls.vcf.gz", "/work/out/genotypes.vcf"],
                     drs, "/work/out/genotypes.vcf")
        dumped = await client.wait_task(await client.submit_task(dump))
        blocked = await client.wait_output_request(dumped["id"], {"rejected", "review"})
        _show_checks(out, blocked)
        return ok and probed["state"] == "EXECUTOR_ERROR" and blocked["state"] == "rejected"


async def _refusal(call: Any) -> str:
    from genomebus.producers.access import AccessRefused

    try:
        await call
    except AccessRefused as exc:
        return f"refused, {exc.status} ({exc.detail})"
    return "[red]allowed (it should not be)[/red]"


def _show_task(out: Callable[[str], None], task: dict[str, Any]) -> None:
    out(f"   {task['id']}: {task['state']}")
    for attempt in task.get("logs", []):
        for executor in attempt.get("logs", []):
            out(f"   exit code {executor.get('exit_code')}, {executor.get('start_time', '?')} → "
                f"{executor.get('end_time', '?')}")
            for line in (executor.get("stdout") or "").splitlines()[-4:]:
                out(f"     stdout: {line}")
        for line in attempt.get("system_logs", [])[-2:]:
            out(f"     system: {line}")


def _show_checks(out: Callable[[str], None], request: dict[str, Any]) -> None:
    t = Table("file", "kind", "verdict", "rule", "finding", show_lines=False)
    for f in (request.get("checks") or {}).get("files", []):
        for finding in f["findings"] or [{"rule": "—", "message": "no rule applies"}]:
            t.add_row(f["path"], f["kind"], f["verdict"], finding["rule"], finding["message"])
    out(f"   request {request['state']}" + (f": {request['rejection']['reason']}" if request.get("rejection") else ""))
    out(t)  # type: ignore[arg-type] - the demo's out prints any rich renderable
