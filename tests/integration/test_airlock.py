"""The output airlock on the real stack: a finished task's table checked automatically, two checkers
(never its owner) approve, then its owner alone downloads it through DRS, audited; one approval is not
enough; a reject ends it; a table with a small cell and a per-sample genotype file are rejected by the
checks; nothing in quarantine is reachable through DRS before release."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import httpx
import pytest

from genomebus.consumers.airlock import output_object_id
from genomebus.infra import kafka
from genomebus.infra.settings import Settings
from genomebus.schemas.envelope import decode
from tests.data import DATA
from tests.integration.storage import StoredDataset, archived_dataset, granted, token
from tests.integration.test_tes import TERMINAL, approved, submit, until

pytestmark = pytest.mark.integration

BIG = DATA / "variants" / "HG02102.vcf.gz"  # every count of the summary is 10 or more
SMALL = DATA / "variants" / "NA18537.vcf.gz"  # one count of 1: the threshold rule fails
OWNER = "alice-airlock"


@pytest.fixture(scope="module")
async def world(stack: Settings, publisher) -> dict[str, Any]:
    stored: StoredDataset = await archived_dataset(stack, publisher, [(BIG, None), (SMALL, None)],
                                                   title="airlock test")
    await granted(stack, OWNER, stored)
    return {"stored": stored, "summary": await approved(stack, "variant-summary"),
            "dump": await approved(stack, "genotype-dump")}


def as_user(settings: Settings, user: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(settings, user, *(roles or ('researcher',)), ttl=3600)}"}


def task(world: dict[str, Any], vcf: Any, tool: str = "summary") -> dict[str, Any]:
    accession = world["stored"].objects[vcf.name]
    script = {"summary": "variant_summary.py", "dump": "genotype_dump.py"}[tool]
    return {"name": f"airlock {tool}", "inputs": [{"url": f"drs://node/{accession}", "path": "/work/in/calls.vcf.gz"}],
            "outputs": [{"path": "/work/out/result.tsv"}],
            "executors": [{"image": world[tool], "command": ["python", f"/tool/{script}", "/work/in/calls.vcf.gz",
                                                            "/work/out/result.tsv"]}]}


async def finished(http: httpx.AsyncClient, settings: Settings, body: dict[str, Any]) -> str:
    task_id = await submit(http, settings, OWNER, body)
    assert (await until(http, settings, OWNER, task_id, TERMINAL))["state"] == "COMPLETE"
    return task_id


async def request_in(http: httpx.AsyncClient, settings: Settings, task_id: str, states: set[str],
                     timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = await http.get(f"/airlock/requests/{task_id}", headers=as_user(settings, OWNER))
        if response.status_code == 200 and response.json()["state"] in states:
            return response.json()
        assert time.monotonic() < deadline, response.text
        await asyncio.sleep(0.2)


async def approve(http: httpx.AsyncClient, settings: Settings, task_id: str, who: str,
                  *roles: str) -> httpx.Response:
    return await http.post(f"/airlock/requests/{task_id}/approve", json={"note": "looked at every cell"},
                           headers=as_user(settings, who, *(roles or ("output_checker",))))


async def test_two_checkers_release_and_the_owner_alone_downloads(stack: Settings, world) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as http:
        task_id = await finished(http, stack, task(world, BIG))
        review = await request_in(http, stack, task_id, {"review", "rejected"})
        assert review["state"] == "review", review
        [checked] = review["checks"]["files"]
        assert (checked["kind"], checked["verdict"]) == ("table", "pass")
        object_id = output_object_id(task_id, "/work/out/result.tsv")

        # nothing in quarantine is reachable through DRS before release (the id it will have is unknown now)
        before = await http.get(f"/ga4gh/drs/v1/objects/{object_id}")
        assert before.status_code == 404
        assert (await http.get(f"/ga4gh/drs/v1/objects/{object_id}/access/https",
                               headers=as_user(stack, OWNER))).status_code == 404

        # the owner cannot approve their own output (even holding the role); someone without it cannot at all
        own = await approve(http, stack, task_id, OWNER, "output_checker", "researcher")
        assert own.status_code == 403 and own.json()["reasons"][0]["code"] == "own_output", own.text
        assert (await approve(http, stack, task_id, "eve-airlock", "researcher")).status_code == 403

        # one approval is not enough; the same checker twice counts once
        first = await approve(http, stack, task_id, "bob-checker")
        assert first.status_code == 200 and first.json()["state"] == "review", first.text
        again = await approve(http, stack, task_id, "bob-checker")
        assert again.status_code == 409 and again.json()["reasons"][0]["code"] == "already_approved"
        assert (await http.get(f"/ga4gh/drs/v1/objects/{object_id}")).status_code == 404

        second = await approve(http, stack, task_id, "carol-checker")
        assert second.status_code == 200, second.text
        released = second.json()
        assert released["state"] == "released" and [a["by"] for a in released["approvals"]] == ["bob-checker",
                                                                                               "carol-checker"]
        assert released["released"][0]["object_id"] == object_id

        # DRS: metadata for anyone, the bytes for the owner alone (401 without a token, 403 for another)
        meta = (await http.get(f"/ga4gh/drs/v1/objects/{object_id}")).json()
        assert meta["access_methods"][0]["authorizations"]["supported_types"] == ["BearerAuth"]
        assert (await http.get(f"/ga4gh/drs/v1/objects/{object_id}/access/https")).status_code == 401
        other = await http.get(f"/ga4gh/drs/v1/objects/{object_id}/access/https",
                               headers=as_user(stack, "bob-checker", "output_checker"))
        assert other.status_code == 403
        access = await http.get(f"/ga4gh/drs/v1/objects/{object_id}/access/https", headers=as_user(stack, OWNER))
        assert access.status_code == 200, access.text
        download = await http.get(access.json()["url"])
        assert download.status_code == 200
        assert hashlib.sha256(download.content).hexdigest() == meta["checksums"][0]["checksum"]
        assert download.content.startswith(b"chrom\tvariant_type\tcount\n")
        assert download.headers["content-type"].startswith("text/tab-separated-values")
        audited = access.headers["X-Audit-Event"]

        # closed: nothing more can be decided
        late = await http.post(f"/airlock/requests/{task_id}/reject", json={"reason": "too late"},
                               headers=as_user(stack, "dave-checker", "output_checker"))
        assert late.status_code == 409 and late.json()["reasons"][0]["code"] == "request_closed"

    # every step is on the log: the checks, each approval with its checker, the release, the audited reads
    steps: list[tuple[str, str]] = []
    audit_ids = set()
    async for record in kafka.read_log(stack, [stack.topic("processing"), stack.topic("audit")], idle_timeout=1.0):
        event = decode(record.value)
        if getattr(event.data, "task_id", None) == task_id and event.type.startswith("output."):
            steps.append((event.type, event.actor))
        if event.type.startswith("data.access") and event.data.dataset_id == task_id:
            audit_ids.add(str(event.id))
            assert event.data.object_id == object_id
    assert steps == [("output.checked", "worker:airlock"), ("output.approved", "bob-checker"),
                     ("output.approved", "carol-checker"), ("output.released", "worker:airlock")]
    assert audited in audit_ids and len(audit_ids) >= 4  # 401, 403, the grant of the URL, the download


async def test_a_reject_ends_it(stack: Settings, world) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as http:
        task_id = await finished(http, stack, task(world, BIG))
        await request_in(http, stack, task_id, {"review"})
        assert (await approve(http, stack, task_id, "bob-checker")).status_code == 200
        no_reason = await http.post(f"/airlock/requests/{task_id}/reject", json={"reason": " "},
                                    headers=as_user(stack, "carol-checker", "output_checker"))
        assert no_reason.status_code == 400
        rejected = await http.post(f"/airlock/requests/{task_id}/reject",
                                   json={"reason": "the table names a rare variant class"},
                                   headers=as_user(stack, "carol-checker", "output_checker"))
        assert rejected.status_code == 200 and rejected.json()["state"] == "rejected", rejected.text
        assert rejected.json()["rejection"]["by"] == "carol-checker"
        after = await approve(http, stack, task_id, "dave-checker")
        assert after.status_code == 409 and after.json()["reasons"][0]["code"] == "request_closed"
        object_id = output_object_id(task_id, "/work/out/result.tsv")
        assert (await http.get(f"/ga4gh/drs/v1/objects/{object_id}")).status_code == 404


async def test_the_checks_reject_a_small_cell_and_a_genotype_file(stack: Settings, world) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as http:
        small = await finished(http, stack, task(world, SMALL))
        dump = await finished(http, stack, task(world, BIG, "dump"))
        for task_id, rule in ((small, "threshold"), (dump, "vcf_genotypes")):
            request = await request_in(http, stack, task_id, {"rejected"})
            [checked] = request["checks"]["files"]
            assert checked["findings"][0]["rule"] == rule, checked
            assert request["rejection"]["by"] == "worker:airlock" and rule in request["rejection"]["reason"]
            refused = await approve(http, stack, task_id, "bob-checker")
            assert refused.status_code == 409 and refused.json()["reasons"][0]["code"] == "request_closed"
        # a checker's queue: every request; the owner's list: their own only
        queue = (await http.get("/airlock/requests", params={"state": "rejected", "limit": 1000},
                                headers=as_user(stack, "bob-checker", "output_checker"))).json()
        assert {small, dump} <= {r["task_id"] for r in queue["requests"]}
        mine = (await http.get("/airlock/requests", headers=as_user(stack, "mallory-airlock"))).json()
        assert mine == {"requests": [], "total": 0}
        assert (await http.get(f"/airlock/requests/{small}",
                               headers=as_user(stack, "mallory-airlock"))).status_code == 404
        assert (await http.get("/airlock/requests")).status_code == 401
