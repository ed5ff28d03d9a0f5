"""Datasets and their files (metadata only; bytes come through DRS and htsget).

Individual-level metadata (individuals, biosamples) is never served here: this
is a public description of what the node holds, so only counts are shown.
A withdrawn dataset answers 410 Gone; its events stay on the log.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from genomebus.gateway.deps import PoolDep
from genomebus.infra.readmodels import datasets, files
from genomebus.gateway.problems import Problem, problem_responses
from genomebus.schemas.base import PID_PATTERN

router = APIRouter(tags=["datasets"])

# PostgreSQL's OFFSET is a bigint; a page this far is already past any node's datasets.
MAX_OFFSET = 2**31 - 1
UUID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# A file is named by its id or, once archived, by its accession; documented so clients know both.
FILE_ID_PATTERN = rf"^(?:{UUID_PATTERN}|{PID_PATTERN.strip('^$')})$"


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


@router.get("/datasets", response_model=DatasetPage, responses=problem_responses(503))
async def list_datasets(pool: PoolDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
                        state: Annotated[Literal["registered", "released"] | None, Query()] = None) -> DatasetPage:
    """Datasets on this node, withdrawn ones excepted."""
    async with pool.acquire() as conn:
        rows, total = await datasets.list_datasets(conn, limit=limit, offset=offset, state=state)
    return DatasetPage(datasets=[Dataset(**r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/datasets/{dataset_id}", response_model=DatasetDetail, responses=problem_responses(400, 404, 410, 503))
async def get_dataset(pool: PoolDep, dataset_id: Annotated[str, Path(
        max_length=100, description="1+MG dataset id", json_schema_extra={"pattern": PID_PATTERN})]) -> DatasetDetail:
    # The pattern is checked here rather than by `Path(pattern=)` to answer with its own problem type.
    if not re.fullmatch(PID_PATTERN, dataset_id):
        raise Problem(400, "invalid-dataset-id", f"{dataset_id!r} is not a 1+MG dataset id ({PID_PATTERN})")
    async with pool.acquire() as conn:
        row = await datasets.get_dataset(conn, dataset_id)
        if row is None:
            raise Problem(404, "dataset-not-found", f"no dataset {dataset_id} on this node")
        if row["state"] == "withdrawn":
            raise Problem(410, "dataset-withdrawn", f"dataset {dataset_id} was withdrawn and is no longer served")
        members = await files.files_of(conn, dataset_id)
        history = await datasets.dataset_history(conn, dataset_id)
    return DatasetDetail(**row, files=[_summary(f) for f in members], history=[HistoryEvent(**vars(h)) for h in history])


@router.get("/files/{file_id}", response_model=FileDetail, tags=["files"],
            responses=problem_responses(400, 404, 410, 503))
async def get_file(pool: PoolDep, file_id: Annotated[str, Path(
        max_length=100, description="File id (UUID) or accession", json_schema_extra={"pattern": FILE_ID_PATTERN})]
                   ) -> FileDetail:
    if not re.fullmatch(FILE_ID_PATTERN, file_id):
        raise Problem(400, "invalid-file-id", f"{file_id!r} is neither a file UUID nor an accession")
    lookup: dict[str, Any] = ({"accession": file_id} if re.fullmatch(PID_PATTERN, file_id)
                              else {"file_id": UUID(file_id)})
    async with pool.acquire() as conn:
        row = await files.get_file(conn, **lookup)
        if row is None:
            raise Problem(404, "file-not-found", f"no file {file_id} on this node")
        if row["dataset_state"] == "withdrawn":
            raise Problem(410, "dataset-withdrawn", f"file {file_id} belongs to a withdrawn dataset")
        history = await files.file_history(conn, row["file_id"])
    return FileDetail(
        **_summary(row).model_dump(), dataset_id=row["dataset_id"], drs_id=row["drs_id"],
        checksums=[{"type": "sha-256", "checksum": row["sha256"]}, {"type": "md5", "checksum": row["md5"]}],
        encrypted_size=row["encrypted_size"], qc_metrics=row["qc_metrics"],
        qc_warnings=row["qc_warnings"] or [], qc_reasons=row["qc_reasons"] or [],
        qc_message=row["qc_message"], uploaded_at=row["uploaded_at"], updated_at=row["updated_at"],
        history=[HistoryEvent(**vars(h)) for h in history],
    )


def _summary(row: dict[str, Any]) -> FileSummary:
    return FileSummary(id=str(row["file_id"]), accession=row["accession"], filename=row["filename"],
                       alias=row["alias"], format=row["format"], size=row["size"], state=row["state"])
