"""Executor: runs admitted tasks on a backend (here the local one: the sandbox) and says how each goes.

- in: ``genomebus.processing`` (consumer group ``genomebus-executor``): ``task.accepted`` (a run is
  recorded, queued), ``task.cancel_accepted`` (the run is stopped, or never started)
- out, on ``genomebus.processing``, keyed by the task: ``task.state_changed`` INITIALIZING → RUNNING →
  COMPLETE / EXECUTOR_ERROR / SYSTEM_ERROR / CANCELED (with the TES logs: times, exit codes, stdout and
  stderr tails, outputs, system logs); ``result.ready`` (the outputs, Crypt4GH-encrypted for the archive
  key in the quarantine bucket under ``<task_id>/``) just before COMPLETE
- decides: how a run goes, and nothing else (the scheduler decided whether it runs)
- state: ``worker_executor.runs`` (migration ``0009``): one row per task, ``queued`` → ``running`` (held
  by one executor process under a lease it renews) → ``ended``

The consumer only records runs; a runner loop claims queued runs (``FOR UPDATE SKIP LOCKED``, at most
``executor_slots`` per process) and runs them in the background, so a long task never holds up its
partition (its cancel arrives on the same partition). The rule for an executor that dies mid-task (``kill
-9``, a lost host): its sandboxes die with it (docs/sandbox.md); its lease lapses after ``LEASE_S``; any
executor then ends the run as SYSTEM_ERROR ``executor_lost`` and never runs it again — a task may have
written half its outputs, so re-running it silently is not safe; the researcher resubmits. An executor
that finds it lost its lease publishes nothing more for that run, so a task is never reported complete
after being ended, and never runs twice at once.

Inputs are re-checked when staged: a grant revoked or vetoed since admission ends the task
(SYSTEM_ERROR ``no_grant``) before a byte is read; the scheduler's audit event records the admitted read.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import asyncpg
import crypt4gh.lib
from faststream import Context

from genomebus.infra import cwl, db, s3, telemetry
from genomebus.infra.archive_store import Archive
from genomebus.infra.backends import (
    Backend,
    BackendUnavailable,
    ExecutorSpec,
    OutputSpec,
    RunOutcome,
    StageFile,
    TaskLimits,
    TaskRun,
)
from genomebus.infra.backends.local import LocalBackend
from genomebus.infra.kafka import Publisher
from genomebus.infra.keys import load_archive_keys
from genomebus.infra.readmodels import access, files, tools
from genomebus.infra.settings import Settings
from genomebus.infra.worker import Resources, Worker, WorkerSettings
from genomebus.schemas.envelope import Envelope, new_envelope
from genomebus.schemas.workflows import StepLog, WorkflowCanceled, WorkflowCompleted, WorkflowFailed
from genomebus.schemas.reception import Reason
from genomebus.schemas.tasks import (
    OutputFile,
    QuarantinedOutput,
    ResultReady,
    TaskAccepted,
    TaskCancelAccepted,
    TaskStateChanged,
)

log = logging.getLogger(__name__)
ACTOR = "worker:executor"
RUNS = "worker_executor.runs"
LEASE_S = 15.0
ENGINE_LOG_BYTES = 4 << 20
"""How much of a workflow engine's log is read for its step logs (the end of it, if longer)."""
TICK_S = 0.25
_IDS = uuid.UUID("5c1d2e7a-8b9f-4c3d-a2e1-7f6b5a4c3d21")


def event_id(task_id: str, attempt: int, what: str) -> uuid.UUID:
    """The id of a run's event: the same for a repeat of that step, so consumers recognise it."""
    return uuid.uuid5(_IDS, f"{task_id}/{attempt}/{what}")


class Runs:
    """The durable queue of runs and their leases."""

    def __init__(self, pool: asyncpg.Pool, me: str) -> None:
        self.pool = pool
        self.me = me

    async def record(self, accepted: Envelope[TaskAccepted]) -> None:
        await self.pool.execute(
            f"INSERT INTO {RUNS} (task_id, attempt, state, accepted) VALUES ($1, 1, 'queued', $2::jsonb) "
            "ON CONFLICT (task_id) DO NOTHING", accepted.data.task_id, accepted.model_dump_json())

    async def cancel(self, task_id: str) -> tuple[str, TaskAccepted] | None:
        """Mark the run cancelled; its state before (``queued`` runs end here and now) and what was accepted,
        or None if unknown."""
        row = await self.pool.fetchrow(
            f"WITH before AS (SELECT state FROM {RUNS} WHERE task_id = $1 FOR UPDATE) "
            f"UPDATE {RUNS} r SET cancel_requested = true, state = CASE WHEN r.state = 'queued' THEN 'ended' "
            "ELSE r.state END, updated_at = now() FROM before WHERE r.task_id = $1 "
            "RETURNING before.state, r.accepted::text", task_id)
        if row is None:
            return None
        return row["state"], Envelope[TaskAccepted].model_validate_json(row["accepted"]).data

    async def claim(self, n: int) -> list[asyncpg.Record]:
        return await self.pool.fetch(
            f"UPDATE {RUNS} SET state = 'running', owner = $1, lease_until = now() + make_interval(secs => $2), "
            f"updated_at = now() WHERE task_id IN (SELECT task_id FROM {RUNS} WHERE state = 'queued' "
            "ORDER BY created_at FOR UPDATE SKIP LOCKED LIMIT $3) RETURNING task_id, attempt, accepted::text",
            self.me, LEASE_S, n)

    async def renew(self, task_ids: list[str]) -> set[str]:
        """Renew my leases; the runs I still hold."""
        rows = await self.pool.fetch(
            f"UPDATE {RUNS} SET lease_until = now() + make_interval(secs => $3) WHERE task_id = ANY($1) "
            "AND owner = $2 AND state = 'running' RETURNING task_id", task_ids, self.me, LEASE_S)
        return {r["task_id"] for r in rows}

    async def cancelled(self, task_id: str) -> bool:
        return bool(await self.pool.fetchval(f"SELECT cancel_requested FROM {RUNS} WHERE task_id = $1", task_id))

    async def lapsed(self) -> list[asyncpg.Record]:
        """Runs whose executor stopped renewing: ended here (at most once each)."""
        return await self.pool.fetch(
            f"UPDATE {RUNS} SET state = 'ended', updated_at = now() WHERE state = 'running' AND lease_until < now() "
            "RETURNING task_id, attempt, owner, accepted::text")

    async def end(self, task_id: str) -> bool:
        """End my run; False if it is no longer mine (its lease lapsed and another executor ended it)."""
        return await self.pool.fetchval(
            f"UPDATE {RUNS} SET state = 'ended', updated_at = now() WHERE task_id = $1 AND owner = $2 "
            "AND state = 'running' RETURNING true", task_id, self.me) is not None


class Executor:
    """The runner loop of one executor process."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool, publisher: Publisher, backend: Backend,
                 archive: Archive | None, s3_client: Any, public_key: bytes) -> None:
        self.settings = settings
        self.pool = pool
        self.publisher = publisher
        self.backend = backend
        self.archive = archive
        self.s3 = s3_client
        self.public_key = public_key
        self.runs = Runs(pool, f"{os.uname().nodename}/{os.getpid()}/{uuid.uuid4().hex[:8]}")
        self.active: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.engines: dict[str, cwl.EngineLog] = {}
        """A WES run's parsed engine log, from its run's end to the events that say so."""
        self.wake = asyncio.Event()
        """Set when a run is recorded or a slot frees: the loop claims at once rather than at its next tick."""

    async def publish(self, task_id: str, attempt: int, data: Any, what: str) -> None:
        await self.publisher.publish(new_envelope(data, source=self.settings.source, actor=ACTOR, subject=task_id,
                                                  event_id=event_id(task_id, attempt, what)))

    async def state(self, task_id: str, attempt: int, state: str, **fields: Any) -> None:
        await self.publish(task_id, attempt, TaskStateChanged(task_id=task_id, state=state, attempt=attempt,
                                                              **fields), state)

    async def loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.tick()
            except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:  # the database or broker blinked
                log.warning("executor tick failed: %s", type(exc).__name__)
            except Exception:  # noqa: BLE001 - the loop must outlive any one tick's fault, or runs wait forever
                log.exception("executor tick failed")
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.wait())]
            await asyncio.wait(waits, timeout=TICK_S, return_when=asyncio.FIRST_COMPLETED)
            for waiting in waits:
                waiting.cancel()
            self.wake.clear()
        for cancel in self.active.values():
            cancel.set()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)

    async def tick(self) -> None:
        for row in await self.runs.lapsed():
            lost = ("the executor running this task stopped (its lease lapsed); its sandbox died with it; the task "
                    "is not run again: submit it anew")
            await self.state(row["task_id"], row["attempt"], "SYSTEM_ERROR", end_time=datetime.now(UTC),
                             reason=Reason(code="executor_lost", message="the executor running it stopped "
                                           "mid-task; it is not run again: submit it anew"),
                             system_logs=(lost,))
            accepted = Envelope[TaskAccepted].model_validate_json(row["accepted"]).data
            await self.publish_run_end(accepted, row["task_id"], row["attempt"], "SYSTEM_ERROR", None, (lost,))
        held = await self.runs.renew(list(self.active)) if self.active else set()
        for task_id, cancel in list(self.active.items()):  # a run ending meanwhile leaves the dict
            if task_id not in held or await self.runs.cancelled(task_id):
                cancel.set()
        free = self.settings.executor_slots - len(self.active)
        if free > 0:
            for row in await self.runs.claim(free):
                accepted = Envelope[TaskAccepted].model_validate_json(row["accepted"])
                cancel = asyncio.Event()
                self.active[row["task_id"]] = cancel
                job = asyncio.create_task(self.run_one(accepted.data, row["attempt"], cancel))
                self._tasks.add(job)
                job.add_done_callback(self._tasks.discard)

    async def run_one(self, task: TaskAccepted, attempt: int, cancel: asyncio.Event) -> None:
        started = datetime.now(UTC)
        try:
            await self.state(task.task_id, attempt, "INITIALIZING", start_time=started)
            outcome, quarantined = await self.execute(task, attempt, cancel)
            if not await self.runs.end(task.task_id):
                return  # no longer ours: another executor ended it; say nothing more
            fields: dict[str, Any] = dict(start_time=started, end_time=datetime.now(UTC), logs=tuple(outcome.logs),
                                          system_logs=tuple(outcome.system_logs))
            if outcome.state == "COMPLETE":
                await self.publish(task.task_id, attempt, ResultReady(task_id=task.task_id, owner=task.owner,
                                                                      outputs=tuple(quarantined)), "result.ready")
                fields["outputs"] = tuple(OutputFile(url=f"s3://{self.settings.s3_quarantine_bucket}/{q.key}",
                                                     path=q.path, size_bytes=q.size, sha256=q.sha256)
                                          for q in quarantined)
            elif outcome.reason_code:
                fields["reason"] = Reason(code=outcome.reason_code, message=(outcome.system_logs or [outcome.state])[-1])
            await self.state(task.task_id, attempt, outcome.state, **fields)
            await self.publish_run_end(task, task.task_id, attempt, outcome.state, self.engines.pop(task.task_id, None),
                                       tuple(outcome.system_logs))
        except Exception as exc:  # noqa: BLE001 - a run's own failure is the task's SYSTEM_ERROR, never the loop's
            log.exception("task %s failed in the executor", task.task_id)
            if await self.runs.end(task.task_id):
                await self.state(task.task_id, attempt, "SYSTEM_ERROR", start_time=started, end_time=datetime.now(UTC),
                                 reason=Reason(code="executor_failed", message=type(exc).__name__),
                                 system_logs=(f"the executor failed: {type(exc).__name__}",))
                await self.publish_run_end(task, task.task_id, attempt, "SYSTEM_ERROR", None,
                                           (f"the executor failed: {type(exc).__name__}",))
        finally:
            self.active.pop(task.task_id, None)
            self.engines.pop(task.task_id, None)
            self.wake.set()
            with contextlib.suppress(Exception):
                await self.backend.discard(task.task_id)

    async def execute(self, task: TaskAccepted, attempt: int, cancel: asyncio.Event
                      ) -> tuple[RunOutcome, list[QuarantinedOutput]]:
        refused = await self.recheck(task)
        if refused is not None:
            return RunOutcome("SYSTEM_ERROR", [], [], [refused.message], refused.code), []
        async with self.pool.acquire() as conn:
            versions = [await tools.runnable_version(conn, ref.tool_id, ref.version_id) for ref in task.tools]
        distinct = {(v["tool_id"], v["version_id"]) for v in versions if v}
        tool_files: dict[str, bytes] = {}
        for version in versions:
            if version is None:
                continue
            prefix = "" if len(distinct) == 1 else f"{version['tool_id']}/"
            for f in version["files"]:
                tool_files[prefix + f["path"]] = f["content"].encode()
        inputs = [StageFile(i.path, content=i.content.encode()) for i in task.spec.inputs if i.url is None]
        for staged in task.staged_inputs:
            inputs.append(StageFile(staged.path, writer=self._writer(staged.object_id)))
        run = TaskRun(
            task_id=task.task_id,
            executors=[ExecutorSpec(argv=e.command, runtime=ref.runtime, workdir=e.workdir or "/work", stdin=e.stdin,
                                    stdout=e.stdout, stderr=e.stderr, env=dict(e.env or {}),
                                    ignore_error=bool(e.ignore_error))
                       for e, ref in zip(task.spec.executors, task.tools, strict=True)],
            inputs=inputs, tool_files=tool_files,
            outputs=[OutputSpec(o.path, o.type) for o in task.spec.outputs],
            limits=TaskLimits(ram_bytes=task.limits.ram_bytes, cpu_cores=task.limits.cpu_cores,
                              disk_bytes=task.limits.disk_bytes, wall_s=task.limits.wall_s,
                              processes=task.limits.processes),
            log_tail_bytes=self.settings.tes_log_tail_bytes)

        async def running() -> None:
            await self.state(task.task_id, attempt, "RUNNING")

        try:
            outcome = await self.backend.run(run, cancel, running)
        except BackendUnavailable as exc:
            return RunOutcome("SYSTEM_ERROR", [], [], [f"this executor cannot run tasks: {exc}"], "backend_unavailable"), []
        if cancel.is_set() and outcome.state != "COMPLETE":
            outcome.state = "CANCELED"
        if cwl.RUN_TAG in task.spec.tags:
            self.engines[task.task_id] = await self.engine_result(task, outcome)
        quarantined = []
        if outcome.state == "COMPLETE":
            for output in outcome.outputs:
                quarantined.append(await self.quarantine(task.task_id, output.path, output.host_path))
        return outcome, quarantined

    async def recheck(self, task: TaskAccepted) -> Reason | None:
        """A grant revoked, expired or vetoed since admission ends the task before anything is read."""
        now = datetime.now(UTC)
        async with self.pool.acquire() as conn:
            for staged in task.staged_inputs:
                grant = await access.active_grant(conn, task.owner, staged.dataset_id, now)
                if grant is None or await access.is_vetoed(conn, task.owner, staged.dataset_id):
                    return Reason(code="no_grant", message=f"input {staged.path}: the grant for {staged.dataset_id} "
                                                           "is no longer active; nothing was read")
            for ref in task.tools:
                if await tools.runnable_version(conn, ref.tool_id, ref.version_id) is None:
                    return Reason(code="tool_withdrawn", message=f"{ref.trs_url} is no longer approved here")
        return None

    def _writer(self, object_id: str) -> Any:
        async def write(target: Path) -> None:
            async with self.pool.acquire() as conn:
                found = await files.drs_object(conn, object_id)
            if found is None or self.archive is None:
                raise FileNotFoundError(object_id)
            obj = await self.archive.open(found["archive_bucket"], found["archive_key"], found["encrypted_size"])
            with target.open("wb") as out:
                async for chunk in obj.stream():
                    out.write(chunk)
        return write

    async def engine_result(self, task: TaskAccepted, outcome: RunOutcome) -> cwl.EngineLog:
        """A WES run's engine task: cwltool's log as step logs; a run cwltool did not finish with success is an
        EXECUTOR_ERROR whatever its exit code (cwltool exits 0 on permanentFail), so nothing of it is quarantined."""
        text = await self.backend.read_log(task.task_id, 0, "stderr", ENGINE_LOG_BYTES)
        engine = cwl.parse_log(text)
        if outcome.state == "COMPLETE" and engine.status != "success":
            outcome.state = "EXECUTOR_ERROR"
            outcome.reason_code = "workflow_failed"
            failed = [s.name for s in engine.steps if s.status and s.status != "success"]
            outcome.system_logs.append(f"cwltool: final status {engine.status or 'unknown'}"
                                       + (f"; failed: {', '.join(failed)}" if failed else ""))
        engine.outputs = cwl.outputs_object(await self.backend.read_log(task.task_id, 0, "stdout", 1 << 20))
        return engine

    async def publish_run_end(self, task: TaskAccepted | None, task_id: str, attempt: int, state: str,
                              engine: cwl.EngineLog | None, system_logs: tuple[str, ...] = ()) -> None:
        """``workflow.completed`` / ``failed`` / ``canceled`` for a WES run's engine task (nothing for a task)."""
        run_id = task.spec.tags.get(cwl.RUN_TAG) if task is not None else None
        if run_id is None:
            return
        event = {"COMPLETE": WorkflowCompleted, "CANCELED": WorkflowCanceled}.get(state, WorkflowFailed)
        steps = tuple(
            StepLog(id=f"{run_id}-{n}", name=s.name, cmd=tuple(s.cmd), start_time=s.start_time, end_time=s.end_time,
                    exit_code=s.exit_code, status=s.status, system_logs=tuple(s.lines))
            for n, s in enumerate(engine.steps if engine else ()))
        await self.publish(task_id, attempt, event(
            run_id=run_id, task_id=task_id, state=state, steps=steps, outputs=engine.outputs if engine else {},
            engine_status=engine.status if engine else None,
            system_logs=tuple((engine.messages if engine else [])[-50:]) + system_logs), "workflow.ended")

    async def quarantine(self, task_id: str, path: str, host_path: Path) -> QuarantinedOutput:
        """Encrypt one output for the archive key into the quarantine bucket; its plaintext size and sha256."""
        key = f"{task_id}/{PurePosixPath(path).relative_to('/work').as_posix()}"
        encrypted = host_path.with_name(host_path.name + ".c4gh.part")
        digest = hashlib.sha256()

        def encrypt() -> int:
            size = 0
            with host_path.open("rb") as source:
                while chunk := source.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
            with host_path.open("rb") as source, encrypted.open("wb") as sink:
                crypt4gh.lib.encrypt([(0, os.urandom(32), self.public_key)], source, sink)
            return size

        size = await asyncio.to_thread(encrypt)
        try:
            with encrypted.open("rb") as body:
                await self.s3.put_object(Bucket=self.settings.s3_quarantine_bucket, Key=key, Body=body,
                                         ContentLength=encrypted.stat().st_size)
        finally:
            encrypted.unlink(missing_ok=True)
        return QuarantinedOutput(path=path, key=key, size=size, sha256=digest.hexdigest(),
                                 name=PurePosixPath(path).name)


# -- the consumer: it only records runs and cancels ---------------------------------------------------------


async def on_accepted(event: Envelope[TaskAccepted], runs: Runs = Context("runs"),
                      executor: Executor = Context("executor")) -> list[Envelope[Any]]:
    await runs.record(event)
    executor.wake.set()
    return []


async def on_cancel(event: Envelope[TaskCancelAccepted], settings: WorkerSettings,
                    runs: Runs = Context("runs")) -> list[Envelope[Any]]:
    found = await runs.cancel(event.data.task_id)
    if found is None or found[0] != "queued":
        return []  # running: the runner stops it and says CANCELED; ended or unknown: nothing to do
    task_id, accepted = event.data.task_id, found[1]  # never started: it ends here
    said = ("cancelled before it started",)
    out = [new_envelope(TaskStateChanged(task_id=task_id, state="CANCELED", end_time=datetime.now(UTC),
                                         reason=Reason(code="cancelled", message=f"cancelled by {event.data.by}"),
                                         system_logs=said),
                        source=settings.source, actor=ACTOR, subject=task_id, event_id=event_id(task_id, 1, "CANCELED"))]
    if (run_id := accepted.spec.tags.get(cwl.RUN_TAG)) is not None:
        out.append(new_envelope(WorkflowCanceled(run_id=run_id, task_id=task_id, state="CANCELED", system_logs=said),
                                source=settings.source, actor=ACTOR, subject=task_id,
                                event_id=event_id(task_id, 1, "workflow.ended")))
    return out


@contextlib.asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Mapping[str, Any]]:
    pool = await db.connect(settings, max_size=4)
    stop = asyncio.Event()
    try:
        async with Publisher(settings) as publisher, s3.client(settings) as client:
            secret, public = load_archive_keys(settings)
            backend = LocalBackend(settings.tasks_path)
            settings.tasks_path.mkdir(parents=True, exist_ok=True)
            executor = Executor(settings, pool, publisher, backend, Archive(client, secret), client, public)
            runner = asyncio.create_task(executor.loop(stop))
            try:
                yield {"db": pool, "runs": executor.runs, "executor": executor}
            finally:
                stop.set()
                await runner
    finally:
        await pool.close()


def build(settings: Settings, *, name: str = "executor", resources: Resources = open_resources) -> Worker:
    worker = Worker(name, settings, resources=resources,
                    description="Runs admitted tasks in the sandbox; their states, logs and quarantined outputs")
    # what an accepted task leads to, published by the runner loop (declared here for the AsyncAPI document)
    worker.handle(on_accepted, produces=(TaskStateChanged, ResultReady, WorkflowCompleted, WorkflowFailed,
                                         WorkflowCanceled))
    worker.handle(on_cancel, produces=(TaskStateChanged, WorkflowCanceled))
    return worker


async def main(settings: Settings, stop: asyncio.Event) -> None:
    telemetry.setup(settings, "executor")
    await build(settings).run(stop)

