"""Read models: each projection's tables, version and the queries others run on them, in one place.

The projector (``genomebus.consumers.projector``) folds events into them; the
gateway, deciders and workers read them through each module's query functions.
"""

from __future__ import annotations

from genomebus.infra.projection import Projection
from genomebus.infra.readmodels.datasets import DatasetsProjection
from genomebus.infra.readmodels.files import FilesProjection

READ_MODELS: dict[str, Projection] = {p.name: p for p in (DatasetsProjection(), FilesProjection())}
"""Every read model by name: what the projector runs, replay rebuilds and migrations create."""
