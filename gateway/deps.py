"""Dependencies of the routers, as ``Annotated`` aliases; resources are opened in the app's lifespan."""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from genomebus.gateway.enforcement import Enforcer
from genomebus.infra.archive_store import Archive
from genomebus.infra.identity import Principal
from genomebus.infra.kafka import Publisher
from genomebus.infra.settings import Settings
from genomebus.infra.visas import VisaKeys
from genomebus.schemas.access import AsRoles


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _pool(request: Request) -> asyncpg.Pool:
    return request.app.state.pool


def _publisher(request: Request) -> Publisher:
    return request.app.state.publisher


def _enforcer(request: Request) -> Enforcer:
    return request.app.state.enforcer


def _visa_keys(request: Request) -> VisaKeys:
    return request.app.state.visa_keys


def _archive(request: Request) -> Archive:
    return request.app.state.archive


async def _principal(request: Request) -> Principal:
    """The verified caller: 401 (with ``WWW-Authenticate``) without a valid bearer token."""
    return await request.app.state.enforcer.principal(request)


SettingsDep = Annotated[Settings, Depends(_settings)]
PoolDep = Annotated[asyncpg.Pool, Depends(_pool)]
PublisherDep = Annotated[Publisher, Depends(_publisher)]
EnforcerDep = Annotated[Enforcer, Depends(_enforcer)]
VisaKeysDep = Annotated[VisaKeys, Depends(_visa_keys)]
ArchiveDep = Annotated[Archive, Depends(_archive)]
PrincipalDep = Annotated[Principal, Depends(_principal)]


def as_roles(principal: Principal) -> AsRoles:
    """The roles a command carries: the verified caller's at the moment of asking."""
    return AsRoles(researcher=principal.researcher, steward=principal.steward, dacs=tuple(sorted(principal.dacs)),
                   output_checker=principal.output_checker, operator=principal.operator)
