"""Dependencies of the routers, as ``Annotated`` aliases; resources are opened in the app's lifespan."""

from __future__ import annotations

from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from genomebus.infra.settings import Settings


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _pool(request: Request) -> asyncpg.Pool:
    return request.app.state.pool


SettingsDep = Annotated[Settings, Depends(_settings)]
PoolDep = Annotated[asyncpg.Pool, Depends(_pool)]
