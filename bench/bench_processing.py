#!/usr/bin/env python
"""Processing benchmark: TES tasks on the local backend, each figure beside a baseline of the same run.

Run from the repository root::

    .venv/bin/python bench/bench_processing.py [--big-mb 256] [--tasks 100] [--rounds 10] [--data-dir DIR] [--keep]

Without ``--data-dir`` a fresh local stack is started under /var/tmp and removed at the end. A
released dataset holds the NA12878 BAM and a synthetic BAM of about ``--big-mb`` MB (as
bench/bench_storage.py sets it up); a researcher is granted it; an approved tool version
(variant-summary's runtime, python-pysam) is registered under a fresh id. Figures:

1. **Task overhead**: submit → COMPLETE of a trivial command (``python -c pass``) through TES (the
   gateway, the scheduler's checks, the executor's claim, the sandbox), median of ``--rounds``,
   beside the same command run directly and run in the sandbox alone.
2. **Many small tasks**: ``--tasks`` tasks submitted at once; throughput (tasks/s, first submit to
   last end) and the time each waited in the queue (creation to the start of its run), p50/p99,
   beside the same commands run directly one after another. ``executor_slots`` bounds the
   concurrency of one executor worker.
3. **Input staging**: a task whose input is the big BAM; bytes/s from the run's start to its
   executor's start (the object read from the archive, decrypted, written to the work directory),
   beside a DRS ``https`` download of the same object by the same researcher.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from harness import Deadline, console, data_dir_for, run_timed, with_stack, write_results

import httpx  # noqa: E402
from bench_reception import Results, ensure_big_bam, pipeline_limit  # noqa: E402
from bench_storage import MB, access_url, drain, setup  # noqa: E402

from genomebus.infra import sandbox  # noqa: E402
from genomebus.infra.readmodels.tools import trs_url  # noqa: E402
from genomebus.infra.runtimes import RUNTIMES  # noqa: E402
from genomebus.infra.settings import Settings  # noqa: E402
from genomebus.producers.processing import ProcessingClient  # noqa: E402
from genomebus.producers.tools import EXAMPLES, approve_tool, load_tool, register_tool  # noqa: E402

TRIVIAL = ["python", "-c", "pass"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def tool(settings: Settings) -> str:
    command = load_tool(EXAMPLES / "variant-summary")
    command = command.model_copy(update={"tool_id": f"bench-{uuid.uuid4().hex[:8]}"})
    assert (await register_tool(settings, command, actor="bench-steward")).accepted
    assert (await approve_tool(settings, command.tool_id, "1.0.0", actor="bench-steward")).accepted
    return trs_url(settings, command.tool_id, "1.0.0")


def task(image: str, command: list[str], inputs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"name": "bench", "tags": {"bench": "processing"}, "inputs": inputs or [],
            "executors": [{"image": image, "command": command}]}


async def wait_all(client: ProcessingClient, ids: list[str], deadline: Deadline) -> list[dict[str, Any]]:
    """The tasks once all have ended (polled lightly, MINIMAL, so the poll does not load the node it measures)."""
    pending = set(ids)
    while pending:
        deadline.check("waiting for tasks")
        page = await client.tasks(view="MINIMAL", tag_key="bench", tag_value="processing", page_size=2047)
        pending -= {t["id"] for t in page["tasks"]
                    if t["state"] in ("COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED")}
        await asyncio.sleep(0.5)
    return [await client.task(i) for i in ids]


async def sandbox_alone(rounds: int) -> list[float]:
    runtime = RUNTIMES["python-pysam"]
    times = []
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        os.chown(work, 629_999, 629_999)  # the work directory belongs to the task's uid
        for _ in range(rounds):
            job = sandbox.SandboxRun(argv=TRIVIAL, runtime=runtime, workdir=work, uid=629_999,
                                     limits=sandbox.SandboxLimits(ram_bytes=2**30, cpu_s=60, wall_s=60, processes=64,
                                                                  file_bytes=2**30),
                                     stdout=Path(tmp) / "out", stderr=Path(tmp) / "err")
            t = time.perf_counter()
            result = await sandbox.run(job)
            times.append(time.perf_counter() - t)
            assert result.exit_code == 0, result
    return times


def direct(rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - t)
    return times


async def overhead(settings: Settings, image: str, token: str, rounds: int, res: dict[str, Any]) -> None:
    tes = []
    async with ProcessingClient(settings, token) as client:
        for _ in range(rounds):
            t = time.perf_counter()
            task_id = await client.submit_task(task(image, TRIVIAL))
            while (await client.task(task_id, "MINIMAL"))["state"] not in ("COMPLETE", "EXECUTOR_ERROR",
                                                                             "SYSTEM_ERROR"):
                await asyncio.sleep(0.01)
            tes.append(time.perf_counter() - t)
    alone, plain = await sandbox_alone(rounds), direct(rounds)
    res["overhead"] = {"rounds": rounds, "direct_ms": round(statistics.median(plain) * 1000, 1),
                       "sandbox_ms": round(statistics.median(alone) * 1000, 1),
                       "tes_ms": round(statistics.median(tes) * 1000, 1),
                       "tes_p90_ms": round(percentile(tes, 0.9) * 1000, 1)}


async def many(settings: Settings, image: str, token: str, n: int, deadline: Deadline, res: dict[str, Any]) -> None:
    async with ProcessingClient(settings, token) as client:
        started = time.time()
        ids: list[str] = []
        for chunk in range(0, n, 10):  # ten submissions at a time
            ids += await asyncio.gather(*(client.submit_task(task(image, TRIVIAL))
                                          for _ in range(min(10, n - chunk))))
        submitted = time.time()
        done = await wait_all(client, ids, deadline)
    ended = max(ts(t["logs"][0]["end_time"]) for t in done if t.get("logs"))
    queued = [ts(t["logs"][0]["start_time"]) - ts(t["creation_time"]) for t in done if t.get("logs")]
    states = {t["state"] for t in done}
    t = time.perf_counter()
    direct(n)
    plain = time.perf_counter() - t
    res["many"] = {"tasks": n, "states": sorted(states), "submit_s": round(submitted - started, 2),
                   "tasks_per_s": round(n / (ended - started), 2), "direct_per_s": round(n / plain, 1),
                   "queue_p50_s": round(percentile(queued, 0.5), 2), "queue_p99_s": round(percentile(queued, 0.99), 2),
                   "executor_slots": settings.executor_slots}


async def staging(settings: Settings, image: str, ids: dict[str, Any], deadline: Deadline,
                  res: dict[str, Any]) -> None:
    async with ProcessingClient(settings, ids["token"]) as client:
        inputs = [{"url": f"drs://node/{ids['big']}", "path": "/work/in/big.bam"}]
        task_id = await client.submit_task(task(image, ["python", "-c", "import os; print(os.path.getsize("
                                                                      "'/work/in/big.bam'))"], inputs))
        [done] = await wait_all(client, [task_id], deadline)
    assert done["state"] == "COMPLETE", done
    attempt = done["logs"][0]
    size = int(attempt["logs"][0]["stdout"].strip())
    stage_s = ts(attempt["logs"][0]["start_time"]) - ts(attempt["start_time"])
    async with httpx.AsyncClient(base_url=settings.gateway_url, timeout=600) as http:
        url, headers = await access_url(http, ids["big"], "https", ids["token"])
        t = time.perf_counter()
        n = await drain(http, url, headers)
        drs_s = time.perf_counter() - t
    assert n == size, (n, size)
    res["staging"] = {"bytes": size, "stage_s": round(stage_s, 2), "stage_MB_per_s": round(size / stage_s / MB, 1),
                      "drs_s": round(drs_s, 2), "drs_MB_per_s": round(n / drs_s / MB, 1),
                      "ratio": round(drs_s / stage_s, 2)}


def render(res: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="processing (same run)")
    for column in ("figure", "genomebus", "baseline", "ratio"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    if o := res.get("overhead"):
        table.add_row("trivial task, submit → COMPLETE (median)", f"{o['tes_ms']} ms (p90 {o['tes_p90_ms']})",
                      f"direct {o['direct_ms']} ms", f"{o['tes_ms'] / o['direct_ms']:.1f}×")
        table.add_row("  of which the sandbox alone", f"{o['sandbox_ms']} ms", f"direct {o['direct_ms']} ms",
                      f"{o['sandbox_ms'] / o['direct_ms']:.1f}×")
    if m := res.get("many"):
        table.add_row(f"{m['tasks']} small tasks, throughput ({m['executor_slots']} slots)",
                      f"{m['tasks_per_s']} tasks/s", f"direct {m['direct_per_s']} runs/s",
                      f"{m['direct_per_s'] / m['tasks_per_s']:.1f}× slower")
        table.add_row("  time in queue p50 / p99", f"{m['queue_p50_s']} / {m['queue_p99_s']} s", "—", "—")
    if s := res.get("staging"):
        table.add_row(f"input staging ({s['bytes'] / MB:,.0f} MB)", f"{s['stage_MB_per_s']} MB/s",
                      f"DRS https {s['drs_MB_per_s']} MB/s", f"{s['stage_MB_per_s'] / s['drs_MB_per_s']:.2f}×")
    console.print(table)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--big-mb", type=int, default=256, help="size of the staged synthetic BAM, MB (10^6 bytes)")
    parser.add_argument("--tasks", type=int, default=100, help="small tasks submitted at once")
    parser.add_argument("--rounds", type=int, default=10, help="trivial tasks to take the median of")
    parser.add_argument("--data-dir", type=Path, default=None, help="use (or start) the stack in this directory")
    parser.add_argument("--keep", action="store_true", help="leave the stack and its directory behind")
    args = parser.parse_args()
    data_dir, created = data_dir_for(args.data_dir)
    settings = Settings(data_dir=data_dir)
    res: dict[str, Any] = {"args": vars(args) | {"data_dir": str(data_dir)}}
    big = ensure_big_bam(args.big_mb, Results())

    async def bench(deadline: Deadline) -> None:
        ids = await setup(settings, big, res)
        image = await tool(settings)
        for step, run in (("task overhead", overhead(settings, image, ids["token"], args.rounds, res)),
                          ("many small tasks", many(settings, image, ids["token"], args.tasks, deadline, res)),
                          ("input staging", staging(settings, image, ids, deadline, res))):
            deadline.check(step)
            console.print(f"[bold]{step} …")
            await run

    def body() -> int:
        code = run_timed(bench, 900 + pipeline_limit(args.big_mb * MB), res)
        render(res)
        console.print(f"results: {write_results('processing', res)}")
        return code

    return with_stack(settings, res, body, created_dir=created, keep_stack=args.keep, keep_dir=args.keep)


if __name__ == "__main__":
    sys.exit(main())
