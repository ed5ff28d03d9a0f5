"""The local backend, for real (the sandbox, no stack): staging, executors in order, stdout/stderr,
exit codes and ignore_error, limits, cancel, outputs collected without following the task's links."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from genomebus.infra import sandbox
from genomebus.infra.backends import ExecutorSpec, OutputSpec, RunOutcome, StageFile, TaskLimits, TaskRun
from genomebus.infra.backends.local import BadPath, LocalBackend, host_path

pytestmark = pytest.mark.skipif(sandbox.available() is not None, reason=str(sandbox.available()))

LIMITS = TaskLimits(ram_bytes=2**30, cpu_cores=1, disk_bytes=2**30, wall_s=60, processes=32)
SUMMARY = """
import collections, sys, pysam
counts = collections.Counter()
with pysam.VariantFile(sys.argv[1]) as vcf:
    for record in vcf:
        for alt in record.alts or ():
            kind = 'SNV' if len(record.ref) == len(alt) == 1 else 'INS' if len(alt) > len(record.ref) else 'DEL'
            counts[record.chrom, kind] += 1
with open(sys.argv[2], 'w') as out:
    out.write('chrom\\tvariant_type\\tcount\\n')
    for (chrom, kind), n in sorted(counts.items()):
        out.write(f'{chrom}\\t{kind}\\t{n}\\n')
"""


@pytest.fixture
def backend(tmp_path: Path) -> LocalBackend:
    tmp_path.chmod(0o755)
    return LocalBackend(tmp_path / "tasks")


def go(backend: LocalBackend, run: TaskRun, *, cancel_after: float | None = None) -> tuple[RunOutcome, list[str]]:
    said: list[str] = []

    async def main() -> RunOutcome:
        cancel = asyncio.Event()
        if cancel_after is not None:
            asyncio.get_running_loop().call_later(cancel_after, cancel.set)

        async def running() -> None:
            said.append("RUNNING")

        return await backend.run(run, cancel, running)

    return asyncio.run(main()), said


def task(executors: list[ExecutorSpec], *, inputs: list[StageFile] | None = None, tool: dict[str, bytes] | None = None,
         outputs: list[OutputSpec] | None = None, limits: TaskLimits = LIMITS) -> TaskRun:
    return TaskRun("task-" + "0" * 32, executors, inputs or [], tool or {}, outputs or [], limits)


def test_a_tool_runs_on_a_staged_vcf_and_its_table_is_collected(backend: LocalBackend) -> None:
    vcf = Path("data/variants/NA18537.vcf.gz").read_bytes()

    async def write_vcf(target: Path) -> None:  # as the executor streams a decrypted archived object
        target.write_bytes(vcf)

    outcome, said = go(backend, task(
        [ExecutorSpec(("python", "/tool/summary.py", "/work/in/calls.vcf.gz", "/work/out/summary.tsv"),
                      "python-pysam")],
        inputs=[StageFile("/work/in/calls.vcf.gz", writer=write_vcf)], tool={"summary.py": SUMMARY.encode()},
        outputs=[OutputSpec("/work/out/summary.tsv")]))
    assert outcome.state == "COMPLETE", outcome.system_logs + [log.stderr for log in outcome.logs]
    assert said == ["RUNNING"]
    [table] = outcome.outputs
    lines = table.host_path.read_text().splitlines()
    assert lines[0] == "chrom\tvariant_type\tcount" and len(lines) > 1
    assert table.path == "/work/out/summary.tsv" and table.size == table.host_path.stat().st_size
    assert outcome.logs[0].exit_code == 0 and outcome.logs[0].start_time <= outcome.logs[0].end_time


def test_executors_run_in_order_sharing_the_work_dir_and_streams_are_kept(backend: LocalBackend) -> None:
    outcome, _ = go(backend, task([
        ExecutorSpec(("sh", "-c", "echo first > /work/a; echo to-stderr >&2"), "posix-shell", stderr="/work/logs/e0"),
        ExecutorSpec(("sh", "-c", "cat /work/a; cat"), "posix-shell", stdin="/work/in.txt", stdout="/work/b"),
    ], inputs=[StageFile("/work/in.txt", content=b"from stdin\n")], outputs=[OutputSpec("/work/b"),
                                                                              OutputSpec("/work/logs", "DIRECTORY")]))
    assert outcome.state == "COMPLETE", outcome.system_logs
    assert [log.stdout for log in outcome.logs] == ["", "first\nfrom stdin\n"]
    assert outcome.logs[0].stderr == "to-stderr\n"
    assert sorted(o.path for o in outcome.outputs) == ["/work/b", "/work/logs/e0"]


def test_a_failing_executor_ends_the_task_unless_told_to_ignore_it(backend: LocalBackend) -> None:
    outcome, _ = go(backend, task([ExecutorSpec(("sh", "-c", "exit 3"), "posix-shell"),
                                   ExecutorSpec(("true",), "posix-shell")]))
    assert outcome.state == "EXECUTOR_ERROR" and [log.exit_code for log in outcome.logs] == [3]
    assert "exited with code 3" in outcome.system_logs[0]
    outcome, _ = go(backend, task([ExecutorSpec(("sh", "-c", "exit 3"), "posix-shell", ignore_error=True),
                                   ExecutorSpec(("true",), "posix-shell")]))
    assert outcome.state == "COMPLETE" and [log.exit_code for log in outcome.logs] == [3, 0]


def test_the_wall_time_is_the_whole_tasks(backend: LocalBackend) -> None:
    limits = TaskLimits(ram_bytes=2**30, cpu_cores=1, disk_bytes=2**30, wall_s=2, processes=32)
    outcome, _ = go(backend, task([ExecutorSpec(("sleep", "1.5"), "posix-shell"),
                                   ExecutorSpec(("sleep", "5"), "posix-shell")], limits=limits))
    assert outcome.state == "EXECUTOR_ERROR" and outcome.reason_code == "wall_time"
    assert "wall-time" in outcome.system_logs[-1]


def test_cancel_stops_a_running_task(backend: LocalBackend) -> None:
    outcome, _ = go(backend, task([ExecutorSpec(("sleep", "30"), "posix-shell")]), cancel_after=0.5)
    assert outcome.state == "CANCELED"


def test_outputs_never_follow_a_link_the_task_made(backend: LocalBackend, tmp_path: Path) -> None:
    secret = tmp_path / "host-secret"
    secret.write_text("the node's secret")
    outcome, _ = go(backend, task(
        [ExecutorSpec(("sh", "-c", f"ln -s {secret} /work/out.txt; mkdir /work/d; ln -s {secret} /work/d/x; "
                                   f"ln -s {tmp_path} /work/dirlink; echo ok > /work/d/real"), "posix-shell")],
        outputs=[OutputSpec("/work/out.txt"), OutputSpec("/work/d", "DIRECTORY"), OutputSpec("/work/dirlink/host-secret")]))
    assert outcome.state == "COMPLETE"
    assert [o.path for o in outcome.outputs] == ["/work/d/real"]
    assert all("secret" not in o.host_path.read_text() for o in outcome.outputs)
    assert len(outcome.system_logs) == 3, outcome.system_logs


def test_a_captured_stream_is_never_written_through_a_link(backend: LocalBackend, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    outcome, _ = go(backend, task([
        ExecutorSpec(("sh", "-c", f"ln -s {victim} /work/log.txt"), "posix-shell"),
        ExecutorSpec(("echo", "overwrite"), "posix-shell", stdout="/work/log.txt"),
    ]))
    assert victim.read_text() == "untouched"
    assert any("link" in line for line in outcome.system_logs)


def test_a_disk_hog_fails_the_task(backend: LocalBackend) -> None:
    limits = TaskLimits(ram_bytes=2**30, cpu_cores=1, disk_bytes=4 * 2**20, wall_s=60, processes=32)
    outcome, _ = go(backend, task([ExecutorSpec(("sh", "-c", "for i in 1 2 3 4 5 6; do head -c 1000000 /dev/zero "
                                                             "> /work/f$i; done"), "posix-shell")], limits=limits))
    assert outcome.state == "EXECUTOR_ERROR" and outcome.reason_code == "disk"


@pytest.mark.parametrize("path", ["/etc/passwd", "/work/../etc/passwd", "relative", "/workx/a"])
def test_paths_outside_the_work_dir_are_refused(tmp_path: Path, path: str) -> None:
    with pytest.raises(BadPath):
        host_path(tmp_path, path)


def test_staging_outside_the_work_dir_is_a_system_error(backend: LocalBackend) -> None:
    outcome, said = go(backend, task([ExecutorSpec(("true",), "posix-shell")],
                                     inputs=[StageFile("/etc/cron.d/x", content=b"* * * * * root sh")]))
    assert outcome.state == "SYSTEM_ERROR" and outcome.reason_code == "bad_path" and said == []
