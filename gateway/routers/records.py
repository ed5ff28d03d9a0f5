"""Individual-level records of a dataset: controlled data, read only under a grant.

The public description of a dataset (``/datasets/{id}``) shows counts only; the individuals
and biosamples behind them (pseudonymised ids, sex, phenotypes, diseases, sample types) are
served here, through the enforcement point, with every read audited. ``GET`` takes a bearer
token; ``POST`` takes ``{"passports": [...]}`` as DRS does.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from genomebus.gateway.deps import EnforcerDep, PoolDep
from genomebus.gateway.problems import Problem, problem_responses
from genomebus.infra.readmodels import datasets
from genomebus.schemas.base import PID_PATTERN
from genomebus.schemas.reception import Biosample, Individual

router = APIRouter(tags=["records"])

DatasetPath = Annotated[str, Path(max_length=100, description="1+MG dataset id",
                                  json_schema_extra={"pattern": PID_PATTERN})]
_AUDITED = {"X-Audit-Event": {"description": "Id of the audit event recording this access",
                              "schema": {"type": "string", "format": "uuid"}}}


class Records(BaseModel):
    dataset_id: str
    individuals: list[Individual]
    biosamples: list[Biosample]


class PassportsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    passports: Annotated[list[Annotated[str, Field(max_length=262144)]], Field(
        min_length=1, max_length=10, description="GA4GH passports (or visas) as JWS compact strings")]


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The records, read under a grant", "headers": _AUDITED},
    **problem_responses(400, 401, 403, 404, 503)}


@router.get("/datasets/{dataset_id}/individuals", response_model=Records, responses=_RESPONSES)
async def records(request: Request, dataset_id: DatasetPath, enforcer: EnforcerDep, pool: PoolDep) -> JSONResponse:
    """The dataset's individuals and biosamples, with a bearer token whose user holds a grant for it."""
    return await _read(request, dataset_id, enforcer, pool, None)


@router.post("/datasets/{dataset_id}/individuals", response_model=Records, responses=_RESPONSES)
async def records_with_passports(request: Request, dataset_id: DatasetPath, enforcer: EnforcerDep, pool: PoolDep,
                                 body: Annotated[PassportsBody, Body()]) -> JSONResponse:
    """The same records, with passports whose visas grant the dataset (DRS style)."""
    return await _read(request, dataset_id, enforcer, pool, body.passports)


async def _read(request: Request, dataset_id: str, enforcer: Any, pool: Any, passports: list[str] | None
                ) -> JSONResponse:
    if not re.fullmatch(PID_PATTERN, dataset_id):
        raise Problem(400, "invalid-dataset-id", f"{dataset_id!r} is not a 1+MG dataset id ({PID_PATTERN})")
    allowed = await enforcer.authorize(request, dataset_id, passports=passports)
    async with pool.acquire() as conn:
        found = await datasets.dataset_records(conn, dataset_id)
    body = Records(dataset_id=dataset_id, individuals=found["individuals"] if found else [],
                   biosamples=found["biosamples"] if found else [])
    return JSONResponse(body.model_dump(mode="json"), headers=allowed.headers)
