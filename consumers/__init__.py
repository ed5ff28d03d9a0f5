"""Workers: each one a consumer group doing one job. ``workers()`` names what ``genomebus worker`` can run."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable

from genomebus.infra.settings import Settings

WorkerMain = Callable[[Settings, asyncio.Event], Awaitable[None]]

# name → module with ``async def main(settings, stop)``; `genomebus up` runs them all.
WORKER_MODULES = {
    "projector": "genomebus.consumers.projector",
    "archive": "genomebus.consumers.archive",
    "qc": "genomebus.consumers.qc",
    "reception-decider": "genomebus.consumers.reception_decider",
    "access-decider": "genomebus.consumers.access_decider",
    "access-timer": "genomebus.consumers.access_timer",
    "indexer": "genomebus.consumers.indexer",
    "tool-registry": "genomebus.consumers.tool_registry",
    "scheduler": "genomebus.consumers.scheduler",
    "executor": "genomebus.consumers.executor",
    "airlock": "genomebus.consumers.airlock",
}


def workers() -> dict[str, WorkerMain]:
    return {name: importlib.import_module(module).main for name, module in WORKER_MODULES.items()}
