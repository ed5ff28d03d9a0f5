#!/usr/bin/env python
"""Discovery benchmark: a 10 M-variant VCF indexed through the real pipeline, then queried through the Beacon.

Run from the repository root::

    .venv/bin/python bench/bench_discovery.py [--variants 10000000] [--samples 8] [--clients 8] \\
        [--queries 400] [--data-dir DIR] [--keep]

Without ``--data-dir`` a fresh local stack is started under /var/tmp (with the Beacon query budgets
raised so that the query figures measure queries, not 429s) and removed at the end. The synthetic
VCF (``--variants`` records over chromosomes 1-22 and X, ``--samples`` samples; 85 % SNVs, 5 %
deletions, 5 % insertions, 5 % two-allele sites, about 1 % missing calls) is generated once and
cached in ``bench/.cache``. Every figure is printed beside a baseline measured in the same run:

1. **Load rate** (alleles/s), three ways on the same rows:
   - *raw COPY*: the rows already in COPY text (cached), ``COPY ... FREEZE`` into a plain table in the
     transaction that creates it, nothing else: what PostgreSQL takes at best; then the same table's
     ``(contig, start)`` index built, for the comparable total;
   - *index_dataset, in process*: ``infra.discovery.index.index_dataset`` on the plaintext file (read,
     parse, COPY, index, analyse, attach), without Kafka or the archive; its steps as it logs them;
   - *real pipeline*: the file submitted, QC'd, archived (Crypt4GH), the dataset released, and the
     indexer worker loading it from the archive (decrypting as it streams to a scratch file): the
     worker's share is ``dataset.released`` → ``dataset.indexed`` (the events' own times).
2. **Size on disk** of the dataset's partition (table, its index, TOAST) per million alleles.
3. **Query latency** through the gateway, ``POST /beacon/v2/g_variants``, with 1, 4 and 8 clients
   (``--clients``) at once on this machine (the clients, the gateway and PostgreSQL share its cores): a single
   position (a sequence query for an allele the index holds), a 1 kb range and a 1 Mb range, each at
   boolean (anonymous caller), count (a researcher) and record (a researcher granted the dataset:
   every answer goes through the enforcement point and is audited on Kafka) granularity; p50 and p99
   of ``--queries`` queries each. The goal: single-position p99 under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness import BENCH_DIR, Deadline, console, data_dir_for, run_prefix, run_timed, with_stack, write_results

import asyncpg  # noqa: E402
import httpx  # noqa: E402
import pysam  # noqa: E402

from genomebus.infra import db, kafka  # noqa: E402
from genomebus.infra.discovery import index  # noqa: E402
from genomebus.infra.discovery.index import copy_text  # noqa: E402
from genomebus.infra.discovery.vcf import ROW_COLUMNS, VariantFileReader  # noqa: E402
from genomebus.infra.settings import Settings  # noqa: E402
from genomebus.infra.visas import ensure_dev_issuers, issue_dev_token  # noqa: E402
from genomebus.producers.access import AccessClient  # noqa: E402
from genomebus.producers.datasets import build_command, register_dataset, release_dataset  # noqa: E402
from genomebus.producers.submit import submit_file  # noqa: E402
from genomebus.schemas.envelope import decode  # noqa: E402
from genomebus.schemas.reception import DatasetDescription, DatasetRegisterRequested  # noqa: E402

CACHE_DIR = BENCH_DIR / ".cache"
GENERATOR_VERSION = 1
DAC = "BENCH-DISCOVERY-DAC"
MB = 1_000_000
CONTIGS = {"1": 248956422, "2": 242193529, "3": 198295559, "4": 190214555, "5": 181538259, "6": 170805979,
           "7": 159345973, "8": 145138636, "9": 138394717, "10": 133797422, "11": 135086622, "12": 133275309,
           "13": 114364328, "14": 107043718, "15": 101991189, "16": 90338345, "17": 83257441, "18": 80373285,
           "19": 58617616, "20": 64444167, "21": 46709983, "22": 50818468, "X": 156040895}
BUDGETS = {"GENOMEBUS_BEACON_BUDGET_ANONYMOUS": "1000000000", "GENOMEBUS_BEACON_BUDGET_USER": "1000000000",
           "GENOMEBUS_BEACON_BUDGET_IP": "1000000000"}


# -- the synthetic VCF -------------------------------------------------------------------------------------


def vcf_path(variants: int, samples: int) -> Path:
    return CACHE_DIR / f"discovery-{variants}x{samples}-v{GENERATOR_VERSION}.vcf.gz"


def ensure_vcf(variants: int, samples: int, res: dict[str, Any]) -> Path:
    """A sorted, bgzipped, indexed VCF of ``variants`` records (cached; about 15 bytes a record compressed)."""
    path = vcf_path(variants, samples)
    if path.exists() and Path(f"{path}.tbi").exists():
        console.print(f"using the cached {path.relative_to(BENCH_DIR.parent)} ({path.stat().st_size / MB:,.0f} MB)")
        res["vcf"] = {"path": str(path), "cached": True, "bytes": path.stat().st_size}
        return path
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    console.print(f"[bold]generating {variants:,} records × {samples} samples into {path.name} …")
    started = time.perf_counter()
    plain = path.with_suffix("")
    rnd = random.Random(20261123)
    names = [f"BENCH{i:04d}" for i in range(samples)]
    biallelic = ["0|0", "0|1", "1|0", "1|1", "0/0", "0/1", "1/1", "./."]
    weights = [40, 12, 12, 8, 10, 8, 6, 1]
    calls = ["\t".join(rnd.choices(biallelic, weights, k=samples)) for _ in range(4093)]
    triallelic = ["0|0", "0|1", "1|2", "2|2", "0/2", "1/1", "./."]
    calls2 = ["\t".join(rnd.choices(triallelic, k=samples)) for _ in range(409)]
    bases = "ACGT"
    total = sum(CONTIGS.values())
    with plain.open("w") as fh:
        fh.write("##fileformat=VCFv4.3\n##reference=GRCh38\n")
        fh.write("".join(f"##contig=<ID=chr{c},length={n},assembly=GRCh38>\n" for c, n in CONTIGS.items()))
        fh.write('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n')
        fh.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + "\t".join(names) + "\n")
        written = 0
        for contig, length in CONTIGS.items():
            count = variants * length // total if contig != "X" else variants - written
            gap = max(2, 2 * (length - 20_000) // max(count, 1))
            pos, lines = 10_000, []
            for i in range(count):
                pos += rnd.randint(1, gap)
                ref = bases[pos % 4]
                kind = rnd.random()
                if kind < 0.85:
                    alt, gts = bases[(pos + 1 + i % 3) % 4], calls[i % 4093]
                elif kind < 0.90:
                    alt, ref, gts = ref, ref + bases[i % 4] + bases[(i + 1) % 4], calls[i % 4093]
                elif kind < 0.95:
                    alt, gts = ref + bases[i % 4], calls[i % 4093]
                else:
                    alt, gts = f"{bases[(pos + 1) % 4]},{bases[(pos + 2) % 4]}", calls2[i % 409]
                lines.append(f"chr{contig}\t{pos}\t.\t{ref}\t{alt}\t50\tPASS\t.\tGT\t{gts}\n")
                if len(lines) == 100_000:
                    fh.writelines(lines)
                    lines = []
            fh.writelines(lines)
            written += count
    pysam.tabix_compress(str(plain), str(path), force=True)
    plain.unlink()
    pysam.tabix_index(str(path), preset="vcf", force=True)
    seconds = round(time.perf_counter() - started, 1)
    console.print(f"  done: {path.stat().st_size / MB:,.0f} MB in {seconds} s")
    res["vcf"] = {"path": str(path), "cached": False, "bytes": path.stat().st_size, "seconds": seconds}
    return path


def ensure_copy_text(vcf: Path) -> tuple[Path, int]:
    """The VCF's rows in COPY text, for the raw COPY baseline (cached beside it); (path, rows)."""
    path = vcf.with_suffix(".copy")
    count_file = vcf.with_suffix(".copy.rows")
    if path.exists() and count_file.exists():
        return path, int(count_file.read_text())
    console.print("writing the rows as COPY text for the baseline …")
    rows = 0
    with path.open("wb") as out:
        for batch in VariantFileReader(vcf).batches():
            out.write(copy_text(batch))
            rows += len(batch)
    count_file.write_text(str(rows))
    return path, rows


# -- load -------------------------------------------------------------------------------------------------


async def raw_copy(settings: Settings, copy_file: Path, rows: int, res: dict[str, Any]) -> None:
    conn = await asyncpg.connect(settings.dsn)
    try:
        await conn.execute("DROP TABLE IF EXISTS public.bench_raw_copy")
        started = time.perf_counter()
        async with conn.transaction():
            await conn.execute("CREATE TABLE public.bench_raw_copy (LIKE discovery.variants); "
                               "ALTER TABLE public.bench_raw_copy ALTER COLUMN dataset_key SET DEFAULT 0")
            await conn.copy_to_table("bench_raw_copy", schema_name="public", source=copy_file,
                                     columns=list(ROW_COLUMNS), freeze=True, timeout=None)
        copied = time.perf_counter() - started
        started = time.perf_counter()
        await conn.execute("CREATE INDEX ON public.bench_raw_copy (contig, start)", timeout=None)
        indexed = time.perf_counter() - started
        size = await conn.fetchval("SELECT pg_total_relation_size('public.bench_raw_copy')")
        await conn.execute("DROP TABLE public.bench_raw_copy")
    finally:
        await conn.close()
    res["load"]["raw COPY (rows as COPY text)"] = {"rows": rows, "seconds": round(copied, 1),
                                                  "rows_per_s": round(rows / copied)}
    res["load"]["raw COPY + (contig, start) index"] = {"rows": rows, "seconds": round(copied + indexed, 1),
                                                      "rows_per_s": round(rows / (copied + indexed)),
                                                      "bytes": size}


class _Steps(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def in_process(settings: Settings, vcf: Path, res: dict[str, Any]) -> None:
    pool = await db.connect(settings, max_size=2)
    steps = _Steps()
    logging.getLogger("genomebus.discovery").addHandler(steps)
    logging.getLogger("genomebus.discovery").setLevel(logging.INFO)
    dataset_id = f"GDI-{settings.node_id}-DATASET-8{run_prefix()}"
    try:
        started = time.perf_counter()
        summary = await index.index_dataset(
            pool, dataset_id=dataset_id, release_event_id=uuid.uuid4(),
            description=DatasetDescription(title="bench, in process", data_use=("DUO:0000042",)),
            variant_files=[index.VariantSource("BENCH-FILE", vcf, size=vcf.stat().st_size)])
        seconds = time.perf_counter() - started
        await index.forget_dataset(pool, dataset_id)  # not served: the pipeline's copy is the one queried
    finally:
        logging.getLogger("genomebus.discovery").removeHandler(steps)
        await pool.close()
    res["load"]["index_dataset in process (plaintext file)"] = {
        "rows": summary.variants, "seconds": round(seconds, 1), "rows_per_s": round(summary.variants / seconds),
        "steps": steps.messages[-1] if steps.messages else None}


async def pipeline(settings: Settings, vcf: Path, records: int, samples: int, res: dict[str, Any]) -> dict[str, Any]:
    """Register, submit, QC, archive, release; wait for the indexer; the stage times from the events."""
    dataset_id = f"GDI-{settings.node_id}-DATASET-9{run_prefix()}"
    individuals = tuple({"id": f"BENCH{i:04d}", "sex": ("female", "male")[i % 2]} for i in range(samples))
    outcome = await register_dataset(settings, build_command(
        DatasetRegisterRequested, dataset_id=dataset_id, title="discovery bench", data_use=("DUO:0000042",),
        dac_id=DAC, individuals=individuals), actor="bench")
    assert outcome.accepted, outcome
    console.print(f"submitting {vcf.name} ({vcf.stat().st_size / MB:,.0f} MB): QC reads every record …")
    started = time.perf_counter()
    done = await submit_file(settings, dataset_id, vcf, actor="bench")
    deadline = Deadline(300 + 90 * records / 1e6)
    async with httpx.AsyncClient(base_url=settings.gateway_url, timeout=30) as http:
        while (body := (await http.get(f"/files/{done.file_id}")).json()).get("state") != "archived":
            assert body.get("state") != "qc_failed", body
            deadline.check("QC and archive of the synthetic VCF")
            await asyncio.sleep(1)
    archived_s = time.perf_counter() - started
    released = await release_dataset(settings, dataset_id, actor="bench")
    assert released.accepted, released
    pool = await db.connect(settings, max_size=1)
    try:
        while (summary := await index.summary(pool, dataset_id)) is None or summary.state != "indexed":
            assert summary is None or summary.state not in ("failed", "unindexed"), summary
            deadline.check("indexing")
            await asyncio.sleep(0.5)
        key = await pool.fetchval("SELECT dataset_key FROM discovery.datasets WHERE dataset_id = $1", dataset_id)
        table = f"discovery.{index.partition_name(key)}"
        sizes = await pool.fetchrow("SELECT pg_relation_size($1::regclass) AS heap, "
                                    "pg_indexes_size($1::regclass) AS indexes, "
                                    "pg_total_relation_size($1::regclass) AS total", table)
    finally:
        await pool.close()
    times = {}
    async for record in kafka.read_log(settings, [settings.topic("reception"), settings.topic("discovery")]):
        if record.key == dataset_id.encode():
            event = decode(record.value)
            times.setdefault(event.type, event.time)
    worker_s = (times["dataset.indexed"] - times["dataset.released"]).total_seconds()
    res["load"]["real pipeline: indexer worker (released → indexed)"] = {
        "rows": summary.variants, "seconds": round(worker_s, 1), "rows_per_s": round(summary.variants / worker_s),
        "steps": "archive → decrypt to scratch → index_dataset; see the indexer's log for its steps"}
    res["pipeline"] = {"dataset_id": dataset_id, "submit_to_archived_s": round(archived_s, 1),
                       "released_to_indexed_s": round(worker_s, 1), "variants": summary.variants,
                       "records": records}
    per_million = 1e6 / summary.variants
    res["size"] = {name: {"bytes": int(sizes[name]), "MB_per_million": round(sizes[name] * per_million / MB, 1)}
                   for name in ("heap", "indexes", "total")}
    return {"dataset_id": dataset_id, "table": table}


# -- queries ----------------------------------------------------------------------------------------------


async def earlier_dataset(settings: Settings) -> dict[str, Any]:
    """The last dataset a run of this bench indexed in this stack (``--only-queries``)."""
    conn = await asyncpg.connect(settings.dsn)
    try:
        row = await conn.fetchrow("SELECT dataset_id, dataset_key FROM discovery.datasets WHERE state = 'indexed' "
                                  "AND description->>'title' = 'discovery bench' ORDER BY indexed_at DESC LIMIT 1")
    finally:
        await conn.close()
    if row is None:
        raise SystemExit("no dataset indexed by an earlier run in this stack: run without --only-queries first")
    return {"dataset_id": row["dataset_id"], "table": f"discovery.{index.partition_name(row['dataset_key'])}"}


async def callers(settings: Settings, dataset_id: str) -> dict[str, dict[str, str]]:
    """Headers of the three callers: anonymous, a researcher, a researcher granted the dataset."""
    ensure_dev_issuers(settings)
    suffix = run_prefix()
    researcher = issue_dev_token(settings, sub=f"bench-researcher-{suffix}", roles=["researcher"], ttl_s=7200)
    granted = issue_dev_token(settings, sub=f"bench-granted-{suffix}", roles=["researcher"], ttl_s=7200)
    async with AccessClient(settings, granted) as client:
        application = await client.apply([dataset_id], project_title="bench", purpose="bench",
                                         research_use={"terms": ["DUO:0000042"]})
        await client.submit(application["id"])
    chair = issue_dev_token(settings, sub="bench-chair", roles=[f"dac_member:{DAC}"], ttl_s=600)
    async with AccessClient(settings, chair) as dac:
        await dac.decide(application["id"], dataset_id, "approve", expires_at=datetime.now(UTC) + timedelta(days=1))
    return {"boolean": {}, "count": {"Authorization": f"Bearer {researcher}"},
            "record": {"Authorization": f"Bearer {granted}"}}


async def sample_alleles(settings: Settings, table: str, n: int) -> list[tuple[str, int, str, str]]:
    conn = await asyncpg.connect(settings.dsn)
    try:
        rows = await conn.fetch(f"SELECT contig, start, ref, alt FROM {table} TABLESAMPLE SYSTEM (0.2) "
                                "REPEATABLE (7) LIMIT $1", n)
    finally:
        await conn.close()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def body_for(kind: str, allele: tuple[str, int, str, str], granularity: str) -> dict[str, Any]:
    contig, start, ref, alt = allele
    if kind == "single position":
        params: dict[str, Any] = {"referenceName": contig, "start": [start], "referenceBases": ref,
                                  "alternateBases": alt}
    else:
        width = 1_000 if kind == "1 kb range" else 1_000_000
        params = {"referenceName": contig, "start": [max(0, start - width // 2)], "end": [start + width // 2]}
    return {"meta": {"apiVersion": "v2.0.1"},
            "query": {"requestParameters": params, "requestedGranularity": granularity, "pagination": {"limit": 10}}}


async def latencies(settings: Settings, headers: dict[str, dict[str, str]], alleles: list[tuple[str, int, str, str]],
                    clients: int, queries: int, res: dict[str, Any]) -> None:
    rows: dict[str, dict[str, Any]] = {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=settings.gateway_url, timeout=60, limits=limits) as http:
        for warm in alleles[:20]:  # connections, caches and the plans warmed, not measured
            await http.post("/beacon/v2/g_variants", json=body_for("single position", warm, "boolean"))
        for kind in ("single position", "1 kb range", "1 Mb range"):
            for granularity in ("boolean", "count", "record"):
                todo = [alleles[i % len(alleles)] for i in range(queries)]
                seen: list[float] = []
                errors: list[str] = []
                returned: set[str] = set()
                hits = 0

                async def client(mine: list[tuple[str, int, str, str]]) -> None:
                    nonlocal hits
                    for allele in mine:
                        started = time.perf_counter()
                        response = await http.post("/beacon/v2/g_variants", json=body_for(kind, allele, granularity),
                                                   headers=headers[granularity])
                        seen.append(time.perf_counter() - started)
                        if response.status_code != 200:
                            errors.append(f"{response.status_code} {response.text[:200]}")
                            continue
                        body = response.json()
                        hits += bool(body["responseSummary"]["exists"])
                        for result_set in body.get("response", {}).get("resultSets", []):
                            returned.add(result_set.get("info", {}).get("returnedGranularity")
                                         or body["meta"].get("returnedGranularity"))

                started = time.perf_counter()
                await asyncio.gather(*(client(todo[i::clients]) for i in range(clients)))
                wall = time.perf_counter() - started
                seen.sort()
                row = rows[f"{kind} / {granularity}"] = {
                    "queries": len(seen), "errors": len(errors), "first_error": errors[0] if errors else None,
                    "found": hits, "returned_granularity": sorted(g for g in returned if g),
                    "p50_ms": round(statistics.median(seen) * 1000, 1),
                    "p99_ms": round(seen[min(len(seen) - 1, int(len(seen) * 0.99))] * 1000, 1),
                    "queries_per_s": round(len(seen) / wall, 1)}
                console.print(f"  {clients} client(s), {kind:>15} / {granularity:<7} p50 {row['p50_ms']} ms, "
                              f"p99 {row['p99_ms']} ms, errors {len(errors)}")
    res.setdefault("queries", {})[str(clients)] = {"clients": clients, "per_combination": queries, "rows": rows}


# -- output -----------------------------------------------------------------------------------------------


def render(res: dict[str, Any]) -> None:
    from rich.table import Table

    if res.get("load"):
        table = Table(title="Loading the same alleles (same run)")
        for column in ("how", "alleles", "seconds", "alleles/s", "ratio to raw COPY"):
            table.add_column(column, justify="left" if column == "how" else "right")
        base = res["load"].get("raw COPY (rows as COPY text)", {}).get("rows_per_s")
        for name, row in res["load"].items():
            table.add_row(name, f"{row['rows']:,}", f"{row['seconds']:,.1f}", f"{row['rows_per_s']:,}",
                          f"{row['rows_per_s'] / base:.2f}" if base else "-")
        console.print(table)
        for name, row in res["load"].items():
            if row.get("steps"):
                console.print(f"  {name}: {row['steps']}")
    if res.get("size"):
        s = res["size"]
        console.print(f"index size: {s['total']['bytes'] / MB:,.0f} MB in all = {s['total']['MB_per_million']} MB per "
                      f"million alleles (table {s['heap']['MB_per_million']}, (contig, start) index "
                      f"{s['indexes']['MB_per_million']})")
    for q in res.get("queries", {}).values():
        table = Table(title=f"POST /beacon/v2/g_variants, {q['clients']} client(s) at once, {q['per_combination']} "
                            "queries each")
        for column in ("query / granularity", "p50 ms", "p99 ms", "queries/s", "found", "errors"):
            table.add_column(column, justify="left" if column.startswith("query") else "right")
        for name, row in q["rows"].items():
            table.add_row(name, f"{row['p50_ms']}", f"{row['p99_ms']}", f"{row['queries_per_s']}",
                          f"{row['found']}/{row['queries']}", str(row["errors"]))
        console.print(table)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", type=int, default=10_000_000, help="VCF records to generate")
    parser.add_argument("--samples", type=int, default=8, help="samples (genotype columns) in the VCF")
    parser.add_argument("--clients", default="1,4,8",
                        help="concurrent Beacon clients: a number, or several separated by commas (a run each)")
    parser.add_argument("--queries", type=int, default=400, help="queries per (query kind, granularity)")
    parser.add_argument("--data-dir", type=Path, default=None, help="use (or start) the stack in this directory")
    parser.add_argument("--keep", action="store_true", help="leave the stack and its directory behind")
    parser.add_argument("--only-queries", action="store_true",
                        help="skip loading: query the dataset an earlier run (--keep) indexed in --data-dir")
    args = parser.parse_args()
    client_counts = [int(n) for n in str(args.clients).split(",")]
    data_dir, created = data_dir_for(args.data_dir)
    os.environ.update(BUDGETS)  # a stack started here lets the bench's callers ask as much as they want
    settings = Settings(data_dir=data_dir)
    res: dict[str, Any] = {"args": vars(args) | {"data_dir": str(data_dir)}, "load": {}}
    vcf = ensure_vcf(args.variants, args.samples, res)
    copy_file, rows = ensure_copy_text(vcf)

    async def bench(deadline: Deadline) -> None:
        if args.only_queries:
            target = await earlier_dataset(settings)
            console.print(f"[bold]Beacon queries on {target['dataset_id']} …")
            headers = await callers(settings, target["dataset_id"])
            alleles = await sample_alleles(settings, target["table"], 2000)
            for clients in client_counts:
                await latencies(settings, headers, alleles, clients, args.queries, res)
            return
        console.print("[bold]raw COPY baseline …")
        await raw_copy(settings, copy_file, rows, res)
        deadline.check("raw COPY")
        console.print("[bold]index_dataset in process …")
        await in_process(settings, vcf, res)
        deadline.check("index_dataset in process")
        console.print("[bold]the real pipeline …")
        target = await pipeline(settings, vcf, args.variants, args.samples, res)
        deadline.check("the pipeline")
        console.print("[bold]Beacon queries …")
        headers = await callers(settings, target["dataset_id"])
        alleles = await sample_alleles(settings, target["table"], 2000)
        for clients in client_counts:
            await latencies(settings, headers, alleles, clients, args.queries, res)

    def body() -> int:
        code = run_timed(bench, 1800 + 200 * args.variants / 1e6, res)
        render(res)
        console.print(f"results: {write_results('discovery', res)}")
        return code

    return with_stack(settings, res, body, created_dir=created, keep_stack=args.keep, keep_dir=args.keep,
                      existing_note="(the Beacon budgets are the running stack's: queries past them answer 429)")


if __name__ == "__main__":
    sys.exit(main())
