"""A decider's ledger: the outcomes of every command it decided, so that a redelivered or duplicated
command re-publishes exactly them (same ids, same times) instead of being decided again.

Each decider has its own table (``<schema>.decisions``: command_id, command_type, aggregate_id, outcomes
as a JSON array of envelopes, decided_at), made by its migration.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import asyncpg

from genomebus.schemas.envelope import Envelope, decode, encode


class OutcomesLedger:
    def __init__(self, pool: asyncpg.Pool, table: str) -> None:
        self.pool = pool
        self.table = table

    async def outcomes(self, command_id: UUID) -> list[Envelope[Any]] | None:
        row = await self.pool.fetchval(f"SELECT outcomes::text FROM {self.table} WHERE command_id = $1", command_id)
        return [decode(json.dumps(o).encode()) for o in json.loads(row)] if row else None

    async def record(self, command: Envelope[Any], outcomes: list[Envelope[Any]]) -> list[Envelope[Any]]:
        """Keep the outcomes; if another attempt recorded some first, those win."""
        await self.pool.execute(
            f"INSERT INTO {self.table} (command_id, command_type, aggregate_id, outcomes) "
            "VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT (command_id) DO NOTHING",
            command.id, command.type, command.subject, f"[{','.join(encode(o).decode() for o in outcomes)}]")
        stored = await self.outcomes(command.id)
        if stored is None:  # the row was just written or was already there: only a broken database gets here
            raise RuntimeError(f"the outcomes of command {command.id} vanished from the ledger")
        return stored
