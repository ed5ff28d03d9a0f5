#!/usr/bin/env python
"""Workflow benchmark: WES runs of a two-step CWL workflow, each figure beside a baseline of the same run.

Run from the repository root::

    .venv/bin/python bench/bench_workflows.py [--rounds 5] [--concurrent 10] [--data-dir DIR] [--keep]

Without ``--data-dir`` a fresh local stack is started under /var/tmp and removed at the end. A
released dataset holds HG02102.vcf.gz; a researcher is granted it; the region-summary workflow
(``producers/examples/tools/region-summary``: filter a region with pysam, then count variant classes)
is registered and approved. Figures:

1. **WES overhead**: submit → COMPLETE (with its step logs) of one run on one VCF, median of
   ``--rounds``, beside cwltool run directly on the same inputs (same workflow, local files, no
   sandbox, no node) and beside cwltool run in the task sandbox alone (what the executor adds around it
   is the rest: the scheduler, staging from the archive, quarantine, the events).
2. **Concurrent runs**: ``--concurrent`` runs submitted at once; throughput (runs/s, first submit to
   last end) and the time from queued to complete, p50/p99, beside the same number of direct cwltool
   runs one after another. ``executor_slots`` bounds how many run at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from harness import Deadline, console, data_dir_for, run_prefix, run_timed, with_stack, write_results

from genomebus.infra import sandbox  # noqa: E402
from genomebus.infra.readmodels.tools import trs_url  # noqa: E402
from genomebus.infra.runtimes import RUNTIMES  # noqa: E402
from genomebus.infra.settings import Settings  # noqa: E402
from genomebus.infra.visas import ensure_dev_issuers, issue_dev_token  # noqa: E402
from genomebus.producers.access import AccessClient  # noqa: E402
from genomebus.producers.datasets import build_command, register_dataset, release_dataset  # noqa: E402
from genomebus.producers.processing import ProcessingClient  # noqa: E402
from genomebus.producers.submit import submit_file  # noqa: E402
from genomebus.producers.tools import EXAMPLES, approve_tool, load_tool, register_tool  # noqa: E402
from genomebus.schemas.reception import DatasetRegisterRequested  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
VCF = REPO / "data" / "variants" / "HG02102.vcf.gz"
WORKFLOW = EXAMPLES / "region-summary"
REGION = "21:10000001-20000000"
DAC = "BENCH-WES-DAC"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def setup(settings: Settings) -> dict[str, Any]:
    dataset_id = f"GDI-{settings.node_id}-DATASET-8{run_prefix()}"
    assert (await register_dataset(settings, build_command(
        DatasetRegisterRequested, dataset_id=dataset_id, title="wes bench", data_use=("DUO:0000042",), dac_id=DAC,
        individuals=({"id": "W1"},)), actor="bench")).accepted
    done = await submit_file(settings, dataset_id, VCF, actor="bench")
    import httpx

    async with httpx.AsyncClient(base_url=settings.gateway_url, timeout=30) as http:
        deadline = Deadline(300)
        while (body := (await http.get(f"/files/{done.file_id}")).json()).get("state") != "archived":
            deadline.check("archiving the VCF")
            await asyncio.sleep(0.5)
    assert (await release_dataset(settings, dataset_id, actor="bench")).accepted
    ensure_dev_issuers(settings)
    user = f"bench-wes-{run_prefix()}"
    token = issue_dev_token(settings, sub=user, roles=["researcher"], ttl_s=7200)
    async with AccessClient(settings, token) as researcher:
        app = await researcher.apply([dataset_id], project_title="bench", purpose="bench",
                                     research_use={"terms": ["DUO:0000042"]})
        await researcher.submit(app["id"])
    chair = issue_dev_token(settings, sub="bench-chair", roles=[f"dac_member:{DAC}"], ttl_s=600)
    async with AccessClient(settings, chair) as dac:
        from datetime import UTC, timedelta
        await dac.decide(app["id"], dataset_id, "approve", expires_at=datetime.now(UTC) + timedelta(days=1))
    command = load_tool(WORKFLOW)
    command = command.model_copy(update={"tool_id": f"bench-wf-{run_prefix()}"})
    assert (await register_tool(settings, command, actor="bench-steward")).accepted
    assert (await approve_tool(settings, command.tool_id, "1.0.0", actor="bench-steward")).accepted
    return {"token": token, "workflow": trs_url(settings, command.tool_id, "1.0.0"),
            "params": {"variants": [{"class": "File", "location": f"drs://node/{body['accession']}",
                                     "basename": VCF.name}], "region": REGION}}


def cwltool_direct(rounds: int) -> list[float]:
    """cwltool on the host, the same workflow and VCF from local files (the scripts' /tool paths rewritten)."""
    times = []
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        folder = Path(tmp)
        text = (WORKFLOW / "region-summary.cwl").read_text().replace("/tool/", f"{WORKFLOW}/")
        (folder / "wf.cwl").write_text(text)
        (folder / "job.json").write_text(json.dumps({"variants": [{"class": "File", "path": str(VCF)}],
                                                     "region": REGION}))
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
        for n in range(rounds):
            out = folder / f"out{n}"
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "cwltool", "--no-container", "--preserve-environment", "PATH",
                            "--outdir", str(out), str(folder / "wf.cwl"), str(folder / "job.json")], check=True,
                           env=env, capture_output=True)
            times.append(time.perf_counter() - t)
            assert list(out.glob("*.summary.tsv")), "cwltool made no table"
    return times


async def cwltool_in_sandbox(rounds: int) -> list[float]:
    times = []
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        base = Path(tmp)
        tool = base / "tool"
        shutil.copytree(WORKFLOW, tool)
        for _ in range(rounds):
            work = base / "work"
            shutil.rmtree(work, ignore_errors=True)
            (work / "in").mkdir(parents=True)
            shutil.copy(VCF, work / "in" / VCF.name)
            (work / "job.json").write_text(json.dumps({"variants": [{"class": "File", "path": f"/work/in/{VCF.name}"}],
                                                       "region": REGION}))
            for path in [work, *work.rglob("*")]:
                os.chown(path, 629_997, 629_997)
            job = sandbox.SandboxRun(
                argv=["python", "-m", "cwltool", "--no-container", "--outdir", "/work/out", "--tmpdir-prefix",
                      "/work/tmp/", "--tmp-outdir-prefix", "/work/tmp/", "/tool/region-summary.cwl", "/work/job.json"],
                runtime=RUNTIMES["python-pysam"], workdir=work, tool_dir=tool, uid=629_997,
                limits=sandbox.SandboxLimits(ram_bytes=4 * 2**30, cpu_s=600, wall_s=600, processes=64,
                                             file_bytes=2**30),
                stdout=base / "out.txt", stderr=base / "err.txt")
            t = time.perf_counter()
            result = await sandbox.run(job)
            times.append(time.perf_counter() - t)
            assert result.exit_code == 0, result
    return times


async def overhead(settings: Settings, ids: dict[str, Any], rounds: int, res: dict[str, Any]) -> None:
    wes = []
    async with ProcessingClient(settings, ids["token"]) as client:
        for _ in range(rounds):
            t = time.perf_counter()
            run_id = await client.submit_run(ids["workflow"], ids["params"])
            run = await client.wait_run(run_id)
            wes.append(time.perf_counter() - t)
            assert run["state"] == "COMPLETE", run
    direct = cwltool_direct(rounds)
    boxed = await cwltool_in_sandbox(rounds)
    res["overhead"] = {"rounds": rounds, "wes_s": round(statistics.median(wes), 2),
                       "cwltool_direct_s": round(statistics.median(direct), 2),
                       "cwltool_in_sandbox_s": round(statistics.median(boxed), 2)}


async def concurrent(settings: Settings, ids: dict[str, Any], n: int, deadline: Deadline, res: dict[str, Any]) -> None:
    async with ProcessingClient(settings, ids["token"]) as client:
        started = time.time()
        run_ids = await asyncio.gather(*(client.submit_run(ids["workflow"], ids["params"]) for _ in range(n)))
        runs = []
        for run_id in run_ids:
            deadline.check("waiting for the runs")
            runs.append(await client.wait_run(run_id, timeout=max(1.0, deadline.left())))
        tasks = [await client.task(f"task-{r}", "BASIC") for r in run_ids]
    ended = max(ts(r["run_log"]["end_time"]) for r in runs)
    queued_to_complete = [ts(r["run_log"]["end_time"]) - ts(t["creation_time"]) for r, t in zip(runs, tasks, strict=True)]
    t = time.perf_counter()
    cwltool_direct(n)
    direct = time.perf_counter() - t
    res["concurrent"] = {"runs": n, "states": sorted({r["state"] for r in runs}),
                         "runs_per_min": round(n / (ended - started) * 60, 1),
                         "direct_runs_per_min": round(n / direct * 60, 1),
                         "queued_to_complete_p50_s": round(percentile(queued_to_complete, 0.5), 1),
                         "queued_to_complete_p99_s": round(percentile(queued_to_complete, 0.99), 1),
                         "executor_slots": settings.executor_slots}


def render(res: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="WES runs of a two-step CWL workflow (same run)")
    for column in ("figure", "genomebus", "baseline", "ratio"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    if o := res.get("overhead"):
        table.add_row("one run, submit → COMPLETE (median)", f"{o['wes_s']} s",
                      f"cwltool directly {o['cwltool_direct_s']} s", f"{o['wes_s'] / o['cwltool_direct_s']:.2f}×")
        table.add_row("  of which cwltool in the sandbox", f"{o['cwltool_in_sandbox_s']} s",
                      f"cwltool directly {o['cwltool_direct_s']} s",
                      f"{o['cwltool_in_sandbox_s'] / o['cwltool_direct_s']:.2f}×")
    if c := res.get("concurrent"):
        table.add_row(f"{c['runs']} runs at once, throughput ({c['executor_slots']} slots)",
                      f"{c['runs_per_min']} runs/min", f"directly, one after another: {c['direct_runs_per_min']}/min",
                      f"{c['runs_per_min'] / c['direct_runs_per_min']:.2f}×")
        table.add_row("  queued → complete p50 / p99", f"{c['queued_to_complete_p50_s']} / "
                      f"{c['queued_to_complete_p99_s']} s", "—", "—")
    console.print(table)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="single runs to take the median of")
    parser.add_argument("--concurrent", type=int, default=10, help="runs submitted at once")
    parser.add_argument("--data-dir", type=Path, default=None, help="use (or start) the stack in this directory")
    parser.add_argument("--keep", action="store_true", help="leave the stack and its directory behind")
    args = parser.parse_args()
    data_dir, created = data_dir_for(args.data_dir)
    settings = Settings(data_dir=data_dir)
    res: dict[str, Any] = {"args": vars(args) | {"data_dir": str(data_dir)}}

    async def bench(deadline: Deadline) -> None:
        console.print("[bold]setting up (dataset, grant, workflow) …")
        ids = await setup(settings)
        for step, run in (("WES overhead", overhead(settings, ids, args.rounds, res)),
                          ("concurrent runs", concurrent(settings, ids, args.concurrent, deadline, res))):
            deadline.check(step)
            console.print(f"[bold]{step} …")
            await run

    def body() -> int:
        code = run_timed(bench, 1800, res)
        render(res)
        console.print(f"results: {write_results('workflows', res)}")
        return code

    return with_stack(settings, res, body, created_dir=created, keep_stack=args.keep, keep_dir=args.keep)


if __name__ == "__main__":
    sys.exit(main())
