"""Read models: each projection's tables, version and the queries others run on them, in one place.

The projector (``genomebus.consumers.projector``) folds events into them; the
gateway, deciders and workers read them through each module's query functions.
"""

from __future__ import annotations

import asyncpg

from genomebus.infra.projection import Projection, ensure_schema
from genomebus.infra.readmodels.access import AccessProjection
from genomebus.infra.readmodels.airlock import AirlockProjection
from genomebus.infra.readmodels.datasets import DatasetsProjection
from genomebus.infra.readmodels.files import FilesProjection
from genomebus.infra.readmodels.tasks import TasksProjection
from genomebus.infra.readmodels.tools import ToolsProjection
from genomebus.infra.readmodels.workflows import WorkflowsProjection

READ_MODELS: dict[str, Projection] = {p.name: p for p in (DatasetsProjection(), FilesProjection(),
                                                               AccessProjection(), ToolsProjection(),
                                                               TasksProjection(), AirlockProjection(),
                                                               WorkflowsProjection())}
"""Every read model by name: what the projector runs, replay rebuilds and migrations create."""


async def create_all(conn: asyncpg.Connection) -> list[str]:
    """Create every read model's live schema that is missing (run by migrations); return those created."""
    missing = await missing_schemas(conn)
    for model in READ_MODELS.values():
        if model.live_schema() in missing:
            await ensure_schema(conn, model, model.live_schema())
    return missing


async def missing_schemas(conn: asyncpg.Connection) -> list[str]:
    """The live schemas of this version's read models that the database does not have."""
    wanted = [m.live_schema() for m in READ_MODELS.values()]
    present = {r[0] for r in await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname = ANY($1)", wanted)}
    return [w for w in wanted if w not in present]
