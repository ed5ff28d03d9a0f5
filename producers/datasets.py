"""Dataset lifecycle for data stewards: register, release (only when every file is archived), withdraw."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import asyncpg
from pydantic import ValidationError

from genomebus.infra.kafka import Published, Publisher, end_offsets
from genomebus.infra.projection import Projection, wait_for_position
from genomebus.infra.settings import Settings
from genomebus.schemas.envelope import new_envelope
from genomebus.schemas.reception import DatasetRegistered, DatasetReleased, DatasetWithdrawn


class InvalidDataset(ValueError):
    """The description cannot be published; ``errors`` has one line per field."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def describe_dataset(**fields: object) -> DatasetRegistered:
    """Build the event payload or raise ``InvalidDataset`` naming each bad field."""
    try:
        return DatasetRegistered(**fields)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise InvalidDataset([f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]) from exc


async def register_dataset(settings: Settings, dataset: DatasetRegistered, *, actor: str,
                           publisher: Publisher | None = None) -> Published:
    """Publish ``dataset.registered``; returns where it landed, for read-your-writes."""
    envelope = new_envelope(dataset, source=settings.source, actor=actor)
    if publisher is not None:
        return await publisher.publish(envelope)
    async with Publisher(settings) as own:
        return await own.publish(envelope)


# -- release and withdrawal --------------------------------------------------------------------


@dataclass(frozen=True)
class Missing:
    """A file that stops a release, and why."""

    file: str
    state: str
    detail: str


@dataclass(frozen=True)
class ReleaseDecision:
    allowed: bool
    reason: str
    accessions: tuple[str, ...] = ()
    missing: tuple[Missing, ...] = ()


def decide_release(dataset_state: str | None, files: list[dict[str, Any]]) -> ReleaseDecision:
    """A dataset is released only when it is registered and every one of its files is archived."""
    if dataset_state is None:
        return ReleaseDecision(False, "the dataset is not registered on this node")
    if dataset_state != "registered":
        return ReleaseDecision(False, f"the dataset is {dataset_state}, not registered")
    if not files:
        return ReleaseDecision(False, "the dataset has no files yet")
    missing = tuple(
        Missing(f["alias"] or f["filename"], f["state"], "; ".join(r["code"] for r in f["qc_reasons"] or ()) or
                {"uploaded": "waiting for QC", "qc_passed": "waiting for the archive"}.get(f["state"], ""))
        for f in files if f["state"] != "archived"
    )
    if missing:
        return ReleaseDecision(False, f"{len(missing)} of {len(files)} files are not archived", missing=missing)
    return ReleaseDecision(True, "every file is archived", accessions=tuple(sorted(f["accession"] for f in files)))


async def caught_up(settings: Settings, pool: asyncpg.Pool, *projections: type[Projection]) -> None:
    """Wait until the projections have applied everything on the reception topic now."""
    ends = await end_offsets(settings, [settings.topic("reception")])
    for projection in projections:
        for tp, end in ends.items():
            if end > 0:
                await wait_for_position(pool, projection, tp.topic, tp.partition, end - 1,
                                        settings.read_your_writes_timeout_s)


async def release_dataset(settings: Settings, pool: asyncpg.Pool, dataset_id: str, *, actor: str) -> tuple[
        ReleaseDecision, Published | None]:
    """Publish ``dataset.released`` if ``decide_release`` allows it; return the decision either way."""
    from genomebus.infra.readmodels.datasets import DatasetsProjection
    from genomebus.infra.readmodels.files import FilesProjection

    await caught_up(settings, pool, DatasetsProjection, FilesProjection)
    async with pool.acquire() as conn:
        state = await conn.fetchval(
            f"SELECT state FROM {DatasetsProjection.live_schema()}.datasets WHERE dataset_id = $1", dataset_id)
        rows = await conn.fetch(
            f"SELECT filename, alias, state, accession, qc_reasons FROM {FilesProjection.live_schema()}.files "
            "WHERE dataset_id = $1 ORDER BY filename", dataset_id)
    files = [{**dict(r), "qc_reasons": json.loads(r["qc_reasons"]) if r["qc_reasons"] else None} for r in rows]
    decision = decide_release(state, files)
    if not decision.allowed:
        return decision, None
    event = new_envelope(DatasetReleased(dataset_id=dataset_id, files=decision.accessions), source=settings.source,
                         actor=actor)
    async with Publisher(settings) as publisher:
        published = await publisher.publish(event)
    await projected(settings, pool, DatasetsProjection, published)
    return decision, published


async def projected(settings: Settings, pool: asyncpg.Pool, projection: type[Projection], published: Published) -> float:
    """Read-your-writes: return, with the seconds waited, once ``projection`` shows the event just published."""
    return await wait_for_position(pool, projection, published.topic, published.partition, published.offset,
                                   settings.read_your_writes_timeout_s)


async def withdraw_dataset(settings: Settings, pool: asyncpg.Pool, dataset_id: str, *, reason: str,
                           actor: str) -> Published:
    """Publish ``dataset.withdrawn``: the gateway stops serving the dataset; its events stay."""
    from genomebus.infra.readmodels.datasets import DatasetsProjection

    await caught_up(settings, pool, DatasetsProjection)
    async with pool.acquire() as conn:
        state = await conn.fetchval(
            f"SELECT state FROM {DatasetsProjection.live_schema()}.datasets WHERE dataset_id = $1", dataset_id)
    if state is None:
        raise InvalidDataset([f"dataset_id: {dataset_id} is not registered on this node"])
    if state == "withdrawn":
        raise InvalidDataset([f"dataset_id: {dataset_id} is already withdrawn"])
    try:
        event = new_envelope(DatasetWithdrawn(dataset_id=dataset_id, reason=reason), source=settings.source,
                             actor=actor)
    except ValidationError as exc:
        raise InvalidDataset([f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]) from exc
    async with Publisher(settings) as publisher:
        published = await publisher.publish(event)
    await projected(settings, pool, DatasetsProjection, published)
    return published
