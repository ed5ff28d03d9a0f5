"""Health probes of each local-stack component, shared by `up` (start-up waits) and `status`."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx

from genomebus.infra import kafka, s3
from genomebus.infra.settings import Settings


async def _seaweedfs(settings: Settings) -> str:
    async with s3.client(settings) as client:
        buckets = (await client.list_buckets()).get("Buckets", [])
    return f"{len(buckets)} buckets"


async def _postgres(settings: Settings) -> str:
    conn = await asyncpg.connect(settings.dsn, timeout=2)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


async def _kafka(settings: Settings) -> str:
    client = kafka.admin(settings, request_timeout_ms=3000)
    await client.start()
    try:
        return f"{len(await client.list_topics())} topics"
    finally:
        await client.close()


async def _gateway(settings: Settings) -> str:
    async with httpx.AsyncClient(timeout=2) as client:
        response = await client.get(f"{settings.gateway_url}/health")
    response.raise_for_status()
    return response.json().get("status", "ok")


PROBES = {"seaweedfs": _seaweedfs, "postgres": _postgres, "kafka": _kafka, "gateway": _gateway}


async def check(component: str, settings: Settings, timeout: float = 5.0) -> tuple[bool, str]:
    """(healthy, detail) of one component; workers are judged by their PID elsewhere."""
    probe = PROBES.get(component)
    if probe is None:
        return True, "no probe"
    try:
        return True, await asyncio.wait_for(probe(settings), timeout)
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy", reported as text
        return False, f"{type(exc).__name__}: {exc}"[:300]
