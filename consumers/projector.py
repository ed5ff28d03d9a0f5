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
from collections.abc import Sequence
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
        await self.apply_many(conn, schema, [(event, record)])

    async def apply_many(self, conn: asyncpg.Connection, schema: str,
                         events: Sequence[tuple[Envelope[Any], Record]]) -> None:
        """Two set-based statements per batch: the history, then the datasets its new events create."""
        history = [
            (e.id, e.subject, e.type, e.time, e.actor, r.topic, r.partition, r.offset,
             json.dumps(e.data.model_dump(mode="json")))
            for e, r in events
        ]
        fresh = {row[0] for row in await conn.fetch(
            f'INSERT INTO "{schema}".dataset_events SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], '
            "$4::timestamptz[], $5::text[], $6::text[], $7::int[], $8::bigint[], $9::jsonb[]) "
            "ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
            *zip(*history, strict=True),
        )}
        # Only an event's first appearance changes the model; redeliveries are already in the history.
        registered: dict[str, tuple[Any, ...]] = {}
        for event, _record in events:
            if event.id not in fresh:
                continue
            fresh.discard(event.id)
            match event.data:
                case DatasetRegistered() as d:  # the first registration of an id wins
                    registered.setdefault(d.dataset_id, (
                        d.dataset_id, d.title, d.description, json.dumps(d.data_use), json.dumps(d.keywords), d.publisher,
                        str(d.landing_page) if d.landing_page else None, "registered", event.time, event.actor,
                    ))
        if registered:
            await conn.execute(
                f'INSERT INTO "{schema}".datasets SELECT u.dataset_id, u.title, u.description, '
                "ARRAY(SELECT jsonb_array_elements_text(u.data_use::jsonb)), "
                "ARRAY(SELECT jsonb_array_elements_text(u.keywords::jsonb)), u.publisher, u.landing_page, u.state, "
                "u.registered_at, u.registered_by, u.registered_at "
                "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], "
                "$8::text[], $9::timestamptz[], $10::text[]) AS u(dataset_id, title, description, data_use, keywords, "
                "publisher, landing_page, state, registered_at, registered_by) ON CONFLICT (dataset_id) DO NOTHING",
                *zip(*registered.values(), strict=True),
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
