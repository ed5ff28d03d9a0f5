"""Projector: builds the PostgreSQL read models the gateway serves.

- in: every catalogued topic a read model reads (``genomebus.reception`` so far)
- out: rows in ``proj_<name>_v<version>`` schemas; undecodable or unprojectable events to
  ``genomebus.deadletter``
- decides: nothing; each read model (``genomebus.infra.readmodels``) folds events into rows, idempotently
- settings: ``projector_batch_size``, ``consumer_retry_initial_s`` / ``_max_s``

Each read model runs as its own consumer group and stores its Kafka position
in the same transaction as its rows (see ``genomebus.infra.projection``).
"""

from __future__ import annotations

import asyncio

from genomebus.infra import db, kafka, telemetry
from genomebus.infra.projection import ProjectionRunner
from genomebus.infra.readmodels import READ_MODELS
from genomebus.infra.settings import Settings


async def main(settings: Settings, stop: asyncio.Event) -> None:
    telemetry.setup(settings, "projector")
    pool = await db.connect(settings, max_size=len(READ_MODELS) + 2)
    try:
        async with kafka.Publisher(settings) as publisher:
            runners = [ProjectionRunner(settings, pool, p, publisher) for p in READ_MODELS.values()]
            await asyncio.gather(*(r.run(stop) for r in runners))
    finally:
        await pool.close()
