"""Data Discovery events (topic ``genomebus.discovery``): what the indexer made findable, and when it stopped.

Published by the indexer (``consumers/indexer.py``), the one place that decides what discovery
holds. Keyed by the dataset. Counts are the index's own (exact); they are facts for operators and
the catalogue, never served to callers without the small-count rules of the Beacon.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

from genomebus.schemas.base import EventModel
from genomebus.schemas.reception import Accession, DatasetId, Reason


class DatasetIndexed(EventModel):
    """A released dataset's variants, individuals and biosamples are in the discovery index."""

    context = "discovery"
    type: Literal["dataset.indexed"] = "dataset.indexed"
    dataset_id: DatasetId
    release_event_id: UUID = Field(description="The `dataset.released` event indexed (a redelivery is not indexed twice)")
    variant_files: tuple[Accession, ...] = Field((), description="The VCF/BCF files whose variants were loaded")
    other_files: tuple[Accession, ...] = Field((), description="Files indexed as runs/analyses only (BAM, CRAM, ...)")
    variants: Annotated[int, Field(ge=0, description="Distinct (position, ref, alt) alleles in the index")]
    samples: Annotated[int, Field(ge=0, description="Genotyped samples (VCF columns) across the variant files")]
    individuals: Annotated[int, Field(ge=0)]
    biosamples: Annotated[int, Field(ge=0)]
    assembly: str | None = Field(None, description="The reference assembly the variant files name (e.g. GRCh38)")


class DatasetUnindexed(EventModel):
    """The dataset left discovery (it was withdrawn): no Beacon answer or catalogue entry names it any more."""

    context = "discovery"
    type: Literal["dataset.unindexed"] = "dataset.unindexed"
    dataset_id: DatasetId
    reason: Annotated[str, Field(min_length=1)]


class DatasetIndexFailed(EventModel):
    """A released dataset could not be indexed; ``reasons`` say which file and why (machine-readable codes)."""

    context = "discovery"
    type: Literal["dataset.index_failed"] = "dataset.index_failed"
    dataset_id: DatasetId
    release_event_id: UUID
    reasons: Annotated[tuple[Reason, ...], Field(min_length=1)]


DISCOVERY_EVENTS = (DatasetIndexed, DatasetUnindexed, DatasetIndexFailed)
