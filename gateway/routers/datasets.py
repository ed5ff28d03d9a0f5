"""Datasets as registered by data stewards (metadata only; bytes come through DRS and htsget)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from consumers.projector import DatasetsProjection
from gateway.deps import PoolDep
from gateway.problems import Problem
from schemas.base import PID_PATTERN

router = APIRouter(prefix="/datasets", tags=["datasets"])
SCHEMA = DatasetsProjection.live_schema()


class DatasetEvent(BaseModel):
    event_id: str
    type: str
    time: datetime
    actor: str


class Dataset(BaseModel):
    id: str
    title: str
    description: str
    data_use: list[str]
    keywords: list[str]
    publisher: str | None
    landing_page: str | None
    state: str
    registered_at: datetime
    updated_at: datetime


class DatasetDetail(Dataset):
    history: list[DatasetEvent]


class DatasetPage(BaseModel):
    datasets: list[Dataset]
    total: int
    limit: int
    offset: int


def _dataset(row: dict) -> dict:
    return {**{k: v for k, v in row.items() if k != "dataset_id"}, "id": row["dataset_id"]}


@router.get("", response_model=DatasetPage)
async def list_datasets(pool: PoolDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                        offset: Annotated[int, Query(ge=0)] = 0) -> DatasetPage:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            f"SELECT *, count(*) OVER () AS total FROM {SCHEMA}.datasets ORDER BY dataset_id LIMIT $1 OFFSET $2",
            limit, offset)
        total = rows[0]["total"] if rows else await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.datasets")
    items = [Dataset(**_dataset({k: v for k, v in dict(r).items() if k != "total"})) for r in rows]
    return DatasetPage(datasets=items, total=total, limit=limit, offset=offset)


@router.get("/{dataset_id}", response_model=DatasetDetail)
async def get_dataset(pool: PoolDep, dataset_id: Annotated[str, Path(max_length=100)]) -> DatasetDetail:
    import re

    if not re.fullmatch(PID_PATTERN, dataset_id):
        raise Problem(400, "invalid-dataset-id", f"{dataset_id!r} is not a 1+MG dataset id ({PID_PATTERN})")
    async with pool.acquire() as conn:
        row = await conn.fetchrow(f"SELECT * FROM {SCHEMA}.datasets WHERE dataset_id = $1", dataset_id)
        if row is None:
            raise Problem(404, "dataset-not-found", f"no dataset {dataset_id} on this node")
        events = await conn.fetch(
            f"SELECT event_id::text, type, time, actor FROM {SCHEMA}.dataset_events WHERE dataset_id = $1 "
            "ORDER BY time, kafka_offset", dataset_id)
    return DatasetDetail(**_dataset(dict(row)), history=[DatasetEvent(**dict(e)) for e in events])
