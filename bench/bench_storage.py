#!/usr/bin/env python
"""Storage benchmark: DRS downloads and htsget reads over the Crypt4GH archive, beside their baselines.

Run from the repository root::

    .venv/bin/python bench/bench_storage.py [--big-mb 1024] [--slice-mb 128] [--rounds 20] [--data-dir DIR] [--keep]

Without ``--data-dir`` a fresh local stack is started under /var/tmp and removed at the end. A
released dataset is set up with the NA12878 BAM (reads) and a synthetic coordinate-sorted BAM of
about ``--big-mb`` MB (the one bench/bench_reception.py generates and caches in bench/.cache), and a
researcher gets a grant for it. Every figure is printed beside a baseline measured in the same run:

1. **Whole-object download** of the big object, bytes/s: a direct object-store GET of the stored
   (encrypted) bytes, then DRS ``https`` (the gateway decrypts as it streams), then DRS ``c4gh``
   (header re-encrypted for the reader's key, body as stored). Ratio = DRS / direct.
2. **htsget region read**: a ticket for a region of the NA12878 BAM, its blocks fetched and read
   with pysam, beside a local ``pysam`` ``fetch`` of the same region from the original file
   (median of ``--rounds``; same record count checked).
3. **Gateway memory while streaming** the big object: the gateway's RSS before, its peak while
   the object streams (sampled every 20 ms from /proc), and the growth, beside the object's size.
4. **Eight concurrent downloads** (each a different ``--slice-mb`` MB range of the big object, with
   HTTP Range) beside one download of one such range: aggregate bytes/s and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import Deadline, console, data_dir_for, run_prefix, run_timed, with_stack, write_results

import httpx  # noqa: E402
import pysam  # noqa: E402
from bench_reception import Results, ensure_big_bam, pipeline_limit, worker_rss  # noqa: E402
from crypt4gh import sodium  # noqa: E402

from genomebus.infra import db, s3  # noqa: E402
from genomebus.infra.readmodels import files  # noqa: E402
from genomebus.infra.settings import Settings  # noqa: E402
from genomebus.infra.visas import ensure_dev_issuers, issue_dev_token  # noqa: E402
from genomebus.producers.access import AccessClient  # noqa: E402
from genomebus.producers.fetch import PUBLIC_KEY_HEADER, public_key_header  # noqa: E402
from genomebus.producers.datasets import build_command, register_dataset, release_dataset  # noqa: E402
from genomebus.producers.submit import submit_file  # noqa: E402
from genomebus.schemas.reception import DatasetRegisterRequested  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BAM = REPO / "data" / "reads" / "htsnexus_test_NA12878.bam"
REGION = ("11", 5_000_000, 5_050_000)  # htsget coordinates: 0-based start, exclusive end
DAC = "BENCH-STORAGE-DAC"
MB = 1_000_000


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


async def setup(settings: Settings, big: Path, res: dict[str, Any]) -> dict[str, Any]:
    """A released dataset with the small and the big BAM, a researcher's token and grant."""
    dataset_id = f"GDI-{settings.node_id}-DATASET-7{run_prefix()}"
    outcome = await register_dataset(settings, build_command(
        DatasetRegisterRequested, dataset_id=dataset_id, title="storage bench", data_use=("DUO:0000042",),
        dac_id=DAC, individuals=({"id": "B1"},)), actor="bench")
    assert outcome.accepted, outcome
    ids: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=settings.gateway_url, timeout=30) as http:
        for path in (BAM, big):
            console.print(f"submitting {path.name} ({path.stat().st_size / MB:,.0f} MB) …")
            started = time.perf_counter()
            done = await submit_file(settings, dataset_id, path, actor="bench")
            deadline = Deadline(pipeline_limit(path.stat().st_size))
            while (body := (await http.get(f"/files/{done.file_id}")).json()).get("state") != "archived":
                assert body.get("state") != "qc_failed", body
                deadline.check(f"archiving {path.name}")
                await asyncio.sleep(0.5)
            ids[path.name] = body["accession"]
            res.setdefault("setup_s", {})[path.name] = round(time.perf_counter() - started, 1)
    assert (await release_dataset(settings, dataset_id, actor="bench")).accepted
    ensure_dev_issuers(settings)
    user = f"bench-reader-{run_prefix()}"
    token = issue_dev_token(settings, sub=user, roles=["researcher"], ttl_s=7200)
    async with AccessClient(settings, token) as researcher:
        application = await researcher.apply([dataset_id], project_title="bench", purpose="bench",
                                             research_use={"terms": ["DUO:0000042"]})
        await researcher.submit(application["id"])
    chair = issue_dev_token(settings, sub="bench-chair", roles=[f"dac_member:{DAC}"], ttl_s=600)
    async with AccessClient(settings, chair) as dac:
        from datetime import UTC, datetime, timedelta
        await dac.decide(application["id"], dataset_id, "approve", expires_at=datetime.now(UTC) + timedelta(days=1))
    return {"dataset_id": dataset_id, "small": ids[BAM.name], "big": ids[big.name], "token": token}


async def access_url(http: httpx.AsyncClient, object_id: str, access_id: str, token: str,
                     extra: dict[str, str] | None = None) -> tuple[str, dict[str, str]]:
    response = await http.get(f"/ga4gh/drs/v1/objects/{object_id}/access/{access_id}",
                              headers={"Authorization": f"Bearer {token}", **(extra or {})})
    response.raise_for_status()
    body = response.json()
    headers = body.get("headers") or {}
    if isinstance(headers, list):  # DRS lists headers as "Name: value" strings
        headers = dict(h.split(": ", 1) for h in headers)
    return body["url"], headers


async def drain(http: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None) -> int:
    total = 0
    async with http.stream("GET", url, headers=headers or {}) as response:
        response.raise_for_status()
        async for piece in response.aiter_raw(1 << 20):
            total += len(piece)
    return total


async def direct_get(settings: Settings, key: str, byte_range: tuple[int, int] | None = None) -> int:
    total = 0
    async with s3.client(settings) as store:
        kwargs = {"Range": f"bytes={byte_range[0]}-{byte_range[1] - 1}"} if byte_range else {}
        response = await store.get_object(Bucket=settings.s3_archive_bucket, Key=key, **kwargs)
        async with response["Body"] as body:
            async for piece in body.iter_chunks(1 << 20):
                total += len(piece)
    return total


async def whole_downloads(settings: Settings, ids: dict[str, Any], res: dict[str, Any]) -> None:
    pool = await db.connect(settings, max_size=1)
    try:
        async with pool.acquire() as conn:
            detail = await files.get_file(conn, accession=ids["big"])
    finally:
        await pool.close()
    assert detail is not None
    key, size = detail["archive_key"], detail["size"]
    async with httpx.AsyncClient(base_url=settings.gateway_url, timeout=600) as http:
        rows = {}
        if key:
            t = time.perf_counter()
            n = await direct_get(settings, key)
            rows["direct object-store GET (encrypted)"] = (n, time.perf_counter() - t)
        url, headers = await access_url(http, ids["big"], "https", ids["token"])
        t = time.perf_counter()
        n = await drain(http, url, headers)
        rows["DRS https (decrypted)"] = (n, time.perf_counter() - t)
        assert n == size, (n, size)
        pub_file = (b"-----BEGIN CRYPT4GH PUBLIC KEY-----\n" + base64.b64encode(sodium.derive_pk(os.urandom(32)))
                    + b"\n-----END CRYPT4GH PUBLIC KEY-----\n")
        url, headers = await access_url(http, ids["big"], "c4gh", ids["token"],
                                        {PUBLIC_KEY_HEADER: public_key_header(pub_file)})
        t = time.perf_counter()
        n = await drain(http, url, headers)
        rows["DRS c4gh (re-encrypted header)"] = (n, time.perf_counter() - t)
    base = rows.get("direct object-store GET (encrypted)")
    res["whole"] = {name: {"bytes": n, "seconds": round(s, 3), "MB_per_s": round(n / s / MB, 1),
                           "ratio": round((n / s) / (base[0] / base[1]), 3) if base else None}
                    for name, (n, s) in rows.items()}


async def htsget_region(settings: Settings, ids: dict[str, Any], rounds: int, res: dict[str, Any]) -> None:
    name, start, end = REGION
    local, remote, counts = [], [], set()
    async with httpx.AsyncClient(base_url=settings.gateway_url, timeout=60) as http:
        for _ in range(rounds):
            t = time.perf_counter()
            with pysam.AlignmentFile(str(BAM)) as bam:
                n_local = sum(1 for r in bam.fetch(name, start, end))
            local.append(time.perf_counter() - t)
            t = time.perf_counter()
            ticket = (await http.get(f"/htsget/v1/reads/{ids['small']}", params={
                "referenceName": name, "start": start, "end": end},
                headers={"Authorization": f"Bearer {ids['token']}"})).raise_for_status().json()["htsget"]
            with tempfile.NamedTemporaryFile(suffix=".bam") as out:
                for part in ticket["urls"]:
                    if part["url"].startswith("data:"):
                        out.write(base64.b64decode(part["url"].split(",", 1)[1]))
                    else:
                        response = await http.get(part["url"], headers=part.get("headers") or {})
                        response.raise_for_status()
                        out.write(response.content)
                out.flush()
                with pysam.AlignmentFile(out.name, check_sq=False) as bam:
                    # as pysam's fetch counts: placed unmapped mates (no reference_end) cover one base
                    n_remote = sum(1 for r in bam if r.reference_name == name and r.reference_start < end
                                   and (r.reference_end or r.reference_start + 1) > start)
            remote.append(time.perf_counter() - t)
            counts.add((n_local, n_remote))
    res["htsget"] = {"region": f"{name}:{start}-{end}", "rounds": rounds, "records": sorted(counts),
                     "local_pysam_ms": round(median(local) * 1000, 2), "htsget_ms": round(median(remote) * 1000, 2),
                     "ratio": round(median(remote) / median(local), 1)}


async def memory_while_streaming(settings: Settings, ids: dict[str, Any], res: dict[str, Any]) -> None:
    data_dir = settings.data_dir
    before = worker_rss(data_dir, "gateway")
    peak = before.rss_mb or 0.0
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            now = worker_rss(data_dir, "gateway").rss_mb
            if now:
                peak = max(peak, now)
            await asyncio.sleep(0.02)

    async with httpx.AsyncClient(base_url=settings.gateway_url, timeout=600) as http:
        url, headers = await access_url(http, ids["big"], "https", ids["token"])
        sampler = asyncio.create_task(sample())
        n = await drain(http, url, headers)
        done.set()
        await sampler
    res["memory"] = {"object_MB": round(n / MB, 1), "gateway_rss_before_MB": round(before.rss_mb or 0, 1),
                     "gateway_rss_peak_MB": round(peak, 1), "growth_MB": round(peak - (before.rss_mb or 0), 1)}


async def concurrent(settings: Settings, ids: dict[str, Any], slice_mb: int, res: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=settings.gateway_url, timeout=600,
                                 limits=httpx.Limits(max_connections=16)) as http:
        size = (await http.get(f"/files/{ids['big']}")).json()["size"]
        span = min(slice_mb * MB, size // 8)
        url, headers = await access_url(http, ids["big"], "https", ids["token"])

        async def one(i: int) -> int:
            return await drain(http, url, {**headers, "Range": f"bytes={i * span}-{(i + 1) * span - 1}"})

        t = time.perf_counter()
        single = await one(0)
        single_s = time.perf_counter() - t
        t = time.perf_counter()
        many = sum(await asyncio.gather(*(one(i) for i in range(8))))
        many_s = time.perf_counter() - t
    res["concurrent"] = {"slice_MB": round(span / MB, 1), "one_MB_per_s": round(single / single_s / MB, 1),
                         "eight_MB_per_s": round(many / many_s / MB, 1),
                         "ratio": round((many / many_s) / (single / single_s), 2)}


def render(res: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="DRS whole-object download (same run)")
    for column in ("path", "MB", "seconds", "MB/s", "ratio to direct"):
        table.add_column(column, justify="right" if column != "path" else "left")
    for name, row in res.get("whole", {}).items():
        table.add_row(name, f"{row['bytes'] / MB:,.1f}", f"{row['seconds']:.2f}", f"{row['MB_per_s']:,.1f}",
                      "-" if row["ratio"] is None else f"{row['ratio']:.3f}")
    console.print(table)
    if "htsget" in res:
        h = res["htsget"]
        console.print(f"htsget region {h['region']} (records local/htsget {h['records']}): median "
                      f"{h['htsget_ms']} ms vs local pysam {h['local_pysam_ms']} ms (×{h['ratio']})")
    if "memory" in res:
        m = res["memory"]
        console.print(f"gateway RSS streaming {m['object_MB']:,} MB: before {m['gateway_rss_before_MB']} MB, peak "
                      f"{m['gateway_rss_peak_MB']} MB, growth {m['growth_MB']} MB")
    if "concurrent" in res:
        c = res["concurrent"]
        console.print(f"8 concurrent downloads of {c['slice_MB']} MB ranges: {c['eight_MB_per_s']} MB/s aggregate vs "
                      f"one {c['one_MB_per_s']} MB/s (×{c['ratio']})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--big-mb", type=int, default=1024, help="size of the big synthetic BAM, MB (10^6 bytes)")
    parser.add_argument("--slice-mb", type=int, default=128, help="bytes per reader in the concurrency figure, MB")
    parser.add_argument("--rounds", type=int, default=20, help="htsget region reads to take the median of")
    parser.add_argument("--data-dir", type=Path, default=None, help="use (or start) the stack in this directory")
    parser.add_argument("--keep", action="store_true", help="leave the stack and its directory behind")
    args = parser.parse_args()
    data_dir, created = data_dir_for(args.data_dir)
    settings = Settings(data_dir=data_dir)
    res: dict[str, Any] = {"args": vars(args) | {"data_dir": str(data_dir)}}
    big = ensure_big_bam(args.big_mb, Results())

    async def bench(deadline: Deadline) -> None:
        ids = await setup(settings, big, res)
        for step, run in (("whole-object downloads", whole_downloads(settings, ids, res)),
                          ("htsget region", htsget_region(settings, ids, args.rounds, res)),
                          ("memory while streaming", memory_while_streaming(settings, ids, res)),
                          ("eight concurrent downloads", concurrent(settings, ids, args.slice_mb, res))):
            deadline.check(step)
            console.print(f"[bold]{step} …")
            await run

    def body() -> int:
        code = run_timed(bench, 600 + pipeline_limit(args.big_mb * MB), res)
        render(res)
        console.print(f"results: {write_results('storage', res)}")
        return code

    return with_stack(settings, res, body, created_dir=created, keep_stack=args.keep, keep_dir=args.keep)


if __name__ == "__main__":
    sys.exit(main())
