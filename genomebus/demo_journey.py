"""The demo's last chapter: one researcher's whole journey, as one trace, then read back from the log.

dana (a new researcher each run, so her journey is whole every time) asks the Beacon for the demo's
variant at record granularity (counts only, and each refusal of records audited), applies for
GDI-FI-DATASET-001, FI-DAC-1 approves, she runs the region-summary workflow (two CWL steps) through
WES on the granted VCF, two output checkers approve its table, and she downloads it. Every request of
the story carries one W3C trace id (``traceparent``); the gateway makes it the correlation id of
every event it publishes, the workers keep it, and ``genomebus audit journey`` prints the story from
the log: every event, its actor and time, in order.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from rich.table import Table

from genomebus.infra.settings import Settings

STEPS = ("discover", "apply", "approve", "run", "check", "release", "download")
REGION = "21:10000001-20000000"
VCF = "HG02102.vcf.gz"


def journey_story(settings: Settings, http: httpx.Client, dataset_id: str, variant: str,
                  say: Callable[[str], None], out: Callable[[Any], None], hint: Callable[..., str]) -> bool:
    return asyncio.run(_story(settings, http, dataset_id, variant, say, out, hint))


async def _story(settings: Settings, http: httpx.Client, dataset_id: str, variant: str,
                 say: Callable[[str], None], out: Callable[[Any], None], hint: Callable[..., str]) -> bool:
    from genomebus.audit import journey
    from genomebus.demo_access import RESEARCH_USE
    from genomebus.infra.readmodels.tools import trs_url
    from genomebus.infra.visas import issue_dev_token
    from genomebus.producers.access import AccessClient, new_journey, traceparent
    from genomebus.producers.discover import DiscoveryClient
    from genomebus.producers.processing import ProcessingClient
    from genomebus.producers.tools import EXAMPLES, approve_tool, load_tool, register_tool

    trace = new_journey()
    dana = f"dana-{uuid.uuid4().hex[:6]}"
    token = issue_dev_token(settings, sub=dana, roles=["researcher"], ttl_s=3600)
    dac = issue_dev_token(settings, sub="dac-chair-1", roles=["dac_member:FI-DAC-1"], ttl_s=3600)
    checkers = [issue_dev_token(settings, sub=c, roles=["output_checker"], ttl_s=3600)
                for c in ("olli-checker", "maria-checker")]

    say(f"The journey of one researcher, {dana}, as one trace ({trace}): discover → apply → approve → run → check "
        f"→ release → download. She asks the Beacon for {variant} at record granularity without a grant yet: the "
        "records are refused (each refusal audited) and she is answered with counts")
    async with DiscoveryClient(settings, token, journey=trace) as beacon:
        answer = await beacon.query(variant=variant, include="ALL", granularity="record")
    for rs in answer.result_sets:
        count = (f", count {rs.count_adjusted_to and f'1 to {rs.count_adjusted_to}' or rs.count}"
                 if rs.count is not None else "")
        out(f"   {rs.id}: {rs.granularity}, {'found' if rs.exists else 'not found'}{count}")

    say(f"She applies for {dataset_id}; FI-DAC-1 approves it")
    async with AccessClient(settings, token, journey=trace) as researcher:
        app = await researcher.apply([dataset_id], project_title="EPM1 regional burden",
                                     purpose="Count variant classes in the EPM1 region", research_use=RESEARCH_USE)
        await researcher.submit(app["id"])
    async with AccessClient(settings, dac, journey=trace) as chair:
        decided = await chair.decide(app["id"], dataset_id, "approve", expires_at=datetime.now(UTC) + timedelta(days=30))
    out(f"   application {app['id']}: {decided['state']}")

    command = load_tool(EXAMPLES / "region-summary")
    registered = await register_tool(settings, command, actor="demo-steward")
    if registered.accepted or {r.code for r in registered.reasons} == {"version_exists"}:
        await approve_tool(settings, command.tool_id, command.version.version_id, actor="demo-steward")
    workflow = trs_url(settings, command.tool_id, command.version.version_id)
    accession = next(f["accession"] for f in http.get(f"/datasets/{dataset_id}").json()["files"]
                     if f["filename"] == VCF)
    drs = f"drs://{urlsplit(settings.gateway_url).netloc}/{accession}"
    say(f"She runs the approved two-step CWL workflow region-summary (filter {REGION}, then count) through WES "
        f"on {VCF}: cwltool in the task sandbox, no network; each step a WES task")
    async with ProcessingClient(settings, token, journey=trace) as client:
        run_id = await client.submit_run(workflow, {"variants": [{"class": "File", "location": drs, "basename": VCF}],
                                                    "region": REGION}, tags={"journey": trace})
        run = await client.wait_run(run_id)
        steps = Table("WES task", "command", "exit", "start", "end")
        for t in run.get("task_logs") or ():
            steps.add_row(t["name"], " ".join((t.get("cmd") or [])[:2]), str(t.get("exit_code")),
                          t.get("start_time", ""), t.get("end_time", ""))
        out(f"   run {run_id}: {run['state']}")
        out(steps)
        if run["state"] != "COMPLETE":
            return False
        task_id = f"task-{run_id}"
        request = await client.wait_output_request(task_id, {"review", "rejected"})
        out(f"   the airlock's checks: {request['state']}")
        if request["state"] != "review":
            return False
    say("Two output checkers approve the table (the airlock); it is released to her alone")
    for checker in checkers:
        async with ProcessingClient(settings, checker, journey=trace) as as_checker:
            request = await as_checker.approve_output(task_id, note="aggregate counts, all 10 or more")
    out(f"   {request['state']}: {', '.join(r['object_id'] for r in request['released'])}")
    [released] = request["released"]

    say("She downloads it through DRS (two audited decisions: the signed URL, then the read)")
    async with ProcessingClient(settings, token, journey=trace) as client:
        url = await client.drs_access_url(released["object_id"])
    async with httpx.AsyncClient(timeout=30) as plain:
        table = (await plain.get(url, headers={"traceparent": traceparent(trace)})).text
    for line in table.splitlines():
        out(f"     {line}")

    say(f"The journey, from the log: `{hint(settings, 'audit', 'journey', trace)}`")
    events = await _journey_settled(settings, str(uuid.UUID(trace)), journey)
    t = Table("#", "time", "step", "event", "actor")
    for i, e in enumerate(events, 1):
        t.add_row(str(i), e["time"][11:23], e["step"], e["type"], e["who"])
    out(t)
    firsts = [next((i for i, e in enumerate(events) if e["step"] == s), None) for s in STEPS]
    in_order = None not in firsts and firsts == sorted(firsts)  # type: ignore[type-var]
    out(f"   every step of the story is on the log, in order: {'yes' if in_order else 'NO'}")
    return in_order


async def _journey_settled(settings: Settings, correlation: str, journey: Any) -> list[dict[str, Any]]:
    """The journey once its download's audit event is on the log (it is written before the bytes are sent)."""
    events: list[dict[str, Any]] = []
    for _ in range(20):
        events = await journey(settings, correlation)
        if any(e["step"] == "download" for e in events):
            break
        await asyncio.sleep(0.5)
    return events
