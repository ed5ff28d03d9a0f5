"""Event history tables: every event of an aggregate as projected, for the gateway's ``history`` fields."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from genomebus.infra.projection import Record
from genomebus.schemas.envelope import Envelope


def _history_row(event: Envelope[Any], record: Record) -> tuple[Any, ...]:
    return (event.id, event.subject, event.type, event.time, event.actor, record.topic, record.partition,
            record.offset, json.dumps(event.data.model_dump(mode="json")))


HISTORY_COLUMNS = (
    "event_id uuid PRIMARY KEY, {subject} NOT NULL, type text NOT NULL, time timestamptz NOT NULL, "
    "actor text NOT NULL, topic text NOT NULL, partition integer NOT NULL, kafka_offset bigint NOT NULL, "
    "data jsonb NOT NULL"
)
_INSERT_HISTORY = (
    'INSERT INTO "{schema}".{table} SELECT * FROM unnest($1::uuid[], $2::{subject_type}[], $3::text[], '
    "$4::timestamptz[], $5::text[], $6::text[], $7::int[], $8::bigint[], $9::jsonb[]) "
    "ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)


async def record_history(conn: asyncpg.Connection, schema: str, table: str, subject_type: str,
                         events: Sequence[tuple[Envelope[Any], Record]]) -> list[Envelope[Any]]:
    """Insert the events into a history table; return, in log order, those seen for the first time."""
    if not events:
        return []
    rows = [_history_row(e, r) for e, r in events]
    fresh = {row[0] for row in await conn.fetch(
        _INSERT_HISTORY.format(schema=schema, table=table, subject_type=subject_type), *zip(*rows, strict=True))}
    firsts = []
    for event, _record in events:
        if event.id in fresh:
            fresh.discard(event.id)  # a redelivery inside the same batch counts once
            firsts.append(event)
    return firsts



@dataclass(frozen=True)
class HistoryEntry:
    event_id: str
    type: str
    time: datetime
    actor: str


async def history(conn: asyncpg.Connection, schema: str, table: str, column: str, subject: Any) -> list[HistoryEntry]:
    """An aggregate's events as projected, in the order they happened."""
    rows = await conn.fetch(f'SELECT event_id::text, type, time, actor FROM "{schema}".{table} WHERE {column} = $1 '
                            "ORDER BY time, kafka_offset", subject)
    return [HistoryEntry(**dict(r)) for r in rows]
