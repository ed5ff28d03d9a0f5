"""Shared fixtures: integration tests run against one real local stack per session."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest


def make_node_dir(prefix: str) -> Path:
    """A data directory the unprivileged PostgreSQL account can reach (pytest's own tmp is 0700)."""
    base = Path(tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("GENOMEBUS_TEST_TMP", "/tmp")))
    base.chmod(0o755)
    return base


@pytest.fixture(scope="session")
def node_dir() -> Iterator[Path]:
    base = make_node_dir("genomebus-it-")
    yield base / "node"
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def stack(node_dir: Path) -> Iterator[object]:
    from genomebus.infra.settings import Settings
    from genomebus.infra.stack import start_detached, stop_stack

    settings = Settings(data_dir=node_dir, node_id="FI")
    start_detached(settings)
    yield settings
    stop_stack(node_dir)


@pytest.fixture(scope="session")
async def pool(stack: object) -> AsyncIterator[object]:
    from genomebus.infra import db

    p = await db.connect(stack, max_size=5)  # type: ignore[arg-type]
    yield p
    await p.close()


@pytest.fixture(scope="session")
async def publisher(stack: object) -> AsyncIterator[object]:
    from genomebus.infra.kafka import Publisher

    async with Publisher(stack) as pub:  # type: ignore[arg-type]
        yield pub
