"""The demo's access chapter: apply, the DUO check, DAC decisions, a passport, audited reads, a veto.

A researcher (alice) applies for the released dataset 001 (DAC FI-DAC-1) and for 003, limited to
population-ancestry research (DAC FI-DAC-2); the check flags the mismatch on 003; each DAC decides
its own dataset; alice's passport opens 001's individual-level records, and the read is audited.
Bob holds a visa from the central access service for 001; the node's steward vetoes it, and bob
is refused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from genomebus.infra.settings import Settings

SECOND = "GDI-FI-DATASET-003"
RESEARCH_USE = {"terms": ["DUO:0000007"], "diseases": ["OMIM:254800"], "will_publish": True,
                "ethics_approval": True, "countries": ["FI"]}


def access_story(settings: Settings, http: httpx.Client, dataset_id: str, vcf: Path,
                 say: Callable[[str], None], out: Callable[[str], None]) -> bool:
    from genomebus.infra.visas import ensure_dev_issuers, issue_dev_token, issue_dev_visa

    ensure_dev_issuers(settings)
    alice = issue_dev_token(settings, sub="alice", roles=["researcher"], ttl_s=3600)
    dac1 = issue_dev_token(settings, sub="dac-chair-1", roles=["dac_member:FI-DAC-1"], ttl_s=3600)
    dac2 = issue_dev_token(settings, sub="dac-chair-2", roles=["dac_member:FI-DAC-2"], ttl_s=3600)
    steward = issue_dev_token(settings, sub="steward-fi", roles=[f"steward:{settings.node_id}"], ttl_s=3600)

    say(f"A second dataset, {SECOND}, limited to population-ancestry research (DUO:0000011) and decided by "
        "FI-DAC-2, is registered, given a VCF and released")
    if not asyncio.run(_second_dataset(settings, http, vcf)):
        out("[red]the second dataset could not be released[/red]")
        return False
    out(f"   {SECOND} released")

    say(f"alice (researcher, token from the development issuer) applies for {dataset_id} and {SECOND}: "
        "disease-specific research on Unverricht-Lundborg disease (DUO:0000007 with OMIM:254800)")
    app = _call(settings, alice, lambda c: c.apply([dataset_id, SECOND], project_title="EPM1 modifiers",
                                                  purpose="Search for genetic modifiers of EPM1 severity",
                                                  research_use=RESEARCH_USE))
    app_id = app["id"]
    app = _call(settings, alice, lambda c: c.submit(app_id))
    out(f"   application {app_id} submitted; the access decider checked the research use against each "
        "dataset's DUO terms (advice for the DACs):")
    for d in app["datasets"]:
        findings = "; ".join(f["message"] for f in d["findings"]) or "no finding"
        out(f"   {d['dataset_id']} ({d['dac_id']}): {d['verdict']} — {findings}")

    say("Each DAC decides its own dataset: FI-DAC-1 approves for a year, FI-DAC-2 rejects the mismatch")
    until = datetime.now(UTC) + timedelta(days=365)
    _call(settings, dac1, lambda c: c.decide(app_id, dataset_id, "approve", expires_at=until))
    try:
        _call(settings, dac1, lambda c: c.decide(app_id, SECOND, "approve", expires_at=until))
    except Exception as exc:  # noqa: BLE001 - shown as the refusal it is
        out(f"   FI-DAC-1 may not decide {SECOND}: {getattr(exc, 'status', '')} {exc}")
    app = _call(settings, dac2, lambda c: c.decide(app_id, SECOND, "reject",
                                                  reason="The dataset is limited to population-ancestry research"))
    for d in app["datasets"]:
        out(f"   {d['dataset_id']}: {d['state']}" + (f" until {d['expires_at'][:10]}" if d["expires_at"] else ""))

    say("alice gets her passport (GET /passport: a visa per active grant, signed by the node) and reads "
        f"{dataset_id}'s individual-level records with it; the read is audited")
    passport = _call(settings, alice, lambda c: c.passport())
    read = http.post(f"/datasets/{dataset_id}/individuals", json={"passports": [passport]})
    out(f"   POST /datasets/{dataset_id}/individuals → {read.status_code}, "
        f"{len(read.json().get('individuals', []))} individuals; audit event {read.headers.get('x-audit-event')}")
    anonymous = http.get(f"/datasets/{dataset_id}/individuals")
    out(f"   without a credential → {anonymous.status_code} {anonymous.headers.get('www-authenticate')}")
    other = http.get(f"/datasets/{SECOND}/individuals", headers={"Authorization": f"Bearer {alice}"})
    out(f"   {SECOND} with alice's token → {other.status_code} ({other.json().get('detail')})")

    bob = f"bob-{int(time.time()) % 100000}"  # a new user each run: a veto is for ever
    say(f"{bob} holds a visa for {dataset_id} from the central access service; this node's steward vetoes it")
    visa = issue_dev_visa(settings, sub=bob, dataset_id=dataset_id, ttl_s=3600)
    before = http.post(f"/datasets/{dataset_id}/individuals", json={"passports": [visa]})
    out(f"   before the veto → {before.status_code}")
    _call(settings, steward, lambda c: c.veto_central(dataset_id, bob, "Not covered by the Finnish biobank "
                                                                         "consent"))
    after = http.post(f"/datasets/{dataset_id}/individuals", json={"passports": [visa]})
    out(f"   after the veto → {after.status_code} ({after.json().get('detail')}); "
        f"audit event {after.headers.get('x-audit-event')}")

    say(f"An auditor reads the access decisions on {dataset_id} from the audit topic (user, resource, decision, "
        "reason, grant; never a query's content)")
    for entry in asyncio.run(_audit_trail(settings, dataset_id))[-6:]:
        out(f"   {entry}")
    return read.status_code == 200 and before.status_code == 200 and after.status_code == 403


async def _audit_trail(settings: Settings, dataset_id: str) -> list[str]:
    from genomebus.infra import kafka
    from genomebus.schemas.envelope import decode

    lines = []
    async for record in kafka.read_log(settings, [settings.topic("audit")]):
        if record.key == dataset_id.encode():
            e = decode(record.value)
            lines.append(f"{e.time:%H:%M:%S}  {e.data.decision:<5} {e.data.user_id or '(none)':<12} "
                         f"{e.data.resource}  {e.data.reason}" + (f"  grant {e.data.grant_id}" if e.data.grant_id else ""))
    return lines


def _call(settings: Settings, token: str, call: Callable[[Any], Any]) -> Any:
    from genomebus.producers.access import AccessClient

    async def go() -> Any:
        async with AccessClient(settings, token) as client:
            return await call(client)

    return asyncio.run(go())


async def _second_dataset(settings: Settings, http: httpx.Client, vcf: Path) -> bool:
    from genomebus.producers.datasets import build_command, register_dataset, release_dataset
    from genomebus.producers.submit import submit_file
    from genomebus.schemas.reception import DatasetRegisterRequested

    state = http.get(f"/datasets/{SECOND}")
    if state.status_code == 200 and state.json()["state"] == "released":
        return True
    if state.status_code == 404:
        await register_dataset(settings, build_command(
            DatasetRegisterRequested, dataset_id=SECOND, title="Finnish population reference sample",
            data_use=("DUO:0000011",), dac_id="FI-DAC-2"), actor="demo-steward")
    done = await submit_file(settings, SECOND, vcf, actor="demo-sequencing-centre")
    for _ in range(600):
        body = http.get(f"/files/{done.file_id}").json()
        if body.get("state") in ("archived", "qc_failed"):
            break
        await asyncio.sleep(0.3)
    released = await release_dataset(settings, SECOND, actor="demo-steward")
    return released.accepted or released.state == "released"
