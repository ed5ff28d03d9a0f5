"""Reception decider: the one place where Data Reception's commands become facts.

- in: ``genomebus.reception.commands`` (consumer group ``genomebus-reception-decider``):
  ``dataset.register_requested``, ``dataset.update_requested``, ``dataset.release_requested``,
  ``dataset.withdraw_requested``, ``file.submit_requested``; all keyed by the dataset id
- out: on ``genomebus.reception`` exactly one event per command, its id derived from the command:
  the fact (``dataset.registered``, ``dataset.updated``, ``dataset.released``, ``dataset.withdrawn``,
  ``file.uploaded``) or ``reception.command_rejected`` with machine-readable reasons and the
  dataset's state at the time; ``dataset.registered`` and ``dataset.updated`` carry ``warnings``
  naming the catalogue metadata the description lacks (``schemas/healthdcat.missing_metadata``:
  a dataset is never refused for them)
- decides: ``decide(state, command)``, a pure function over the dataset's state (``DatasetState``)
  and, for a file submitted with an alias, the other files of the node that hold that alias
- state: read from the ``datasets`` and ``files`` read models once they have applied everything on
  ``genomebus.reception`` at the moment of deciding; its own ledger ``decider_reception.decisions``
  (created by migration ``0002``) remembers the outcome of every command
- accessions: a file accepted into a dataset gets its accession here, carried in ``file.uploaded``:
  ``GDI-<node>-FILE-<8 digits>``, the next number of the node (``decider_reception.accessions``,
  migration ``0003``), the same one again for the same file; replay reads it from the event
- aliases: DRS and htsget resolve an object by accession or by alias, so an alias names one file
  of the node: a submission whose alias another file holds (any dataset, any state but
  ``qc_failed``, whose alias was never served) is rejected ``alias_taken``, naming the holder;
  the same file submitted again with its own alias is accepted. The alias is also claimed in
  ``decider_reception.aliases`` (migration ``0005``) under a lock, so two deciders taking commands
  of two datasets at once cannot both give it away
- settings: ``read_your_writes_timeout_s`` (how long to wait for the read models to catch up)

Commands for one dataset share a partition and are decided one at a time, in order. Before each
decision the read models are brought up to the current end of the facts topic, which includes
the outcome of the previous command (published and acknowledged before that command's offset
was committed), so two racing commands (a release and a withdrawal) are decided against each
other's outcome and the history stays legal. A redelivered command re-publishes the outcome
recorded in the ledger, unchanged, so a duplicate gives one outcome whatever happened between.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
from faststream import Context

from genomebus.infra import db, kafka, telemetry
from genomebus.infra.projection import wait_for_position
from genomebus.infra.readmodels import datasets, files
from genomebus.infra.readmodels.datasets import DatasetsProjection
from genomebus.infra.readmodels.files import FilesProjection
from genomebus.infra.settings import Settings
from genomebus.infra.worker import Resources, Transient, Worker, WorkerSettings
from genomebus.schemas.base import EventModel
from genomebus.schemas.envelope import Envelope, decode, encode, new_envelope
from genomebus.schemas.healthdcat import missing_metadata
from genomebus.schemas.reception import (
    CommandRejected,
    DatasetRegistered,
    DatasetRegisterRequested,
    DatasetReleased,
    DatasetReleaseRequested,
    DatasetUpdated,
    DatasetUpdateRequested,
    DatasetWithdrawn,
    DatasetWithdrawRequested,
    FileSubmitRequested,
    FileUploaded,
    Reason,
)

ACTOR = "worker:reception-decider"
LEDGER = "decider_reception.decisions"
ACCESSIONS = "decider_reception.accessions"
ALIASES = "decider_reception.aliases"


def accession_of(node_id: str, number: int) -> str:
    """``GDI-FI-FILE-00000042``: short, of a fixed width (eight digits, more only past 99,999,999)."""
    return f"GDI-{node_id}-FILE-{number:08d}"


# -- the decision: pure ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileFacts:
    """What the decider needs to know of one file of the dataset."""

    file_id: UUID
    name: str
    state: str
    accession: str | None = None
    qc_codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class AliasHolder:
    """A file of the node, in this dataset or another, that holds the alias a submission asks for."""

    file_id: UUID
    dataset_id: str
    accession: str | None = None


@dataclass(frozen=True)
class DatasetState:
    """A dataset as the log says it is now: ``state`` None means this node never registered it.

    ``alias_holders``: the files that hold the alias of the command being decided (none for
    other commands), including the submitted file itself when it holds it already.
    """

    dataset_id: str
    state: str | None
    files: tuple[FileFacts, ...] = ()
    alias_holders: tuple[AliasHolder, ...] = ()


_WAITING = {"uploaded": "waiting for QC", "qc_passed": "waiting for the archive"}


def decide(state: DatasetState, command: EventModel, command_id: UUID) -> EventModel:
    """The fact a command yields, or a ``CommandRejected`` saying why not."""
    match command:
        case DatasetRegisterRequested():
            if state.state is not None:
                return _reject(state, command, command_id, "already_registered",
                               f"{state.dataset_id} is already registered ({state.state}); "
                               "to change its description use `genomebus dataset update`")
            return DatasetRegistered(dataset_id=command.dataset_id, **command.description_fields(),
                                     warnings=missing_metadata(command))
        case DatasetUpdateRequested():
            if refused := _refuse_unless(state, command, command_id, "registered", "released"):
                return refused
            return DatasetUpdated(dataset_id=command.dataset_id, **command.description_fields(),
                                  warnings=missing_metadata(command))
        case DatasetReleaseRequested():
            if state.state == "released":
                return _reject(state, command, command_id, "already_released", f"{state.dataset_id} is already released")
            if refused := _refuse_unless(state, command, command_id, "registered"):
                return refused
            if not state.files:
                return _reject(state, command, command_id, "no_files", f"{state.dataset_id} has no files yet")
            waiting = [f for f in state.files if f.state != "archived"]
            if waiting:
                return _rejection(state, command, command_id, tuple(
                    Reason(code="file_not_archived", message=f"{f.name}: {f.state}"
                           + (f" ({', '.join(f.qc_codes) or _WAITING.get(f.state, '')})"
                              if f.qc_codes or f.state in _WAITING else ""))
                    for f in waiting))
            return DatasetReleased(dataset_id=command.dataset_id,
                                   files=tuple(sorted(f.accession for f in state.files if f.accession)))
        case DatasetWithdrawRequested():
            if state.state == "withdrawn":
                return _reject(state, command, command_id, "already_withdrawn", f"{state.dataset_id} is already withdrawn")
            if refused := _refuse_unless(state, command, command_id, "registered", "released"):
                return refused
            return DatasetWithdrawn(dataset_id=command.dataset_id, reason=command.reason.strip())
        case FileSubmitRequested():
            if refused := _refuse_unless(state, command, command_id, "registered"):
                return refused
            done = next((f for f in state.files if f.file_id == command.file_id and f.state == "archived"), None)
            if done is not None:
                return _reject(state, command, command_id, "already_archived",
                               f"the same bytes are already archived in {state.dataset_id} as {done.accession}")
            holder = next((h for h in state.alias_holders if h.file_id != command.file_id), None)
            if command.alias is not None and holder is not None:
                return _reject(state, command, command_id, "alias_taken", alias_taken(command.alias, holder))
            return FileUploaded(**command.upload_fields())
    raise TypeError(f"the reception decider has no rule for {type(command).__name__}")


def alias_taken(alias: str, holder: AliasHolder) -> str:
    """The one line a submitter reads: whose the alias is, and what to do."""
    whose = holder.accession or f"file {holder.file_id} (not yet accessioned)"
    return f"alias {alias!r} is already {whose}'s, in {holder.dataset_id}; submit with another --alias"


def _refuse_unless(state: DatasetState, command: EventModel, command_id: UUID, *allowed: str) -> CommandRejected | None:
    if state.state in allowed:
        return None
    if state.state is None:
        return _reject(state, command, command_id, "unknown_dataset",
                       f"{state.dataset_id} is not registered on this node; register it first")
    return _reject(state, command, command_id, f"dataset_{state.state}", f"{state.dataset_id} is {state.state}")


def _reject(state: DatasetState, command: EventModel, command_id: UUID, code: str, message: str) -> CommandRejected:
    return _rejection(state, command, command_id, (Reason(code=code, message=message),))


def _rejection(state: DatasetState, command: EventModel, command_id: UUID,
               reasons: tuple[Reason, ...]) -> CommandRejected:
    return CommandRejected(aggregate_id=state.dataset_id, command_id=command_id, command_type=command.type,
                           reasons=reasons, state=state.state)


# -- the handler: I/O around the decision ---------------------------------------------------------------


async def alias_holders(conn: asyncpg.Connection, alias: str) -> list[asyncpg.Record]:
    """The node's files that hold ``alias``: any dataset, any state but ``qc_failed``, earliest first.

    A query of the ``files`` read model; it belongs beside the others in ``infra/readmodels/files.py``
    and is here only until that module takes it (it reads the schema the module names).
    """
    return await conn.fetch(
        f'SELECT file_id, dataset_id, accession FROM "{files.SCHEMA}".files '
        "WHERE alias = $1 AND state <> 'qc_failed' ORDER BY uploaded_at, file_id", alias)


async def current_state(pool: asyncpg.Pool, dataset_id: str, *, alias: str | None = None) -> DatasetState:
    """The dataset, its files and, when ``alias`` is given, the node's files that hold it."""
    async with pool.acquire() as conn:
        state = await datasets.dataset_state(conn, dataset_id)
        members = await files.files_of(conn, dataset_id)
        holders = await alias_holders(conn, alias) if alias is not None else []
    return DatasetState(dataset_id, state, tuple(
        FileFacts(f["file_id"], f["alias"] or f["filename"], f["state"], f["accession"],
                  tuple(dict.fromkeys(r["code"] for r in f["qc_reasons"] or ())))
        for f in members), tuple(AliasHolder(h["file_id"], h["dataset_id"], h["accession"]) for h in holders))


async def caught_up(settings: Settings, pool: asyncpg.Pool) -> None:
    """Wait until the read models have applied everything on the facts topic now."""
    ends = await kafka.end_offsets(settings, [settings.topic("reception")])
    try:
        for projection in (DatasetsProjection, FilesProjection):
            for tp, end in ends.items():
                if end > 0:
                    await wait_for_position(pool, projection, tp.topic, tp.partition, end - 1,
                                            settings.read_your_writes_timeout_s)
    except TimeoutError as exc:  # the projector is behind or down: decide later, never on stale state
        raise Transient(str(exc)) from exc


class Ledger:
    """The outcome of every command decided, so that a redelivery re-publishes it unchanged."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def outcome(self, command_id: UUID) -> Envelope[Any] | None:
        row = await self.pool.fetchval(f"SELECT outcome::text FROM {LEDGER} WHERE command_id = $1", command_id)
        return decode(row.encode()) if row else None

    async def accession(self, file_id: UUID, node_id: str, pool_of_read_models: asyncpg.Pool) -> str:
        """The file's accession: the one it was given before, else the next number of this node, for ever.

        Numbers are handed out under a lock shared by every decider instance, and never fall below
        what the ``files`` read model (rebuilt from the log) has seen, so a lost ledger cannot
        hand out a number twice.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('decider_reception.accessions'))")
            number = await conn.fetchval(f"SELECT number FROM {ACCESSIONS} WHERE file_id = $1", file_id)
            if number is None:
                ours = await conn.fetchval(f"SELECT coalesce(max(number), 0) FROM {ACCESSIONS}")
                seen = await files.highest_accession_number(pool_of_read_models, node_id)
                number = max(ours, seen) + 1
                await conn.execute(f"INSERT INTO {ACCESSIONS} (file_id, number) VALUES ($1, $2)", file_id, number)
        return accession_of(node_id, number)

    async def claim_alias(self, alias: str, file_id: UUID, dataset_id: str, node_id: str,
                          pool_of_read_models: asyncpg.Pool) -> AliasHolder | None:
        """Give ``alias`` to the file, or answer the other file that holds it.

        The read models say which aliases the log has given; a claim covers the moment between
        another decider's decision and its fact reaching them. Claims are taken under a lock shared
        by every decider instance. A holder that failed QC was never served under its alias and
        gives it up; a holder the read models do not know yet keeps it.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('decider_reception.aliases'))")
            row = await conn.fetchrow(f"SELECT a.file_id, a.dataset_id, n.number FROM {ALIASES} a "
                                      f"LEFT JOIN {ACCESSIONS} n USING (file_id) WHERE a.alias = $1", alias)
            if row is not None and row["file_id"] != file_id \
                    and await files.file_state(pool_of_read_models, row["file_id"]) != "qc_failed":
                return AliasHolder(row["file_id"], row["dataset_id"],
                                   accession_of(node_id, row["number"]) if row["number"] else None)
            await conn.execute(
                f"INSERT INTO {ALIASES} (alias, file_id, dataset_id) VALUES ($1, $2, $3) ON CONFLICT (alias) "
                "DO UPDATE SET file_id = excluded.file_id, dataset_id = excluded.dataset_id, claimed_at = now()",
                alias, file_id, dataset_id)
        return None

    async def record(self, command: Envelope[Any], outcome: Envelope[Any]) -> Envelope[Any]:
        """Keep the outcome; if another attempt recorded one first, that one wins."""
        await self.pool.execute(
            f"INSERT INTO {LEDGER} (command_id, command_type, dataset_id, outcome_type, outcome) "
            "VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (command_id) DO NOTHING",
            command.id, command.type, command.subject, outcome.type, encode(outcome).decode())
        stored = await self.outcome(command.id)
        if stored is None:  # the row was just written or was already there: only a broken database gets here
            raise RuntimeError(f"the outcome of command {command.id} vanished from the ledger")
        return stored


async def decide_command(command: Envelope[Any], settings: Settings, pool: asyncpg.Pool,
                         ledger: Ledger) -> list[Envelope[Any]]:
    """Decide one command (or re-publish its recorded outcome): the one outcome every command gets."""
    if (recorded := await ledger.outcome(command.id)) is not None:
        return [recorded]
    await caught_up(settings, pool)
    state = await current_state(pool, command.data.dataset_id, alias=getattr(command.data, "alias", None))
    fact = decide(state, command.data, command.id)
    if isinstance(fact, FileUploaded) and fact.alias is not None:  # another decider may have given it a moment ago
        holder = await ledger.claim_alias(fact.alias, fact.file_id, fact.dataset_id, settings.node_id, pool)
        if holder is not None:
            fact = _reject(state, command.data, command.id, "alias_taken", alias_taken(fact.alias, holder))
    if isinstance(fact, FileUploaded):  # a file submitted again keeps the accession the log already gave it
        known = next((f.accession for f in state.files if f.file_id == fact.file_id and f.accession), None)
        accession = known or await ledger.accession(fact.file_id, settings.node_id, pool)
        fact = fact.model_copy(update={"accession": accession})
    # A fact is the asker's act, decided here: it carries their id; a rejection is the decider's own word.
    actor = ACTOR if isinstance(fact, CommandRejected) else command.actor
    outcome = new_envelope(fact, source=settings.source, actor=actor, cause=command)
    return [await ledger.record(command, outcome)]


# One typed handler per command, as the worker layer wants; each is the same decision.


async def on_register(command: Envelope[DatasetRegisterRequested], settings: WorkerSettings,
                      pool: asyncpg.Pool = Context("db"), ledger: Ledger = Context("ledger")) -> list[Envelope[Any]]:
    return await decide_command(command, settings, pool, ledger)


async def on_update(command: Envelope[DatasetUpdateRequested], settings: WorkerSettings,
                    pool: asyncpg.Pool = Context("db"), ledger: Ledger = Context("ledger")) -> list[Envelope[Any]]:
    return await decide_command(command, settings, pool, ledger)


async def on_release(command: Envelope[DatasetReleaseRequested], settings: WorkerSettings,
                     pool: asyncpg.Pool = Context("db"), ledger: Ledger = Context("ledger")) -> list[Envelope[Any]]:
    return await decide_command(command, settings, pool, ledger)


async def on_withdraw(command: Envelope[DatasetWithdrawRequested], settings: WorkerSettings,
                      pool: asyncpg.Pool = Context("db"), ledger: Ledger = Context("ledger")) -> list[Envelope[Any]]:
    return await decide_command(command, settings, pool, ledger)


async def on_submit(command: Envelope[FileSubmitRequested], settings: WorkerSettings,
                    pool: asyncpg.Pool = Context("db"), ledger: Ledger = Context("ledger")) -> list[Envelope[Any]]:
    return await decide_command(command, settings, pool, ledger)


@contextlib.asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Mapping[str, Any]]:
    pool = await db.connect(settings, max_size=3)
    try:
        yield {"db": pool, "ledger": Ledger(pool)}
    finally:
        await pool.close()


def build(settings: Settings, *, name: str = "reception-decider", resources: Resources = open_resources) -> Worker:
    worker = Worker(name, settings, resources=resources,
                    description="Decides Data Reception's commands: the facts, or a rejection with reasons")
    worker.handle(on_register, produces=(DatasetRegistered, CommandRejected))
    worker.handle(on_update, produces=(DatasetUpdated, CommandRejected))
    worker.handle(on_release, produces=(DatasetReleased, CommandRejected))
    worker.handle(on_withdraw, produces=(DatasetWithdrawn, CommandRejected))
    worker.handle(on_submit, produces=(FileUploaded, CommandRejected))
    return worker


async def main(settings: Settings, stop: asyncio.Event) -> None:
    telemetry.setup(settings, "reception-decider")
    await build(settings).run(stop)
