"""The gateway application: routers per API, problem documents, tracing, resources from the lifespan."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from genomebus.gateway import problems
from genomebus.gateway.enforcement import Enforcer
from genomebus.gateway.routers import (
    access,
    airlock,
    beacon,
    beacon_federated,
    catalogue,
    commands,
    data,
    datasets,
    drs,
    htsget,
    passports,
    records,
    service_info,
    tes,
    trs,
    wes,
)
from genomebus.infra import db, s3, telemetry
from genomebus.infra.archive_store import Archive
from genomebus.infra.identity import Verifier
from genomebus.infra.kafka import Publisher
from genomebus.infra.keys import load_archive_keys
from genomebus.infra.readmodels import missing_schemas
from genomebus.infra.settings import Settings
from genomebus.infra.visas import VisaKeys
from genomebus.schemas.envelope import JOURNEY


class ReadModelsMissing(RuntimeError):
    """The database lacks the read-model versions this gateway serves from."""


async def check_read_models(pool: object) -> None:
    """Refuse to serve from a database that was not migrated to this version's read models."""
    async with pool.acquire() as conn:  # type: ignore[attr-defined]
        missing = await missing_schemas(conn)
    if missing:
        raise ReadModelsMissing(f"the database has no read model {', '.join(missing)}: run `genomebus migrate` "
                                "(and let the projector build them) before starting this gateway")


def create_app(settings: Settings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        telemetry.setup(settings, "gateway")
        app.state.settings = settings
        async with contextlib.AsyncExitStack() as stack:
            app.state.pool = await db.connect(settings, max_size=20)
            stack.push_async_callback(app.state.pool.close)
            await check_read_models(app.state.pool)
            # The gateway changes nothing itself: it publishes commands, and audit events before answering.
            # No linger: a request waits for its audit event's acknowledgement; concurrent ones still batch.
            app.state.publisher = await stack.enter_async_context(Publisher(settings, linger_ms=0))
            app.state.visa_keys = VisaKeys.load(settings.visa_keys_path)
            app.state.verifier = Verifier(settings, own_keys=app.state.visa_keys)
            stack.push_async_callback(app.state.verifier.aclose)
            app.state.enforcer = Enforcer(settings, app.state.verifier, app.state.pool, app.state.publisher,
                                         visa_keys=app.state.visa_keys)
            # Data reads decrypt from the archive here: the gateway holds the archive key (read-only).
            s3_client = await stack.enter_async_context(s3.client(settings))
            app.state.archive = Archive(s3_client, load_archive_keys(settings)[0])
            yield

    app = FastAPIOffline(  # Swagger UI and ReDoc from the package, not a CDN: nodes may have no internet
        title="genomebus gateway",
        version=service_info.VERSION,
        description="GA4GH APIs of a national genomics node, served from projections of the event log.",
        lifespan=lifespan,
    )
    problems.install(app)
    app.include_router(service_info.router)
    app.include_router(datasets.router)
    app.include_router(commands.router)
    app.include_router(records.router)
    app.include_router(access.router)
    app.include_router(passports.router)
    app.include_router(drs.router)
    app.include_router(htsget.router)
    app.include_router(data.router)
    app.include_router(beacon_federated.router)  # before beacon: /beacon/v2/federated/... is its own
    app.include_router(beacon.router)
    app.include_router(catalogue.router)
    app.include_router(trs.router)
    app.include_router(tes.router)
    app.include_router(wes.router)
    app.include_router(airlock.router)

    @app.middleware("http")
    async def journey(request: Any, call_next: Any) -> Any:
        """The caller's W3C trace id is the correlation id of every event this request publishes (commands,
        audit events), so a researcher's journey is one trace on the log as in the spans."""
        span = trace.get_current_span().get_span_context()
        token = JOURNEY.set(uuid.UUID(int=span.trace_id) if span.is_valid else None)
        try:
            return await call_next(request)
        finally:
            JOURNEY.reset(token)

    FastAPIInstrumentor.instrument_app(app, excluded_urls="health")  # outermost: the trace is current above
    return app


