"""Validators for the Beacon v2 framework and default-model JSON Schemas of ``specs/beacon-v2``.

The schemas ``$ref`` one another by relative path and by their published URLs
(``https://raw.githubusercontent.com/ga4gh-beacon/beacon-v2/main/...``); a ``referencing``
registry resolves both to the files here, so nothing is fetched. The genomic variation model
refers to VRS 1.3 for ``location`` (and offers VRS variations beside its ``LegacyVariation``);
VRS is not in the repository, so its ``Location`` (``SequenceLocation`` with a
``SequenceInterval`` of ``Number``s, or a ``ChromosomeLocation``) is written out below from the
VRS 1.3 schema, and its molecular and systemic variations match nothing: this node answers
legacy variations only, and the ``oneOf`` then checks exactly that.

``errors(path, document)`` lists what in ``document`` does not match the schema at ``path``
(relative to ``specs/beacon-v2``); ``response_errors(body)`` picks the response schema a Beacon
answer claims by its shape and ``meta.returnedGranularity`` (the endpoints' ``oneOf`` of boolean,
count and resultsets responses cannot hold: a count response is also a boolean one), and checks
Beacon 2.x's count members, which the 2.0 schemas let through as extra members, against their
2.x definitions. ``record_errors(entry_type, record)`` checks a record against its default schema.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.data import REPO

SPECS = REPO / "specs" / "beacon-v2"
PUBLISHED = "https://raw.githubusercontent.com/ga4gh-beacon/beacon-v2/main/"
VRS = "https://w3id.org/ga4gh/schema/vrs/1.3/vrs.json"
MODEL = "models/json/beacon-v2-default-model"

_NUMBER = {"type": "object", "required": ["type", "value"],
           "properties": {"type": {"const": "Number"}, "value": {"type": "integer"}}}
_RANGE = {"type": "object", "required": ["type"], "properties": {
    "type": {"enum": ["IndefiniteRange", "DefiniteRange"]}, "value": {"type": "number"},
    "comparator": {"enum": ["<=", ">="]}, "min": {"type": "number"}, "max": {"type": "number"}}}
VRS_SUBSET = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "definitions": {
        "Location": {"oneOf": [{"$ref": "#/definitions/SequenceLocation"},
                               {"$ref": "#/definitions/ChromosomeLocation"}]},
        "SequenceLocation": {
            "type": "object", "additionalProperties": False, "required": ["type", "sequence_id", "interval"],
            "properties": {"_id": {"type": "string"}, "type": {"const": "SequenceLocation"},
                           "sequence_id": {"type": "string", "pattern": "^\\w[^:]*:.+$"},
                           "interval": {"$ref": "#/definitions/SequenceInterval"}}},
        "SequenceInterval": {
            "type": "object", "additionalProperties": False, "required": ["type", "start", "end"],
            "properties": {"type": {"const": "SequenceInterval"},
                           "start": {"oneOf": [_NUMBER, _RANGE]}, "end": {"oneOf": [_NUMBER, _RANGE]}}},
        "ChromosomeLocation": {
            "type": "object", "required": ["type", "species_id", "chr", "interval"],
            "properties": {"type": {"const": "ChromosomeLocation"}, "species_id": {"type": "string"},
                           "chr": {"type": "string"}, "interval": {"type": "object"}}},
        "MolecularVariation": {"not": {}},
        "SystemicVariation": {"not": {}},
    },
}
COUNT_MEMBERS = {
    "type": "object",
    "properties": {
        "countAdjustedTo": {"type": "array", "minItems": 1, "items": {"type": ["integer", "string"]}},
        "countPrecision": {"enum": ["exact", "imprecise", "rounded"]},
    },
}
"""Beacon 2.x's ``countAdjustedTo`` and ``countPrecision`` (in ``responseSummary`` and each result set)."""

RESPONSES = {"boolean": "framework/json/responses/beaconBooleanResponse.json",
             "count": "framework/json/responses/beaconCountResponse.json",
             "record": "framework/json/responses/beaconResultsetsResponse.json",
             "collections": "framework/json/responses/beaconCollectionsResponse.json",
             "error": "framework/json/responses/beaconErrorResponse.json",
             "info": "framework/json/responses/beaconInfoResponse.json",
             "configuration": "framework/json/responses/beaconConfigurationResponse.json",
             "map": "framework/json/responses/beaconMapResponse.json",
             "entry_types": "framework/json/responses/beaconEntryTypesResponse.json",
             "filtering_terms": "framework/json/responses/beaconFilteringTermsResponse.json",
             "service-info": "framework/json/responses/ga4gh-service-info-1-0-0-schema.json"}
RECORDS = {"g_variants": "genomicVariations", "individuals": "individuals", "biosamples": "biosamples",
           "runs": "runs", "analyses": "analyses", "datasets": "datasets"}


def _retrieve(uri: str) -> Resource:
    if uri == VRS:
        return DRAFT202012.create_resource(VRS_SUBSET)
    if uri.startswith(PUBLISHED):
        path = SPECS / uri.removeprefix(PUBLISHED)
    elif uri.startswith("file://"):
        path = Path(uri.removeprefix("file://"))
    else:
        raise LookupError(f"the Beacon schemas refer to {uri}, which is not in the repository")
    return DRAFT202012.create_resource(_load(path))


@functools.cache
def _load(path: Path) -> Any:
    return json.loads(path.read_text())


_REGISTRY: Registry = Registry(retrieve=_retrieve)  # type: ignore[call-arg]


@functools.cache
def validator(path: str) -> Draft202012Validator:
    """A validator for the schema at ``path`` (relative to ``specs/beacon-v2``)."""
    file = (SPECS / path).resolve()
    root = {**_load(file), "$id": file.as_uri()}
    return Draft202012Validator(root, registry=_REGISTRY, format_checker=Draft202012Validator.FORMAT_CHECKER)


def errors(path: str, document: Any) -> list[str]:
    """What in ``document`` does not match the schema at ``path`` (empty when it matches)."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in validator(path).iter_errors(document)]


def _count_member_errors(where: str, section: Any) -> list[str]:
    return [f"{where}/{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in Draft202012Validator(COUNT_MEMBERS).iter_errors(section)]


def response_kind(body: dict[str, Any]) -> str:
    """Which response a Beacon answer is: by ``response.collections``, else by its returned granularity."""
    if isinstance(body.get("response"), dict) and "collections" in body["response"]:
        return "collections"
    return body["meta"]["returnedGranularity"]


def response_errors(body: dict[str, Any]) -> list[str]:
    """What in a Beacon query answer does not match its response schema, or 2.x's count members."""
    kind = response_kind(body)
    found = errors(RESPONSES[kind], body)
    found += _count_member_errors("responseSummary", body.get("responseSummary", {}))
    result_sets = (body.get("response") or {}).get("resultSets") or []
    for n, result_set in enumerate(result_sets):
        found += _count_member_errors(f"response/resultSets/{n}", result_set)
    return found


def record_errors(entry_type: str, record: Any) -> list[str]:
    """What in ``record`` does not match the default model's schema of ``entry_type``."""
    return errors(f"{MODEL}/{RECORDS[entry_type]}/defaultSchema.json", record)
