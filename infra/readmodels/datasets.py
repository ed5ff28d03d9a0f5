"""The ``datasets`` read model: datasets as their stewards described them, their lifecycle and history.

Owned here: the tables, the version and every query others run on them. The
projector folds events into it; the gateway, the reception decider and the QC
worker read it through the functions below, never by naming its tables.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from genomebus.infra.projection import Projection, Record
from genomebus.infra.readmodels.history import HISTORY_COLUMNS, HistoryEntry, history, record_history
from genomebus.schemas.envelope import Envelope
from genomebus.schemas.reception import (
    CATALOGUE_FIELDS,
    RECEPTION_COMMANDS,
    CommandRejected,
    DatasetDescription,
    DatasetRegistered,
    DatasetReleased,
    DatasetUpdated,
    DatasetWithdrawn,
)

DATASET_EVENTS = ("dataset.registered", "dataset.updated", "dataset.released", "dataset.withdrawn",
                  "reception.command_rejected")
COMMAND_TYPES = frozenset(c.model_fields["type"].default for c in RECEPTION_COMMANDS)
OUTCOME_TYPES = frozenset({"dataset.registered", "dataset.updated", "dataset.released", "dataset.withdrawn",
                           "file.uploaded", "reception.command_rejected"})
"""What the reception decider publishes in answer to a command (its ``causation_id`` is the command's id)."""


class DatasetsProjection(Projection):
    """Datasets as described by their stewards, their lifecycle, and every event that touched them.

    It also folds the reception commands and their outcomes (``commands``), so that a client that
    sees its command decided through this read model also sees the dataset as the decision left it.
    """

    name = "datasets"
    version = 5  # v5: the catalogue metadata (``metadata``) and the warnings of accepted commands
    contexts = ("reception", "reception.commands")
    tables = {
        "datasets": (
            "dataset_id text PRIMARY KEY, title text NOT NULL, description text NOT NULL, "
            "data_use text[] NOT NULL, keywords text[] NOT NULL, publisher text, landing_page text, "
            "access_rights text NOT NULL, individuals jsonb NOT NULL, biosamples jsonb NOT NULL, "
            "dac_id text, data_use_parameters jsonb NOT NULL, metadata jsonb NOT NULL, state text NOT NULL, "
            "registered_at timestamptz NOT NULL, registered_by text NOT NULL, "
            "released_at timestamptz, released_files text[], withdrawn_at timestamptz, withdrawn_reason text, "
            "updated_at timestamptz NOT NULL"
        ),
        "dataset_events": HISTORY_COLUMNS.format(subject="dataset_id text"),
        "commands": (
            "command_id uuid PRIMARY KEY, type text, dataset_id text, actor text, requested_at timestamptz, "
            "status text NOT NULL, outcome_event_id uuid, outcome_type text, reasons jsonb, warnings jsonb, "
            "state text, decided_at timestamptz"
        ),
    }
    indexes = ("CREATE INDEX IF NOT EXISTS dataset_events_by_dataset ON {schema}.dataset_events (dataset_id, time)",
               "CREATE INDEX IF NOT EXISTS commands_by_dataset ON {schema}.commands (dataset_id, requested_at)")

    async def apply(self, conn: asyncpg.Connection, schema: str, event: Envelope[Any], record: Record) -> None:
        await self.apply_many(conn, schema, [(event, record)])

    async def apply_many(self, conn: asyncpg.Connection, schema: str,
                         events: Sequence[tuple[Envelope[Any], Record]]) -> None:
        """Set-based: one statement for the history, one for new datasets, one per lifecycle change."""
        await _fold_commands(conn, schema, [e for e, _ in events])
        mine = [(e, r) for e, r in events if e.type in DATASET_EVENTS]
        fresh = await record_history(conn, schema, "dataset_events", "text", mine)
        registered: dict[str, tuple[Any, ...]] = {}
        changes: list[Envelope[Any]] = []
        for event in fresh:
            match event.data:
                case DatasetRegistered() as d:  # the first registration of an id wins
                    registered.setdefault(d.dataset_id, (
                        d.dataset_id, d.title, d.description, json.dumps(d.data_use), json.dumps(d.keywords),
                        d.publisher, str(d.landing_page) if d.landing_page else None, d.access_rights,
                        json.dumps([i.model_dump(mode="json") for i in d.individuals]),
                        json.dumps([b.model_dump(mode="json") for b in d.biosamples]),
                        d.dac_id, json.dumps(d.data_use_parameters.model_dump(mode="json")), _metadata(d),
                        event.time, event.actor,
                    ))
                case _:
                    changes.append(event)
        if registered:
            await conn.execute(
                f'INSERT INTO "{schema}".datasets (dataset_id, title, description, data_use, keywords, publisher, '
                "landing_page, access_rights, individuals, biosamples, dac_id, data_use_parameters, metadata, state, "
                "registered_at, registered_by, updated_at) SELECT u.dataset_id, u.title, u.description, "
                "ARRAY(SELECT jsonb_array_elements_text(u.data_use::jsonb)), "
                "ARRAY(SELECT jsonb_array_elements_text(u.keywords::jsonb)), u.publisher, u.landing_page, "
                "u.access_rights, u.individuals::jsonb, u.biosamples::jsonb, u.dac_id, u.data_use_parameters::jsonb, "
                "u.metadata::jsonb, 'registered', u.registered_at, u.registered_by, u.registered_at "
                "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], "
                "$8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::timestamptz[], "
                "$15::text[]) AS u(dataset_id, title, description, data_use, keywords, publisher, landing_page, "
                "access_rights, individuals, biosamples, dac_id, data_use_parameters, metadata, registered_at, "
                "registered_by) "
                "ON CONFLICT (dataset_id) DO NOTHING",
                *zip(*registered.values(), strict=True),
            )
        for event in changes:  # rare: applied one by one, in log order, after the registrations
            match event.data:
                case DatasetReleased() as d:
                    await conn.execute(
                        f'UPDATE "{schema}".datasets SET state = \'released\', released_at = $2, released_files = $3, '
                        "updated_at = $2 WHERE dataset_id = $1 AND state = 'registered'",
                        d.dataset_id, event.time, list(d.files))
                case DatasetUpdated() as d:  # the description is replaced whole; the lifecycle is untouched
                    await conn.execute(
                        f'UPDATE "{schema}".datasets SET title = $2, description = $3, data_use = $4, keywords = $5, '
                        "publisher = $6, landing_page = $7, access_rights = $8, individuals = $9::jsonb, "
                        "biosamples = $10::jsonb, updated_at = $11, dac_id = $12, data_use_parameters = $13::jsonb, "
                        "metadata = $14::jsonb WHERE dataset_id = $1",
                        d.dataset_id, d.title, d.description, list(d.data_use), list(d.keywords), d.publisher,
                        str(d.landing_page) if d.landing_page else None, d.access_rights,
                        json.dumps([i.model_dump(mode="json") for i in d.individuals]),
                        json.dumps([b.model_dump(mode="json") for b in d.biosamples]), event.time,
                        d.dac_id, json.dumps(d.data_use_parameters.model_dump(mode="json")), _metadata(d))
                case DatasetWithdrawn() as d:
                    await conn.execute(
                        f'UPDATE "{schema}".datasets SET state = \'withdrawn\', withdrawn_at = $2, '
                        "withdrawn_reason = $3, updated_at = $2 WHERE dataset_id = $1",
                        d.dataset_id, event.time, d.reason)




def _metadata(description: DatasetDescription) -> str:
    """The catalogue fields of a description, as the ``metadata`` column keeps them."""
    return json.dumps(description.model_dump(mode="json", include=set(CATALOGUE_FIELDS)))


async def _fold_commands(conn: asyncpg.Connection, schema: str, events: Sequence[Envelope[Any]]) -> None:
    """Commands as requested (pending) and as decided; either may be projected first."""
    for event in events:
        if event.type in COMMAND_TYPES:
            await conn.execute(
                f'INSERT INTO "{schema}".commands (command_id, type, dataset_id, actor, requested_at, status) '
                "VALUES ($1, $2, $3, $4, $5, 'pending') ON CONFLICT (command_id) DO UPDATE SET type = $2, "
                "dataset_id = $3, actor = $4, requested_at = $5",
                event.id, event.type, event.subject, event.actor, event.time)
        elif event.type in OUTCOME_TYPES and event.causation_id is not None:
            rejected = isinstance(event.data, CommandRejected)
            warnings = getattr(event.data, "warnings", ()) if not rejected else ()
            await conn.execute(
                f'INSERT INTO "{schema}".commands (command_id, status, outcome_event_id, outcome_type, reasons, '
                "warnings, state, decided_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8) "
                "ON CONFLICT (command_id) DO UPDATE SET status = $2, outcome_event_id = $3, outcome_type = $4, "
                "reasons = $5::jsonb, warnings = $6::jsonb, state = $7, decided_at = $8",
                event.causation_id, "rejected" if rejected else "accepted", event.id, event.type,
                json.dumps([r.model_dump() for r in event.data.reasons]) if rejected else None,
                json.dumps([w.model_dump() for w in warnings]), event.data.state if rejected else None, event.time)


SCHEMA = DatasetsProjection.live_schema()
_COLUMNS = (
    "dataset_id AS id, title, description, data_use, keywords, publisher, landing_page, access_rights, state, "
    "jsonb_array_length(individuals) AS individuals, jsonb_array_length(biosamples) AS biosamples, "
    "registered_at, released_at, updated_at"
)


async def list_datasets(conn: asyncpg.Connection, *, limit: int, offset: int,
                        state: str | None = None) -> tuple[list[dict[str, Any]], int]:
    """A page of datasets, withdrawn ones excepted, and how many there are in all."""
    where = "state <> 'withdrawn'" + (" AND state = $3" if state else "")
    args: list[Any] = [limit, offset] + ([state] if state else [])
    rows = await conn.fetch(f'SELECT {_COLUMNS}, count(*) OVER () AS total FROM "{SCHEMA}".datasets '
                            f"WHERE {where} ORDER BY dataset_id LIMIT $1 OFFSET $2", *args)
    total = rows[0]["total"] if rows else 0
    return [{k: v for k, v in r.items() if k != "total"} for r in rows], total


async def get_dataset(conn: asyncpg.Connection, dataset_id: str) -> dict[str, Any] | None:
    """One dataset's public description (individuals and biosamples as counts only), whatever its state."""
    row = await conn.fetchrow(f'SELECT {_COLUMNS} FROM "{SCHEMA}".datasets WHERE dataset_id = $1', dataset_id)
    return dict(row) if row else None


async def dataset_state(conn: asyncpg.Connection | asyncpg.Pool, dataset_id: str) -> str | None:
    """``registered``, ``released``, ``withdrawn``, or None for a dataset this node does not know."""
    return await conn.fetchval(f'SELECT state FROM "{SCHEMA}".datasets WHERE dataset_id = $1', dataset_id)


async def dataset_access(conn: asyncpg.Connection | asyncpg.Pool, dataset_id: str) -> dict[str, Any] | None:
    """What access to a dataset depends on, or None for a dataset this node does not know.

    ``state``, ``dac_id`` (None: no DAC decides it yet), ``access_rights``, ``data_use`` (its DUO
    terms, a list) and ``data_use_parameters`` (a dict: ``DataUseConditions(terms=data_use,
    **data_use_parameters)`` rebuilds its conditions).
    """
    row = await conn.fetchrow(f'SELECT state, dac_id, access_rights, data_use, data_use_parameters '
                              f'FROM "{SCHEMA}".datasets WHERE dataset_id = $1', dataset_id)
    if row is None:
        return None
    out = dict(row)
    out["data_use"] = list(out["data_use"])
    parameters = out["data_use_parameters"]
    out["data_use_parameters"] = json.loads(parameters) if isinstance(parameters, str) else dict(parameters or {})
    return out


async def dataset_history(conn: asyncpg.Connection, dataset_id: str) -> list[HistoryEntry]:
    return await history(conn, SCHEMA, "dataset_events", "dataset_id", dataset_id)


async def get_command(conn: asyncpg.Connection, command_id: Any) -> dict[str, Any] | None:
    """A reception command as requested and, once decided, its outcome (``status``: pending, accepted, rejected)."""
    row = await conn.fetchrow(f'SELECT * FROM "{SCHEMA}".commands WHERE command_id = $1', command_id)
    if row is None:
        return None
    out = dict(row)
    for column in ("reasons", "warnings"):
        out[column] = json.loads(out[column]) if isinstance(out[column], str) else out[column]
    return out


@dataclass(frozen=True)
class CatalogueEntry:
    """A released dataset as the catalogue describes it: its description (without individuals and
    biosamples: the catalogue counts people, never lists them) and when it was registered, released, changed."""

    dataset_id: str
    description: DatasetDescription
    registered_at: datetime
    released_at: datetime
    updated_at: datetime


async def released_descriptions(conn: asyncpg.Connection | asyncpg.Pool, dataset_id: str | None = None
                                ) -> list[CatalogueEntry]:
    """Every released dataset (or only ``dataset_id``, if released), by id: withdrawn ones are not there."""
    rows = await conn.fetch(
        "SELECT dataset_id, title, description, data_use, keywords, publisher, landing_page, access_rights, dac_id, "
        f'data_use_parameters, metadata, registered_at, released_at, updated_at FROM "{SCHEMA}".datasets '
        "WHERE state = 'released' AND ($1::text IS NULL OR dataset_id = $1) ORDER BY dataset_id", dataset_id)
    return [CatalogueEntry(r["dataset_id"], _description(r), r["registered_at"], r["released_at"], r["updated_at"])
            for r in rows]


def _description(row: asyncpg.Record) -> DatasetDescription:
    fields = {k: _json(row[k]) if k in ("data_use_parameters", "metadata") else row[k]
              for k in ("title", "description", "data_use", "keywords", "publisher", "landing_page", "access_rights",
                        "dac_id", "data_use_parameters", "metadata")}
    metadata = fields.pop("metadata")
    return DatasetDescription.model_validate({**fields, **metadata})


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def dataset_records(conn: asyncpg.Connection | asyncpg.Pool, dataset_id: str) -> dict[str, Any] | None:
    """A dataset's individual-level metadata (individuals, biosamples): controlled data, served only under a grant."""
    row = await conn.fetchrow(f'SELECT individuals, biosamples FROM "{SCHEMA}".datasets WHERE dataset_id = $1',
                              dataset_id)
    if row is None:
        return None
    return {k: json.loads(v) if isinstance(v, str) else v for k, v in row.items()}
