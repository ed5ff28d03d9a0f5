"""Airlock: the one place where a finished task's outputs are checked, reviewed and released.

- in: ``genomebus.processing`` (``result.ready``) and ``genomebus.processing.commands``
  (``output.approve_requested``, ``output.reject_requested``); consumer group ``genomebus-airlock``;
  keyed by the task
- out: on ``genomebus.processing``: ``output.checked`` (the automatic checks, ``airlock_checks.py``),
  ``output.rejected`` (by ``worker:airlock`` when a file is blocked or fails a rule; by a checker),
  ``output.approved`` (each distinct checker), ``output.released`` (the second approval: the files
  copied from quarantine to the outputs bucket, each with its DRS id); or
  ``processing.command_rejected`` with machine-readable reasons and the request's state
- decides: ``decide(request, command, checker, required)``, a pure function. Only an
  ``output_checker`` (``not_output_checker``), never the task's owner (``own_output``), once each
  (``already_approved``); only a request under review (``unknown_request``, ``not_checked_yet``,
  ``request_closed``). A reject needs a reason (the schema's)
- state: the ``airlock`` read model once it has applied everything on ``genomebus.processing``; its own
  ledger ``decider_airlock.decisions`` (migration ``0010``) keeps every outcome for redeliveries.
  The checks of a redelivered ``result.ready`` give the same event ids, so they count once.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import asyncpg
from faststream import Context

from genomebus.consumers.airlock_checks import Rules, check_file
from genomebus.infra import db, kafka, s3, telemetry
from genomebus.infra.archive_store import Archive
from genomebus.infra.keys import load_archive_keys
from genomebus.infra.ledger import OutcomesLedger
from genomebus.infra.projection import wait_for_position
from genomebus.infra.readmodels import airlock
from genomebus.infra.readmodels.airlock import AirlockProjection
from genomebus.infra.settings import Settings
from genomebus.infra.worker import Resources, Transient, Worker, WorkerSettings, scratch_dir
from genomebus.schemas.airlock import (
    OutputApproved,
    OutputApproveRequested,
    OutputChecked,
    OutputRejected,
    OutputRejectRequested,
    OutputReleased,
    ReleasedOutput,
)
from genomebus.schemas.base import EventModel
from genomebus.schemas.envelope import Envelope, new_envelope
from genomebus.schemas.processing import ProcessingCommandRejected
from genomebus.schemas.reception import Reason
from genomebus.schemas.tasks import ResultReady

ACTOR = "worker:airlock"
LEDGER = "decider_airlock.decisions"
_OBJECTS = uuid.UUID("9b3e2f61-4d7a-4c5e-8a1b-2c3d4e5f6a7b")
OutputCommand = OutputApproveRequested | OutputRejectRequested


def output_object_id(task_id: str, path: str) -> str:
    """The DRS id of a released output: the same for the same task and path, whoever derives it."""
    return f"output-{uuid.uuid5(_OBJECTS, f'{task_id}:{path}').hex}"


def decide(request: dict[str, Any] | None, command: OutputCommand, checker: str, command_id: uuid.UUID, *,
           required: int, outputs_bucket: str) -> list[EventModel]:
    """The facts an output command leads to, given the request as the read model has it (None: unknown)."""
    state = request["state"] if request else None

    def refuse(code: str, message: str) -> list[EventModel]:
        return [ProcessingCommandRejected(aggregate_id=command.task_id, command_id=command_id,
                                          command_type=command.type, reasons=(Reason(code=code, message=message),),
                                          state=state)]

    if not command.as_roles.output_checker:
        return refuse("not_output_checker", "only an output checker of this node may approve or reject outputs")
    if request is None:
        return refuse("unknown_request", f"no output request for {command.task_id}: the task has no outputs in "
                                         "quarantine (yet)")
    if checker == request["owner"]:
        return refuse("own_output", "you ran this task: someone else must check its outputs")
    if state == "checking":
        return refuse("not_checked_yet", "the automatic checks have not finished; try again in a moment")
    if state in ("released", "rejected"):
        return refuse("request_closed", f"this request is {state}; nothing more can be decided")
    if isinstance(command, OutputRejectRequested):
        return [OutputRejected(task_id=command.task_id, by=checker, reason=command.reason)]
    approvers = [a["by"] for a in request["approvals"]]
    if checker in approvers:
        return refuse("already_approved", f"you approved this request already; {required - len(approvers)} more "
                                          "checker(s) must")
    approved = OutputApproved(task_id=command.task_id, by=checker, approvals=len(approvers) + 1, required=required,
                              note=command.note)
    if approved.approvals < required:
        return [approved]
    released = tuple(
        ReleasedOutput(object_id=output_object_id(command.task_id, o["path"]), path=o["path"],
                       name=o.get("name") or o["path"].rsplit("/", 1)[-1], size=o["size"], sha256=o["sha256"],
                       bucket=outputs_bucket, key=o["key"], encrypted_size=0)
        for o in request["outputs"])
    return [approved, OutputReleased(task_id=command.task_id, owner=request["owner"],
                                     approved_by=(*approvers, checker), outputs=released)]


# -- the handlers: I/O around the checks and the decisions ---------------------------------------------------


async def caught_up(settings: Settings, pool: asyncpg.Pool) -> None:
    """Wait until the ``airlock`` read model has applied everything on the processing topic now."""
    ends = await kafka.end_offsets(settings, [settings.topic("processing")])
    try:
        for tp, end in ends.items():
            if end > 0:
                await wait_for_position(pool, AirlockProjection, tp.topic, tp.partition, end - 1,
                                        settings.read_your_writes_timeout_s)
    except TimeoutError as exc:  # the projector is behind or down: decide later, never on stale state
        raise Transient(str(exc)) from exc


class Airlock:
    def __init__(self, settings: Settings, client: Any, archive: Archive) -> None:
        self.settings = settings
        self.s3 = client
        self.archive = archive
        self.rules = Rules(min_cell_count=settings.airlock_min_cell_count)

    async def check(self, event: Envelope[ResultReady]) -> list[Envelope[Any]]:
        data = event.data
        checked = []
        scratch = scratch_dir(self.settings, "airlock")
        for output in data.outputs:
            obj = await self.archive.open(self.settings.s3_quarantine_bucket, output.key)
            with tempfile.TemporaryDirectory(dir=scratch) as tmp:
                plain = Path(tmp) / "output"
                with plain.open("wb") as sink:
                    async for chunk in obj.stream():
                        sink.write(chunk)
                checked.append(await asyncio.to_thread(check_file, output.path, plain, self.rules))
        blocked = [f for f in checked if f.verdict in ("block", "fail")]
        facts: list[EventModel] = [OutputChecked(task_id=data.task_id, owner=data.owner, files=tuple(checked),
                                                 verdict="rejected" if blocked else "review")]
        if blocked:
            why = "; ".join(f"{f.path}: " + ", ".join(r.rule for r in f.findings if r.verdict in ("block", "fail"))
                            for f in blocked)
            facts.append(OutputRejected(task_id=data.task_id, by=ACTOR, reason=f"the automatic checks stop it: {why}"))
        return [new_envelope(f, source=self.settings.source, actor=ACTOR, subject=data.task_id, cause=event)
                for f in facts]

    async def release(self, released: OutputReleased, task_id: str) -> OutputReleased:
        """Copy each output from quarantine to the outputs bucket (idempotent); their stored sizes filled in."""
        outputs = []
        for o in released.outputs:
            await self.s3.copy_object(Bucket=o.bucket, Key=o.key,
                                      CopySource={"Bucket": self.settings.s3_quarantine_bucket, "Key": o.key})
            head = await self.s3.head_object(Bucket=o.bucket, Key=o.key)
            outputs.append(o.model_copy(update={"encrypted_size": int(head["ContentLength"])}))
        return released.model_copy(update={"outputs": tuple(outputs)})


async def decide_command(command: Envelope[Any], settings: Settings, pool: asyncpg.Pool, ledger: OutcomesLedger,
                         airlock_: Airlock) -> list[Envelope[Any]]:
    if (recorded := await ledger.outcomes(command.id)) is not None:
        return recorded
    await caught_up(settings, pool)
    async with pool.acquire() as conn:
        request = await airlock.get_request(conn, command.data.task_id)
    facts = decide(request, command.data, command.actor, command.id, required=settings.airlock_checkers_required,
                   outputs_bucket=settings.s3_outputs_bucket)
    facts = [await airlock_.release(f, command.data.task_id) if isinstance(f, OutputReleased) else f for f in facts]
    outcomes = [new_envelope(fact, source=settings.source, subject=command.data.task_id, cause=command,
                             actor=ACTOR if isinstance(fact, (ProcessingCommandRejected, OutputReleased))
                             else command.actor)
                for fact in facts]
    return await ledger.record(command, outcomes)


async def on_result_ready(event: Envelope[ResultReady], airlock_: Airlock = Context("airlock")
                          ) -> list[Envelope[Any]]:
    return await airlock_.check(event)


async def on_approve(command: Envelope[OutputApproveRequested], settings: WorkerSettings,
                     pool: asyncpg.Pool = Context("db"), ledger: OutcomesLedger = Context("ledger"),
                     airlock_: Airlock = Context("airlock")) -> list[Envelope[Any]]:
    return await decide_command(command, settings, pool, ledger, airlock_)


async def on_reject(command: Envelope[OutputRejectRequested], settings: WorkerSettings,
                    pool: asyncpg.Pool = Context("db"), ledger: OutcomesLedger = Context("ledger"),
                    airlock_: Airlock = Context("airlock")) -> list[Envelope[Any]]:
    return await decide_command(command, settings, pool, ledger, airlock_)


@contextlib.asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Mapping[str, Any]]:
    pool = await db.connect(settings, max_size=3)
    try:
        async with s3.client(settings) as client:
            secret, _ = load_archive_keys(settings)
            yield {"db": pool, "ledger": OutcomesLedger(pool, LEDGER),
                   "airlock": Airlock(settings, client, Archive(client, secret))}
    finally:
        await pool.close()


def build(settings: Settings, *, name: str = "airlock", resources: Resources = open_resources) -> Worker:
    worker = Worker(name, settings, resources=resources,
                    description="Checks finished tasks' outputs; two output checkers approve; releases them")
    worker.handle(on_result_ready, produces=(OutputChecked, OutputRejected))
    worker.handle(on_approve, produces=(OutputApproved, OutputReleased, ProcessingCommandRejected))
    worker.handle(on_reject, produces=(OutputRejected, ProcessingCommandRejected))
    return worker


async def main(settings: Settings, stop: asyncio.Event) -> None:
    telemetry.setup(settings, "airlock")
    await build(settings).run(stop)

