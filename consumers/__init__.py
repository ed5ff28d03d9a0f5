"""Workers: each one a consumer group doing one job. ``WORKERS`` names what ``genomebus worker`` can run."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncio

from infra.settings import Settings

WorkerMain = Callable[[Settings, asyncio.Event], Awaitable[None]]


def workers() -> dict[str, WorkerMain]:
    from consumers import projector

    return {"projector": projector.main}
