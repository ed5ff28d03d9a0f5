"""The gateway application: routers per API, problem documents, tracing, resources from the lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from genomebus.gateway import problems
from genomebus.gateway.routers import datasets, service_info
from genomebus.infra import db, projection, telemetry
from genomebus.infra.settings import Settings
from genomebus.infra.readmodels import READ_MODELS as PROJECTIONS


def create_app(settings: Settings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        telemetry.setup(settings, "gateway")
        app.state.settings = settings
        app.state.pool = await db.connect(settings, max_size=20)
        async with app.state.pool.acquire() as conn:
            for p in PROJECTIONS.values():  # the gateway may start before the projector
                await projection.ensure_schema(conn, p, p.live_schema())
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(
        title="genomebus gateway",
        version=service_info.VERSION,
        description="GA4GH APIs of a national genomics node, served from projections of the event log.",
        lifespan=lifespan,
    )
    problems.install(app)
    app.include_router(service_info.router)
    app.include_router(datasets.router)
    FastAPIInstrumentor.instrument_app(app, excluded_urls="health")
    return app


