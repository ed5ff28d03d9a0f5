"""PostgreSQL: connection pools and migrations.

Migrations are the numbered ``migrations/*.sql`` files, applied once each
under an advisory lock, in order; then every read model's live schema
(``genomebus.infra.readmodels``) is created if missing. A read model's version
names its schema, so a new version is a new schema built by replay from offset 0.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import asyncpg

from genomebus.infra.settings import Settings

T = TypeVar("T")

_MIGRATION_LOCK = 0x67656E6F  # "geno"


async def connect(settings: Settings, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    return await asyncpg.create_pool(settings.dsn, min_size=min_size, max_size=max_size, command_timeout=60)


async def with_pool(settings: Settings, work: Callable[[asyncpg.Pool], Awaitable[T]], *, max_size: int = 2) -> T:
    """Run ``work(pool)`` with a short-lived pool, as one-shot commands do."""
    pool = await connect(settings, max_size=max_size)
    try:
        return await work(pool)
    finally:
        await pool.close()


def migration_files() -> list[tuple[str, str]]:
    folder = Path(__file__).parent / "migrations"
    return sorted((f.name, f.read_text()) for f in folder.glob("*.sql"))


async def migrate(settings: Settings) -> list[str]:
    """Apply pending migrations; return the names applied now."""
    conn = await asyncpg.connect(settings.dsn)
    applied_now: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for name, sql in migration_files():
            if name in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
            applied_now.append(name)
        from genomebus.infra.readmodels import create_all

        applied_now += [f"read model {schema}" for schema in await create_all(conn)]
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
        await conn.close()
    return applied_now
