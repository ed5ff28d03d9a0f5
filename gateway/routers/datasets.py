"""Datasets and their files (metadata only; bytes come through DRS and htsget).

Individual-level metadata (individuals, biosamples) is never served here: this
is a public description of what the node holds, so only counts are shown.
A withdrawn dataset answers 410 Gone; its events stay on the log.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from consumers.projector import DatasetsProjection, FilesProjection
from gateway.deps import PoolDep
from gateway.problems import Problem
from schemas.base import PID_PATTERN

router = APIRouter(tags=["datasets"])
DATASETS = DatasetsProjection.live_schema()
FILES = FilesProjection.live_schema()


class HistoryEvent(BaseModel):
    event_id: str
    type: str
    time: datetime
    actor: str


class FileSummary(BaseModel):
    id: str
    accession: str | None
    filename: str
    alias: str | None
    format: str
    size: int
    state: str


class Dataset(BaseModel):
    id: str
    title: str
    description: str
    data_use: list[str]
    keywords: list[str]
    publisher: str | None
    landing_page: str | None
    access_rights: str
    state: Literal["registered", "released", "withdrawn"]
    individuals: int
    biosamples: int
    registered_at: datetime
    released_at: datetime | None
    updated_at: datetime


class DatasetDetail(Dataset):
    files: list[FileSummary]
    history: list[HistoryEvent]


class DatasetPage(BaseModel):
    datasets: list[Dataset]
    total: int
    limit: int
    offset: int


class QcReason(BaseModel):
    code: str
    message: str


class FileDetail(FileSummary):
    dataset_id: str
    drs_id: str | None
    checksums: list[dict[str, str]]
    encrypted_size: int | None
    qc_metrics: dict[str, Any] | None
    qc_warnings: list[QcReason]
    qc_reasons: list[QcReason]
    qc_message: str | None
    uploaded_at: datetime
    updated_at: datetime
    history: list[HistoryEvent]


_DATASET_COLUMNS = (
    "dataset_id AS id, title, description, data_use, keywords, publisher, landing_page, access_rights, state, "
    "jsonb_array_length(individuals) AS individuals, jsonb_array_length(biosamples) AS biosamples, "
    "registered_at, released_at, updated_at"
)


@router.get("/datasets", response_model=DatasetPage)
async def list_datasets(pool: PoolDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                        offset: Annotated[int, Query(ge=0)] = 0,
                        state: Annotated[Literal["registered", "released"] | None, Query()] = None) -> DatasetPage:
    """Datasets on this node, withdrawn ones excepted."""
    where = "state <> 'withdrawn'" + (" AND state = $3" if state else "")
    args: list[Any] = [limit, offset] + ([state] if state else [])
    async with pool.acquire() as conn:
        rows = await conn.fetch(f"SELECT {_DATASET_COLUMNS}, count(*) OVER () AS total FROM {DATASETS}.datasets "
                                f"WHERE {where} ORDER BY dataset_id LIMIT $1 OFFSET $2", *args)
    total = rows[0]["total"] if rows else 0
    return DatasetPage(datasets=[Dataset(**dict(r)) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/datasets/{dataset_id}", response_model=DatasetDetail)
async def get_dataset(pool: PoolDep, dataset_id: Annotated[str, Path(max_length=100)]) -> DatasetDetail:
    if not re.fullmatch(PID_PATTERN, dataset_id):
        raise Problem(400, "invalid-dataset-id", f"{dataset_id!r} is not a 1+MG dataset id ({PID_PATTERN})")
    async with pool.acquire() as conn:
        row = await conn.fetchrow(f"SELECT {_DATASET_COLUMNS} FROM {DATASETS}.datasets WHERE dataset_id = $1",
                                  dataset_id)
        if row is None:
            raise Problem(404, "dataset-not-found", f"no dataset {dataset_id} on this node")
        if row["state"] == "withdrawn":
            raise Problem(410, "dataset-withdrawn", f"dataset {dataset_id} was withdrawn and is no longer served")
        files = await conn.fetch(
            f"SELECT file_id::text AS id, accession, filename, alias, format, size, state FROM {FILES}.files "
            "WHERE dataset_id = $1 ORDER BY filename", dataset_id)
        history = await _history(conn, f"{DATASETS}.dataset_events", "dataset_id", dataset_id)
    return DatasetDetail(**dict(row), files=[FileSummary(**dict(f)) for f in files], history=history)


@router.get("/files/{file_id}", response_model=FileDetail, tags=["files"])
async def get_file(pool: PoolDep, file_id: Annotated[str, Path(max_length=100,
                                                                description="File id (UUID) or accession")]
                   ) -> FileDetail:
    if re.fullmatch(PID_PATTERN, file_id):
        where, key = "accession = $1", file_id
    else:
        try:
            where, key = "file_id = $1", UUID(file_id)  # type: ignore[assignment]
        except ValueError:
            raise Problem(400, "invalid-file-id", f"{file_id!r} is neither a file UUID nor an accession") from None
    async with pool.acquire() as conn:
        row = await conn.fetchrow(f"SELECT f.*, d.state AS dataset_state FROM {FILES}.files f "
                                  f"LEFT JOIN {DATASETS}.datasets d USING (dataset_id) WHERE f.{where}", key)
        if row is None:
            raise Problem(404, "file-not-found", f"no file {file_id} on this node")
        if row["dataset_state"] == "withdrawn":
            raise Problem(410, "dataset-withdrawn", f"file {file_id} belongs to a withdrawn dataset")
        history = await _history(conn, f"{FILES}.file_events", "file_id", row["file_id"])
    return FileDetail(
        id=str(row["file_id"]), accession=row["accession"], filename=row["filename"], alias=row["alias"],
        format=row["format"], size=row["size"], state=row["state"], dataset_id=row["dataset_id"],
        drs_id=row["drs_id"],
        checksums=[{"type": "sha-256", "checksum": row["sha256"]}, {"type": "md5", "checksum": row["md5"]}],
        encrypted_size=row["encrypted_size"], qc_metrics=_json(row["qc_metrics"]),
        qc_warnings=_json(row["qc_warnings"]) or [], qc_reasons=_json(row["qc_reasons"]) or [],
        qc_message=row["qc_message"], uploaded_at=row["uploaded_at"], updated_at=row["updated_at"],
        history=history,
    )


async def _history(conn: Any, table: str, column: str, subject: Any) -> list[HistoryEvent]:
    """An aggregate's events as projected, in the order they happened."""
    rows = await conn.fetch(f"SELECT event_id::text, type, time, actor FROM {table} WHERE {column} = $1 "
                            "ORDER BY time, kafka_offset", subject)
    return [HistoryEvent(**dict(r)) for r in rows]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
