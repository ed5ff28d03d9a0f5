"""Projector: builds the PostgreSQL read models the gateway serves.

- in: every catalogued topic a projection reads (``genomebus.reception`` so far)
- out: rows in ``proj_<name>`` schemas; undecodable or unprojectable events to
  ``genomebus.deadletter``
- decides: nothing; each projection folds events into rows, idempotently
- settings: ``projector_batch_size``, ``consumer_retry_initial_s`` / ``_max_s``

Each projection runs as its own consumer group and stores its Kafka position
in the same transaction as its rows (see ``infra.projection``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg

from infra import db, kafka, telemetry
from infra.projection import Projection, ProjectionRunner, Record
from infra.settings import Settings
from schemas.envelope import Envelope
from schemas.reception import DatasetRegistered


class DatasetsProjection(Projection):
    """Datasets as described by their stewards, with every event that touched them."""

    name = "datasets"
    contexts = ("reception",)
    tables = {
        "datasets": (
            "dataset_id text PRIMARY KEY, title text NOT NULL, description text NOT NULL, "
            "data_use text[] NOT NULL, keywords text[] NOT NULL, publisher text, landing_page text, "
            "state text NOT NULL, registered_at timestamptz NOT NULL, registered_by text NOT NULL, "
            "updated_at timestamptz NOT NULL"
        ),
        "dataset_events": (
            "event_id uuid PRIMARY KEY, dataset_id text NOT NULL, type text NOT NULL, time timestamptz NOT NULL, "
            "actor text NOT NULL, topic text NOT NULL, partition integer NOT NULL, kafka_offset bigint NOT NULL, "
            "data jsonb NOT NULL"
        ),
    }
    indexes = ('CREATE INDEX IF NOT EXISTS dataset_events_by_dataset ON {schema}.dataset_events (dataset_id, time)',)

    async def apply(self, conn: asyncpg.Connection, schema: str, event: Envelope[Any], record: Record) -> None:
        fresh = await conn.fetchval(
            f'INSERT INTO "{schema}".dataset_events VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) '
            "ON CONFLICT (event_id) DO NOTHING RETURNING true",
            event.id, event.subject, event.type, event.time, event.actor, record.topic, record.partition,
            record.offset, json.dumps(event.data.model_dump(mode="json")),
        )
        if not fresh:
            return  # the same event again (a producer retry): it changed the model once already
        match event.data:
            case DatasetRegistered() as d:
                await conn.execute(
                    f'INSERT INTO "{schema}".datasets VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $9) '
                    "ON CONFLICT (dataset_id) DO NOTHING",
                    d.dataset_id, d.title, d.description, list(d.data_use), list(d.keywords), d.publisher,
                    str(d.landing_page) if d.landing_page else None, "registered", event.time, event.actor,
                )


PROJECTIONS: dict[str, Projection] = {p.name: p for p in (DatasetsProjection(),)}


async def main(settings: Settings, stop: asyncio.Event) -> None:
    telemetry.setup(settings, "projector")
    pool = await db.connect(settings, max_size=len(PROJECTIONS) + 2)
    try:
        async with kafka.Publisher(settings) as publisher:
            runners = [ProjectionRunner(settings, pool, p, publisher) for p in PROJECTIONS.values()]
            await asyncio.gather(*(r.run(stop) for r in runners))
    finally:
        await pool.close()
