"""The GDI / HealthDCAT-AP profile as this node fills it: which description field gives which property.

The catalogue (``genomebus.infra.catalogue``) writes every released dataset as a ``dcat:Dataset``
checked against the GDI metadata shapes (``specs/gdi-metadata``). Some of its properties the
node states itself: ``dct:identifier`` (the dataset id, a 1+MG PID as the shapes' pattern wants),
``dct:accessRights`` (from ``access_rights``), ``adms:status``, the distributions (DRS, Beacon),
the access services and the counts of the discovery index. The others come from the steward's
description, and ``missing_metadata`` names each one it lacks:

- ``metadata_incomplete``: the shapes require it (``sh:minCount 1``), so the entry fails them;
- ``metadata_recommended``: the profile asks for it (the submission table's "recommended", or its
  "mandatory" that the shapes do not enforce yet: the contact point of the publisher, the HDAB).

A dataset is registered all the same: the warnings ride on ``dataset.registered`` and
``dataset.updated`` so the steward learns what to add. Pure: the reception decider calls it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from genomebus.schemas.reception import DatasetDescription, MetadataWarning

Need = Literal["mandatory", "recommended"]


@dataclass(frozen=True)
class ProfileProperty:
    """A property of the profile filled from one field of the description."""

    curie: str
    field: str
    need: Need
    what: str
    """What to write, in a steward's words (the end of the warning)."""
    present: Callable[[DatasetDescription], bool]


def _text(value: str | None) -> bool:
    return bool(value and value.strip())


PROFILE: tuple[ProfileProperty, ...] = (
    ProfileProperty("dct:title", "title", "mandatory", "a title", lambda d: _text(d.title)),
    ProfileProperty("dct:description", "description", "mandatory", "a free-text account of the dataset",
                    lambda d: _text(d.description)),
    ProfileProperty("dct:creator", "creators", "mandatory",
                    'who produced the data, e.g. [{"name": "Folkhälsan Research Center"}]', lambda d: bool(d.creators)),
    ProfileProperty("dct:publisher", "publisher", "mandatory", "the organisation that makes the dataset available",
                    lambda d: _text(d.publisher)),
    ProfileProperty("dcatap:applicableLegislation", "applicable_legislation", "mandatory",
                    "the ELI of the legislation that applies; health data names the EHDS, "
                    '["http://data.europa.eu/eli/reg/2025/327/oj"]', lambda d: bool(d.applicable_legislation)),
    ProfileProperty("dcat:theme", "themes", "mandatory", 'EU data themes; health data is ["HEAL"]',
                    lambda d: bool(d.themes)),
    ProfileProperty("healthdcatap:healthCategory", "health_categories", "mandatory",
                    'one or more of "human_genetic", "human_epigenomic", "human_genomic"',
                    lambda d: bool(d.health_categories)),
    ProfileProperty("dcat:contactPoint", "contact_point", "recommended",
                    'who answers questions about it, {"name": ..., "email": ...}', lambda d: d.contact_point is not None),
    ProfileProperty("dcat:keyword", "keywords", "recommended", "keywords for discovery", lambda d: bool(d.keywords)),
    ProfileProperty("healthdcatap:hdab", "hdab", "recommended",
                    'the Health Data Access Body (until there is one, the organisation that controls the data), '
                    '{"name": ..., "contact_point": {...}}', lambda d: d.hdab is not None),
)
"""Every property the description gives, in the order the submission table lists the dataset's."""

MANDATORY = frozenset(p.curie for p in PROFILE if p.need == "mandatory")


def missing_metadata(description: DatasetDescription) -> tuple[MetadataWarning, ...]:
    """A warning per catalogue property the description lacks, mandatory ones first, each naming property and field."""
    missing = [p for p in PROFILE if not p.present(description)]
    missing.sort(key=lambda p: p.need != "mandatory")
    return tuple(_warning(p) for p in missing)


def _warning(p: ProfileProperty) -> MetadataWarning:
    if p.need == "mandatory":
        return MetadataWarning(code="metadata_incomplete", property=p.curie, field=p.field,
                               message=f"{p.curie} ({p.field}) is missing: the GDI catalogue requires it; "
                                       f"add {p.what}")
    return MetadataWarning(code="metadata_recommended", property=p.curie, field=p.field,
                           message=f"{p.curie} ({p.field}) is missing: the GDI catalogue recommends it; "
                                   f"add {p.what}")
