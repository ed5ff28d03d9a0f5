"""GA4GH service-info 1.0 and the operators' health endpoint."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from genomebus.gateway.deps import PoolDep, SettingsDep
from genomebus.schemas.export import contract_version

router = APIRouter(tags=["service-info"])

VERSION = contract_version()
STARTED_AT = datetime.now().astimezone()


class ServiceType(BaseModel):
    group: str
    artifact: str
    version: str


class Organization(BaseModel):
    name: str
    url: str


class Service(BaseModel):
    id: str
    name: str
    type: ServiceType
    description: str | None = None
    organization: Organization
    contactUrl: str | None = None  # noqa: N815 - field names are the spec's
    documentationUrl: str | None = None  # noqa: N815
    createdAt: datetime | None = None  # noqa: N815
    updatedAt: datetime | None = None  # noqa: N815
    environment: str | None = None
    version: str


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "unavailable"]


@router.get("/service-info", response_model=Service, response_model_exclude_none=True)
async def service_info(settings: SettingsDep) -> Service:
    return Service(
        id=f"org.genomebus.{settings.node_id.lower()}",
        name=f"{settings.node_name} ({settings.node_id})",
        type=ServiceType(group="org.genomebus", artifact="node", version=VERSION),
        description="National genomics node: data reception, storage and GA4GH interfaces, access management, "
                    "discovery and processing, built on an event log.",
        organization=Organization(name=settings.organization_name, url=settings.organization_url),
        contactUrl=settings.contact_url,
        documentationUrl=settings.documentation_url,
        createdAt=STARTED_AT,
        updatedAt=STARTED_AT,
        environment="production" if settings.profile == "production" else "development",
        version=VERSION,
    )


@router.get("/health", response_model=Health,
            responses={503: {"model": Health, "description": "The database cannot be reached"}})
async def health(pool: PoolDep) -> JSONResponse:
    try:
        async with pool.acquire(timeout=2) as conn:
            await conn.fetchval("SELECT 1")
    except Exception:  # noqa: BLE001 - unhealthy, whatever the cause
        return JSONResponse({"status": "degraded", "database": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})
