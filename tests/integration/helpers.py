"""Small helpers for integration tests: unique ids, the CLI, waiting on projections, reading topics."""

from __future__ import annotations

import base64
import itertools
import json
import os
import subprocess
import sys
import time
from typing import Any

from genomebus.infra import kafka
from genomebus.infra.settings import Settings

_counter = itertools.count(1)
_RUN = int(time.time()) % 100000


def new_dataset_id() -> str:
    """A fresh 1+MG dataset PID per call, unique across test sessions on the same node."""
    return f"GDI-FI-DATASET-{_RUN:05d}{os.getpid() % 1000:03d}{next(_counter):04d}"


def cli(settings: Settings, *args: str, timeout: float = 120,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GENOMEBUS_DATA_DIR": str(settings.data_dir), "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "genomebus", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


async def topic_count(settings: Settings, context: str) -> int:
    ends = await kafka.end_offsets(settings, [settings.topic(context)])
    return sum(ends.values())


async def dead_letters(settings: Settings) -> list[dict[str, Any]]:
    out = []
    async for record in kafka.read_log(settings, [settings.topic("deadletter")]):
        body = json.loads(record.value)
        body["original"] = base64.b64decode(body["original_base64"])
        out.append(body)
    return out
