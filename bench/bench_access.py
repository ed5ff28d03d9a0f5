#!/usr/bin/env python
"""Access benchmark: the enforcement point's price, visa verification speed, revocation latency.

Run from the repository root::

    .venv/bin/python bench/bench_access.py [--requests 1000] [--data-dir DIR] [--keep]

Without ``--data-dir`` a fresh local stack is started under /var/tmp and removed at the end.
A released dataset (one small VCF, DAC ``BENCH-DAC``) and an approved grant are set up first.

1. **Enforcement overhead**: ``--requests`` sequential requests (after 50 of warm-up) to
   ``GET /datasets/{id}`` (public metadata: a read-model query; the baseline) and to
   ``GET /datasets/{id}/individuals`` with a bearer token (token verified, grant read from the
   ``access`` read model, ``data.accessed`` published and acknowledged, then a read-model
   query): p50, p99 and their ratio, measured in the same run, one after the other.
2. **Visa verifications per second** on one core: a node-issued ControlledAccessGrants visa
   (ES256) verified ``Verifier.visas`` in a loop for 2 s, beside the baseline of decoding the
   same JWS without verifying it.
3. **Revocation to refusal**: a reader polls the controlled endpoint in a tight loop; the DAC
   revokes; the time from the ``access.revoked`` event's timestamp on the bus to the first
   403 the reader gets, over 5 grants.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness import (  # noqa: E402  (puts the repository root on sys.path)
    console,
    data_dir_for,
    run_prefix,
    run_timed,
    with_stack,
    write_results,
)

import httpx  # noqa: E402

from genomebus.infra import kafka  # noqa: E402
from genomebus.infra.identity import Verifier  # noqa: E402
from genomebus.infra.settings import Settings  # noqa: E402
from genomebus.infra.visas import VisaKeys, ensure_dev_issuers, issue_dev_token, issue_visa  # noqa: E402
from genomebus.producers.access import AccessClient  # noqa: E402
from genomebus.producers.datasets import build_command, register_dataset, release_dataset  # noqa: E402
from genomebus.producers.submit import submit_file  # noqa: E402
from genomebus.schemas.envelope import decode  # noqa: E402
from genomebus.schemas.reception import DatasetRegisterRequested  # noqa: E402

VCF = Path(__file__).resolve().parents[1] / "data" / "variants" / "sample1-bcbio-cancer.vcf.gz"
DAC = "BENCH-DAC"
USE = {"terms": ["DUO:0000006"]}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def released(settings: Settings, dataset_id: str) -> None:
    outcome = await register_dataset(settings, build_command(
        DatasetRegisterRequested, dataset_id=dataset_id, title="bench", data_use=("DUO:0000042",), dac_id=DAC,
        individuals=({"id": "B1"},)), actor="bench")
    assert outcome.accepted, outcome
    done = await submit_file(settings, dataset_id, VCF, actor="bench")
    async with httpx.AsyncClient(base_url=settings.gateway_url) as http:
        while (await http.get(f"/files/{done.file_id}")).json().get("state") != "archived":
            await asyncio.sleep(0.2)
    assert (await release_dataset(settings, dataset_id, actor="bench")).accepted


async def grant(settings: Settings, user: str, dataset_id: str) -> str:
    researcher = issue_dev_token(settings, sub=user, roles=["researcher"], ttl_s=3600)
    chair = issue_dev_token(settings, sub="bench-chair", roles=[f"dac_member:{DAC}"], ttl_s=3600)
    async with AccessClient(settings, researcher) as me:
        app = await me.apply([dataset_id], project_title="bench", purpose="bench", research_use=USE)
        await me.submit(app["id"])
    async with AccessClient(settings, chair) as dac:
        await dac.decide(app["id"], dataset_id, "approve", expires_at=datetime.now(UTC) + timedelta(days=1))
    return app["id"]


async def timed(http: httpx.AsyncClient, path: str, headers: dict[str, str], n: int, expect: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = await http.get(path, headers=headers)
        out.append((time.perf_counter() - t) * 1000)
        assert r.status_code == expect, (path, r.status_code, r.text)
    return out


async def overhead(settings: Settings, dataset_id: str, n: int, res: dict[str, Any]) -> None:
    user = f"bench-{run_prefix()}"
    await grant(settings, user, dataset_id)
    headers = {"Authorization": f"Bearer {issue_dev_token(settings, sub=user, roles=['researcher'], ttl_s=3600)}"}
    async with httpx.AsyncClient(base_url=settings.gateway_url) as http:
        await timed(http, f"/datasets/{dataset_id}", {}, 50, 200)
        await timed(http, f"/datasets/{dataset_id}/individuals", headers, 50, 200)
        base = await timed(http, f"/datasets/{dataset_id}", {}, n, 200)
        guarded = await timed(http, f"/datasets/{dataset_id}/individuals", headers, n, 200)
    res["overhead"] = {
        "requests": n,
        "unprotected_p50_ms": round(pct(base, 0.5), 2), "unprotected_p99_ms": round(pct(base, 0.99), 2),
        "enforced_p50_ms": round(pct(guarded, 0.5), 2), "enforced_p99_ms": round(pct(guarded, 0.99), 2),
    }
    o = res["overhead"]
    o["p50_ratio"] = round(o["enforced_p50_ms"] / o["unprotected_p50_ms"], 2)
    o["p99_ratio"] = round(o["enforced_p99_ms"] / o["unprotected_p99_ms"], 2)
    o["added_p50_ms"] = round(o["enforced_p50_ms"] - o["unprotected_p50_ms"], 2)


async def verifications(settings: Settings, res: dict[str, Any]) -> None:
    keys = VisaKeys.load(settings.visa_keys_path)
    now = datetime.now(UTC)
    visa = issue_visa(keys, settings, user_id="bench", dataset_id="GDI-FI-DATASET-1", grant_id="bench-grant",
                      asserted=now, expires_at=now + timedelta(hours=1))
    verifier = Verifier(settings, own_keys=keys)
    try:
        await verifier.visas([visa])  # warm the key cache

        async def loop(step: Any) -> float:
            count, start = 0, time.perf_counter()
            while time.perf_counter() - start < 2.0:
                await step()
                count += 1
            return count / (time.perf_counter() - start)

        async def verify() -> None:
            await verifier.visas([visa])

        async def parse() -> None:
            head, body, _ = visa.split(".")
            json.loads(base64.urlsafe_b64decode(head + "=="))
            json.loads(base64.urlsafe_b64decode(body + "=="))

        res["visas"] = {"verified_per_s": round(await loop(verify)), "decoded_unverified_per_s": round(await loop(parse))}
    finally:
        await verifier.aclose()


async def revocation(settings: Settings, dataset_id: str, res: dict[str, Any], rounds: int = 5) -> None:
    latencies = []
    chair = issue_dev_token(settings, sub="bench-chair", roles=[f"dac_member:{DAC}"], ttl_s=3600)
    for n in range(rounds):
        user = f"bench-revoke-{run_prefix()}-{n}"
        app_id = await grant(settings, user, dataset_id)
        headers = {"Authorization": f"Bearer {issue_dev_token(settings, sub=user, roles=['researcher'], ttl_s=3600)}"}
        refused_at: list[datetime] = []

        async def reader(http: httpx.AsyncClient) -> None:
            while True:
                r = await http.get(f"/datasets/{dataset_id}/individuals", headers=headers)
                if r.status_code == 403:
                    refused_at.append(datetime.now(UTC))
                    return

        async with httpx.AsyncClient(base_url=settings.gateway_url) as http, AccessClient(settings, chair) as dac:
            task = asyncio.create_task(reader(http))
            await asyncio.sleep(0.2)
            await dac.revoke(app_id, dataset_id, "bench")
            await asyncio.wait_for(task, 10)
        revoked = None
        async for record in kafka.read_log(settings, [settings.topic("access")]):
            event = decode(record.value)
            if event.type == "access.revoked" and str(event.data.application_id) == app_id:
                revoked = event.time
        assert revoked is not None
        latencies.append((refused_at[0] - revoked).total_seconds() * 1000)
    res["revocation"] = {"rounds": rounds, "median_ms": round(statistics.median(latencies), 1),
                         "max_ms": round(max(latencies), 1), "all_ms": [round(x, 1) for x in latencies]}


async def bench(settings: Settings, n: int, res: dict[str, Any]) -> None:
    ensure_dev_issuers(settings)
    dataset_id = f"GDI-FI-DATASET-{run_prefix()}"
    console.print(f"setting up {dataset_id} (one archived VCF, DAC {DAC}) …")
    await released(settings, dataset_id)
    console.print(f"enforcement overhead over {n} sequential requests …")
    await overhead(settings, dataset_id, n, res)
    console.print("visa verifications for 2 s …")
    await verifications(settings, res)
    console.print("revocation to refusal, 5 rounds …")
    await revocation(settings, dataset_id, res)


def render(res: dict[str, Any]) -> None:
    from rich.table import Table

    o = res.get("overhead")
    if o:
        t = Table(title=f"enforcement point, {o['requests']} sequential requests (ms)")
        for c in ("endpoint", "p50", "p99"):
            t.add_column(c, justify="right" if c != "endpoint" else "left")
        t.add_row("GET /datasets/{id} (baseline)", f"{o['unprotected_p50_ms']}", f"{o['unprotected_p99_ms']}")
        t.add_row("GET /datasets/{id}/individuals (enforced)", f"{o['enforced_p50_ms']}", f"{o['enforced_p99_ms']}")
        t.add_row("ratio", f"{o['p50_ratio']}×", f"{o['p99_ratio']}×")
        console.print(t)
    v = res.get("visas")
    if v:
        console.print(f"visa verifications: {v['verified_per_s']:,}/s on one core "
                      f"(baseline, decoding without verifying: {v['decoded_unverified_per_s']:,}/s)")
    r = res.get("revocation")
    if r:
        console.print(f"access.revoked → first refused read: median {r['median_ms']} ms, max {r['max_ms']} ms "
                      f"over {r['rounds']} grants")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    data_dir, created = data_dir_for(args.data_dir)
    settings = Settings(data_dir=data_dir)
    res: dict[str, Any] = {"info": {"started": datetime.now().isoformat()}}

    def body() -> int:
        code = run_timed(lambda deadline: bench(settings, args.requests, res), 900, res["info"])
        render(res)
        console.print(f"results: {write_results('access', res)}")
        return code

    return with_stack(settings, res["info"], body, created_dir=created, keep_stack=args.keep, keep_dir=args.keep)


if __name__ == "__main__":
    sys.exit(main())
