"""Data access against the real stack: applications decided by each dataset's DAC, grants, vetoes,
revocations and expiry, and the enforcement point's every decision audited on the log."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from genomebus.infra import kafka
from genomebus.infra.visas import issue_dev_token, issue_dev_visa
from genomebus.producers.access import AccessClient, AccessRefused
from genomebus.producers.datasets import build_command, register_dataset, release_dataset
from genomebus.producers.submit import submit_file
from genomebus.schemas.envelope import decode
from genomebus.schemas.reception import DatasetRegisterRequested
from tests.integration.helpers import new_dataset_id

pytestmark = pytest.mark.integration

SMALL_VCF = Path(__file__).resolve().parents[2] / "data" / "variants" / "sample1-bcbio-cancer.vcf.gz"
_dacs = itertools.count(1)
HMB_USE = {"terms": ["DUO:0000006"], "will_publish": True, "ethics_approval": True}


def token(settings: Any, sub: str, *roles: str, ttl: int = 600) -> str:
    return issue_dev_token(settings, sub=sub, roles=list(roles), ttl_s=ttl)


async def released_dataset(settings: Any, publisher: Any, dac: str, data_use: tuple[str, ...]) -> str:
    dataset_id = new_dataset_id()
    outcome = await register_dataset(settings, build_command(
        DatasetRegisterRequested, dataset_id=dataset_id, title="access test", data_use=data_use, dac_id=dac,
        individuals=({"id": "P1", "sex": "female"},)), actor="steward-test", publisher=publisher)
    assert outcome.accepted, outcome
    done = await submit_file(settings, dataset_id, SMALL_VCF, actor="seq-centre", publisher=publisher)
    assert done.outcome.accepted, done.outcome
    async with httpx.AsyncClient(base_url=settings.gateway_url) as http:
        for _ in range(600):
            if (await http.get(f"/files/{done.file_id}")).json().get("state") == "archived":
                break
            await asyncio.sleep(0.2)
    released = await release_dataset(settings, dataset_id, actor="steward-test", publisher=publisher)
    assert released.accepted, released
    return dataset_id


@pytest.fixture(scope="module")
async def two_dacs(stack: Any, publisher: Any) -> dict[str, str]:
    """Two released datasets, each decided by its own DAC: one for health research, one for ancestry only."""
    n = next(_dacs)
    dac_a, dac_b = f"T-DAC-A{os.getpid()}-{n}", f"T-DAC-B{os.getpid()}-{n}"
    hmb, poa = await asyncio.gather(released_dataset(stack, publisher, dac_a, ("DUO:0000006",)),
                                    released_dataset(stack, publisher, dac_b, ("DUO:0000011",)))
    return {"hmb": hmb, "poa": poa, "dac_a": dac_a, "dac_b": dac_b}


def client(settings: Any, tok: str) -> AccessClient:
    return AccessClient(settings, tok)


async def approved(settings: Any, user: str, dataset: str, dac: str, *, days: float = 30) -> dict[str, Any]:
    """An application by ``user`` for ``dataset``, submitted and approved by ``dac``."""
    async with client(settings, token(settings, user, "researcher")) as researcher:
        app = await researcher.apply([dataset], project_title="t", purpose="p", research_use=HMB_USE)
        await researcher.submit(app["id"])
    async with client(settings, token(settings, f"chair-{dac}", f"dac_member:{dac}")) as chair:
        return await chair.decide(app["id"], dataset, "approve",
                                  expires_at=datetime.now(UTC) + timedelta(days=days))


async def audit_events(settings: Any) -> dict[str, dict[str, Any]]:
    out = {}
    async for record in kafka.read_log(settings, [settings.topic("audit")]):
        event = decode(record.value)
        out[str(event.id)] = {"type": event.type, **event.data.model_dump(mode="json")}
    return out


async def test_an_application_over_two_dacs_is_checked_returned_resubmitted_and_each_dac_decides_its_own(
        stack, two_dacs):
    hmb, poa, dac_a, dac_b = two_dacs["hmb"], two_dacs["poa"], two_dacs["dac_a"], two_dacs["dac_b"]
    async with client(stack, token(stack, "carol", "researcher")) as carol, \
            client(stack, token(stack, "chair-a", f"dac_member:{dac_a}")) as chair_a, \
            client(stack, token(stack, "chair-b", f"dac_member:{dac_b}")) as chair_b:
        app = await carol.apply([hmb, poa], project_title="Modifiers", purpose="Find modifiers",
                                research_use=HMB_USE)
        assert app["state"] == "draft"
        assert {d["dataset_id"]: d["dac_id"] for d in app["datasets"]} == {hmb: dac_a, poa: dac_b}

        app = await carol.submit(app["id"])
        verdicts = {d["dataset_id"]: d["verdict"] for d in app["datasets"]}
        assert verdicts == {hmb: "compatible", poa: "incompatible"}, app["datasets"]

        with pytest.raises(AccessRefused) as not_theirs:
            await chair_a.decide(app["id"], poa, "approve", expires_at=datetime.now(UTC) + timedelta(days=30))
        assert not_theirs.value.status == 403
        assert {r["code"] for r in not_theirs.value.reasons} == {"not_dac_member"}

        await chair_a.decide(app["id"], hmb, "approve", expires_at=datetime.now(UTC) + timedelta(days=30))
        returned = await chair_b.decide(app["id"], poa, "return", reason="Describe the ancestry question")
        assert {d["dataset_id"]: d["state"] for d in returned["datasets"]} == {hmb: "approved", poa: "returned"}

        again = await carol.submit(app["id"], changes={
            "project_title": "Modifiers", "purpose": "Ancestry of modifier alleles",
            "research_use": {"terms": ["DUO:0000011"]}})
        assert again["round"] == 2
        assert {d["dataset_id"]: d["state"] for d in again["datasets"]} == {hmb: "approved", poa: "pending"}
        final = await chair_b.decide(app["id"], poa, "approve", expires_at=datetime.now(UTC) + timedelta(days=10))
        assert {d["state"] for d in final["datasets"]} == {"approved"}
        grants = await carol.grants()
        assert {g["dataset_id"] for g in grants} >= {hmb, poa}

        with pytest.raises(AccessRefused) as illegal:  # approved already: the decider names the state
            await chair_b.decide(app["id"], poa, "reject", reason="changed my mind")
        assert illegal.value.status == 409
        history = [e["type"] for e in (await carol.application(app["id"]))["history"]]
        assert history[:3] == ["access.requested", "access.submitted", "access.checked"]
        assert history.count("access.submitted") == 2


async def test_a_wrong_role_is_403_and_no_token_is_401(stack, two_dacs):
    async with client(stack, token(stack, "dave", "researcher")) as dave:
        app = await dave.apply([two_dacs["hmb"]], project_title="t", purpose="p", research_use=HMB_USE)
        with pytest.raises(AccessRefused) as decide:
            await dave.decide(app["id"], two_dacs["hmb"], "approve", expires_at=datetime.now(UTC) + timedelta(days=1))
        assert decide.value.status == 403
        with pytest.raises(AccessRefused) as veto:
            await dave.veto(app["id"], two_dacs["hmb"], "no")
        assert veto.value.status == 403
    async with httpx.AsyncClient(base_url=stack.gateway_url) as http:
        anonymous = await http.get("/access/applications")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        assert anonymous.headers["content-type"] == "application/problem+json"


async def test_a_grant_opens_the_records_and_every_decision_is_audited(stack, two_dacs):
    hmb = two_dacs["hmb"]
    await approved(stack, "erin", hmb, two_dacs["dac_a"])
    erin = token(stack, "erin", "researcher")
    async with httpx.AsyncClient(base_url=stack.gateway_url) as http:
        allowed = await http.get(f"/datasets/{hmb}/individuals", headers={"Authorization": f"Bearer {erin}"})
        assert allowed.status_code == 200, allowed.text
        assert [i["id"] for i in allowed.json()["individuals"]] == ["P1"]
        passport = (await http.get("/passport", headers={"Authorization": f"Bearer {erin}"})).json()["passport"]
        by_passport = await http.post(f"/datasets/{hmb}/individuals", json={"passports": [passport]})
        assert by_passport.status_code == 200, by_passport.text
        other = await http.get(f"/datasets/{two_dacs['poa']}/individuals", headers={"Authorization": f"Bearer {erin}"})
        assert other.status_code == 403
        visa_elsewhere = await http.post(f"/datasets/{two_dacs['poa']}/individuals", json={"passports": [passport]})
        assert visa_elsewhere.status_code == 403
        nobody = await http.get(f"/datasets/{hmb}/individuals")
        assert nobody.status_code == 401 and "Bearer" in nobody.headers["www-authenticate"]
    events = await audit_events(stack)
    expected = {allowed: ("data.accessed", "grant_active"), by_passport: ("data.accessed", "grant_active"),
                other: ("data.access_denied", "no_grant"), visa_elsewhere: ("data.access_denied", "no_visa_for_dataset"),
                nobody: ("data.access_denied", "credentials_required")}
    for response, (kind, reason) in expected.items():
        event = events[response.headers["x-audit-event"]]
        assert (event["type"], event["reason"]) == (kind, reason), event
    assert events[allowed.headers["x-audit-event"]]["user_id"] == "erin"
    assert events[allowed.headers["x-audit-event"]]["grant_id"]


def _forged(settings: Any, **claims: Any) -> str:
    key = ECKey.generate_key("P-256", parameters={"kid": "forged"})
    now = int(time.time())
    body = {"iss": "urn:genomebus:dev-issuer", "sub": "mallory", "aud": settings.auth_audience, "iat": now,
            "exp": now + 600, "genomebus_roles": ["researcher"], **claims}
    return jwt.encode({"alg": "ES256", "kid": "forged"}, body, key)


def _unsigned(settings: Any) -> str:
    import base64

    def b64(obj: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    now = int(time.time())
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64({'iss': 'urn:genomebus:dev-issuer', 'sub': 'erin', 'aud': settings.auth_audience, 'iat': now, 'exp': now + 600})}."


async def test_bad_credentials_are_401_and_audited(stack, two_dacs):
    hmb = two_dacs["hmb"]
    good = token(stack, "erin", "researcher")
    head, payload, signature = good.split(".")
    cases = {
        "forged signature": _forged(stack),
        "alg none": _unsigned(stack),
        "tampered payload": f"{head}.{payload[:-4]}AAAA.{signature}",
        "wrong audience": issue_dev_token(stack, sub="erin", roles=["researcher"], ttl_s=600, audience="elsewhere"),
        "oversized": "a" * (stack.auth_max_token_bytes + 10),
    }
    async with httpx.AsyncClient(base_url=stack.gateway_url) as http:
        responses = {name: await http.get(f"/datasets/{hmb}/individuals", headers={"Authorization": f"Bearer {t}"})
                     for name, t in cases.items()}
    events = await audit_events(stack)
    for name, response in responses.items():
        assert response.status_code == 401, (name, response.text)
        assert 'error="invalid_token"' in response.headers["www-authenticate"], name
        assert events[response.headers["x-audit-event"]]["type"] == "data.access_denied", name


async def test_revocation_and_vetoes_refuse_at_once(stack, two_dacs):
    hmb, dac_a = two_dacs["hmb"], two_dacs["dac_a"]
    app = await approved(stack, "frank", hmb, dac_a)
    frank = {"Authorization": f"Bearer {token(stack, 'frank', 'researcher')}"}
    async with httpx.AsyncClient(base_url=stack.gateway_url) as http:
        assert (await http.get(f"/datasets/{hmb}/individuals", headers=frank)).status_code == 200
        passport = (await http.get("/passport", headers=frank)).json()["passport"]
        async with client(stack, token(stack, "chair", f"dac_member:{dac_a}")) as chair:
            await chair.revoke(app["id"], hmb, "consent withdrawn")
        revoked_at = time.monotonic()
        refused = await http.get(f"/datasets/{hmb}/individuals", headers=frank)
        assert refused.status_code == 403 and time.monotonic() - revoked_at < 1.0
        assert refused.json()["reason"] == "revoked"
        old_passport = await http.post(f"/datasets/{hmb}/individuals", json={"passports": [passport]})
        assert old_passport.status_code == 403  # the visa is unexpired, the grant behind it is not active

        app2 = await approved(stack, "grace", hmb, dac_a)
        async with client(stack, token(stack, "steward", "steward:FI")) as steward:
            vetoed = await steward.veto(app2["id"], hmb, "not covered by consent")
        assert {d["state"] for d in vetoed["datasets"]} == {"vetoed"}
        grace = {"Authorization": f"Bearer {token(stack, 'grace', 'researcher')}"}
        assert (await http.get(f"/datasets/{hmb}/individuals", headers=grace)).status_code == 403

        visa = issue_dev_visa(stack, sub="heidi", dataset_id=hmb, ttl_s=600)
        central = await http.post(f"/datasets/{hmb}/individuals", json={"passports": [visa]})
        assert central.status_code == 200, central.text
        async with client(stack, token(stack, "steward", "steward:FI")) as steward:
            await steward.veto_central(hmb, "heidi", "not covered by consent")
        after = await http.post(f"/datasets/{hmb}/individuals", json={"passports": [visa]})
        assert after.status_code == 403 and after.json()["reason"] == "vetoed"


async def test_a_grant_expires_once_at_its_time(stack, two_dacs):
    hmb = two_dacs["hmb"]
    app = await approved(stack, "ivan", hmb, two_dacs["dac_a"], days=4 / 86400)
    ivan = {"Authorization": f"Bearer {token(stack, 'ivan', 'researcher')}"}
    async with httpx.AsyncClient(base_url=stack.gateway_url) as http:
        assert (await http.get(f"/datasets/{hmb}/individuals", headers=ivan)).status_code == 200
        async with client(stack, token(stack, "ivan", "researcher")) as me:
            for _ in range(100):
                state = {d["dataset_id"]: d["state"] for d in (await me.application(app["id"]))["datasets"]}
                if state[hmb] == "expired":
                    break
                await asyncio.sleep(0.2)
        assert state[hmb] == "expired"
        refused = await http.get(f"/datasets/{hmb}/individuals", headers=ivan)
        assert refused.status_code == 403 and refused.json()["reason"] == "expired"
    await asyncio.sleep(2.5)  # the timer runs every second: it must not fire again
    expired = [e async for e in _access_events(stack) if e["type"] == "access.expired"
               and e["application_id"] == app["id"]]
    assert len(expired) == 1


async def _access_events(settings: Any):  # noqa: ANN202
    async for record in kafka.read_log(settings, [settings.topic("access")]):
        event = decode(record.value)
        yield {"type": event.type, **event.data.model_dump(mode="json")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_no_audit_event_is_lost_when_the_gateway_is_killed_mid_load(stack, two_dacs, node_dir):
    hmb = two_dacs["hmb"]
    await approved(stack, "judy", hmb, two_dacs["dac_a"])
    port = _free_port()
    env = {**os.environ, "GENOMEBUS_DATA_DIR": str(node_dir)}
    gateway = subprocess.Popen([sys.executable, "-m", "genomebus", "gateway", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: list[str] = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            for _ in range(200):
                try:
                    if (await http.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            judy = {"Authorization": f"Bearer {token(stack, 'judy', 'researcher')}"}
            nobody: dict[str, str] = {}

            async def reader(n: int) -> None:
                for i in itertools.count():
                    try:
                        r = await http.get(f"/datasets/{hmb}/individuals", headers=judy if (n + i) % 2 else nobody)
                    except httpx.TransportError:
                        return
                    if "x-audit-event" in r.headers:
                        seen.append(r.headers["x-audit-event"])

            readers = [asyncio.create_task(reader(n)) for n in range(8)]
            while len(seen) < 150:
                await asyncio.sleep(0.01)
            os.kill(gateway.pid, signal.SIGKILL)
            await asyncio.wait_for(asyncio.gather(*readers), 30)
    finally:
        gateway.kill()
        gateway.wait()
    events = await audit_events(stack)
    missing = [e for e in seen if e not in events]
    assert len(seen) >= 150 and not missing, f"{len(missing)} of {len(seen)} answered decisions have no audit event"
