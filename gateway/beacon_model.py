"""What this Beacon serves: the default model's entry types, their endpoints, and the framework documents.

The entry types are the Beacon v2 default model's, without cohorts: genomic variants, individuals,
biosamples, runs and analyses (the archived files: sequence files are runs, variant files
analyses) and datasets. Their endpoints are those the model's ``endpoints.json`` define (the root
and single-entry URLs and the cross-links such as ``/datasets/{id}/g_variants``), and ``/map``
lists exactly those. ``/configuration``, ``/entry_types``, ``/info`` and ``/service-info`` are
built here from the settings, so every answer of the framework endpoints is one pure function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from genomebus.infra.settings import Settings

API_VERSION = "v2.0.0"
SPEC_VERSION = "2.0.0"
SPEC_BASE = "https://raw.githubusercontent.com/ga4gh-beacon/beacon-v2/main"
MODEL_BASE = f"{SPEC_BASE}/models/json/beacon-v2-default-model"
CONFIGURATION_SCHEMA = f"{SPEC_BASE}/framework/json/configuration/beaconConfigurationSchema.json"
MAP_SCHEMA = f"{SPEC_BASE}/framework/json/configuration/beaconMapSchema.json"
GRANULARITIES = ("boolean", "count", "record")
PREFIX = "/beacon/v2"


@dataclass(frozen=True)
class EntryType:
    path: str
    """The path segment of its endpoints (``g_variants``), which ``query.search`` also names it by."""
    id: str
    """Its id in the configuration and in ``returnedSchemas`` (``genomicVariant``)."""
    name: str
    schema_id: str
    model_folder: str
    description: str
    ontology_term: dict[str, str]
    lookups: tuple[str, ...]
    """The entry types reachable from one entry of this type (``/individuals/{id}/g_variants``)."""
    filtering_terms: bool = False
    """Has a ``/{path}/filtering_terms`` (individuals) or ``/{path}/{id}/filtering_terms`` (datasets) endpoint."""

    @property
    def schema(self) -> dict[str, str]:
        return {"entityType": self.id, "schema": self.schema_id}

    @property
    def collection(self) -> bool:
        """Datasets are collections: their records are public descriptions, answered as ``collections``."""
        return self.path == "datasets"


ENTRY_TYPES: dict[str, EntryType] = {e.path: e for e in (
    EntryType("g_variants", "genomicVariant", "Genomic Variants", "ga4gh-beacon-variant-v2.0.0", "genomicVariations",
              "The location of a sequence: an allele of a variant called in the archived VCF/BCF files.",
              {"id": "ENSGLOSSARY:0000092", "label": "Variant"}, ("biosamples", "individuals")),
    EntryType("individuals", "individual", "Individual", "ga4gh-beacon-individual-v2.0.0", "individuals",
              "A human being: a participant of a dataset, as its metadata describes them.",
              {"id": "NCIT:C25190", "label": "Person"}, ("biosamples", "g_variants"), filtering_terms=True),
    EntryType("biosamples", "biosample", "Biological Sample", "ga4gh-beacon-biosample-v2.0.0", "biosamples",
              "A material sample taken from an individual, as the dataset's metadata describes it.",
              {"id": "NCIT:C70699", "label": "Biospecimen"}, ("analyses", "g_variants", "runs")),
    EntryType("runs", "run", "Sequencing run", "ga4gh-beacon-run-v2.0.0", "runs",
              "A sequencing run: an archived sequence file (BAM, CRAM, FASTQ).",
              {"id": "NCIT:C148088", "label": "Sequencing run"}, ("analyses", "g_variants")),
    EntryType("analyses", "analysis", "Bioinformatics analysis", "ga4gh-beacon-analysis-v2.0.0", "analyses",
              "A bioinformatics analysis: an archived variant file (VCF, BCF) and the calls it holds.",
              {"id": "edam:operation_2945", "label": "Analysis"}, ("g_variants",)),
    EntryType("datasets", "dataset", "Dataset", "ga4gh-beacon-dataset-v2.0.0", "datasets",
              "A released dataset of this node: its description is public, its data answered by authorisation.",
              {"id": "NCIT:C47824", "label": "Data set"}, ("biosamples", "g_variants", "individuals"),
              filtering_terms=True),
)}

PERSON_LEVEL = frozenset({"individuals", "biosamples", "runs", "analyses"})
"""Entry types whose one entry is about one person (an individual, their sample, their file)."""

UNSUPPORTED_PARAMETERS = {
    "geneId": "no maintained package ships gene coordinates that work offline",
    "aminoacidChange": "the index holds no variant annotations",
    "mateName": "breakends are matched by their own position only",
}


def info_meta(settings: Settings, entity: str, schema: str) -> dict[str, Any]:
    """``beaconInformationalResponseMeta``."""
    return {"beaconId": settings.beacon_identifier, "apiVersion": API_VERSION,
            "returnedSchemas": [{"entityType": entity, "schema": schema}]}


def environment(settings: Settings) -> str:
    return "prod" if settings.profile == "production" else "dev"


def info(settings: Settings, *, base_url: str, started_at: str) -> dict[str, Any]:
    """``beaconInfoResponse``'s ``response`` (``beaconInfoResults``)."""
    return {
        "id": settings.beacon_identifier,
        "name": f"{settings.node_name} ({settings.node_id}) Beacon",
        "apiVersion": API_VERSION,
        "environment": environment(settings),
        "organization": {"id": settings.beacon_identifier.rsplit(".", 1)[0], "name": settings.organization_name,
                         "welcomeUrl": settings.organization_url, "contactUrl": settings.contact_url},
        "description": "Discovery over the node's released datasets: whether a variant, an individual or a sample "
                       "matching a query is held, by dataset. Anonymous callers get boolean answers (counts for "
                       "public datasets), authenticated researchers counts (small counts are never exact), holders "
                       "of a grant records; queries are budgeted per caller.",
        "version": API_VERSION,
        "welcomeUrl": base_url,
        "alternativeUrl": f"{base_url}/federated/",
        "createDateTime": started_at,
        "updateDateTime": started_at,
        "info": {"documentationUrl": settings.documentation_url, "openApi": f"{_root(base_url)}/openapi.json"},
    }


def service_info(settings: Settings, *, started_at: str, version: str) -> dict[str, Any]:
    """GA4GH service-info 1.0 for the Beacon (``type`` ``org.ga4gh:beacon:2.0.0``)."""
    return {
        "id": settings.beacon_identifier,
        "name": f"{settings.node_name} ({settings.node_id}) Beacon",
        "type": {"group": "org.ga4gh", "artifact": "beacon", "version": SPEC_VERSION},
        "description": "Beacon v2 discovery over the node's released datasets, answered by authorisation.",
        "organization": {"name": settings.organization_name, "url": settings.organization_url},
        "contactUrl": settings.contact_url,
        "documentationUrl": settings.documentation_url,
        "createdAt": started_at,
        "updatedAt": started_at,
        "environment": environment(settings),
        "version": version,
    }


def entry_type_definitions() -> dict[str, dict[str, Any]]:
    """The ``entryTypes`` of ``/configuration`` and ``/entry_types`` (each an ``entryTypeDefinition``)."""
    definitions = {}
    for entry in ENTRY_TYPES.values():
        definition: dict[str, Any] = {
            "id": entry.id, "name": entry.name, "description": entry.description,
            "ontologyTermForThisType": entry.ontology_term,
            "partOfSpecification": f"Beacon v{SPEC_VERSION}",
            "defaultSchema": {"id": entry.schema_id, "name": f"Default schema for {entry.name.lower()}",
                              "referenceToSchemaDefinition": f"{MODEL_BASE}/{entry.model_folder}/defaultSchema.json",
                              "schemaVersion": API_VERSION},
            "additionallySupportedSchemas": [],
            "nonFilteredQueriesAllowed": True,
        }
        if entry.collection:
            definition["aCollectionOf"] = [{"id": e.id, "name": e.name} for e in ENTRY_TYPES.values()
                                           if not e.collection]
        if entry.path == "g_variants":
            definition["info"] = {
                "requestParameters": ["referenceName", "start", "end", "referenceBases", "alternateBases",
                                      "variantType", "variantMinLength", "variantMaxLength", "assemblyId",
                                      "genomicAlleleShortForm"],
                "unsupportedRequestParameters": [{"name": name, "reason": why}
                                                 for name, why in UNSUPPORTED_PARAMETERS.items()],
            }
        definitions[entry.id] = definition
    return definitions


def configuration(settings: Settings) -> dict[str, Any]:
    """The ``beaconConfiguration`` (``/configuration``)."""
    return {
        "$schema": CONFIGURATION_SCHEMA,
        "maturityAttributes": {"productionStatus": "PROD" if settings.profile == "production" else "DEV"},
        "securityAttributes": {"defaultGranularity": "boolean",
                               "securityLevels": ["PUBLIC", "REGISTERED", "CONTROLLED"]},
        "entryTypes": entry_type_definitions(),
        "info": {
            "granularity": "per dataset: records with a grant (or for a public dataset), counts for an "
                           "authenticated caller (or a public dataset), booleans otherwise",
            "countThreshold": settings.beacon_count_threshold,
            "countRounding": settings.beacon_count_rounding,
            "maxLimit": settings.beacon_max_limit,
            "rangeMaxBp": settings.beacon_range_max_bp,
        },
    }


def beacon_map(base_url: str) -> dict[str, Any]:
    """The ``beaconMap`` (``/map``): every entry type's root, single-entry and cross-link URLs here."""
    sets = {}
    for entry in ENTRY_TYPES.values():
        endpoint: dict[str, Any] = {
            "entryType": entry.id,
            "openAPIEndpointsDefinition": f"{_root(base_url)}/openapi.json",
            "rootUrl": f"{base_url}/{entry.path}",
            "singleEntryUrl": f"{base_url}/{entry.path}/{{id}}",
            "endpoints": {f"{ENTRY_TYPES[target].id}Lookup": {
                "returnedEntryType": ENTRY_TYPES[target].id, "url": f"{base_url}/{entry.path}/{{id}}/{target}"}
                for target in entry.lookups},
        }
        if entry.path == "datasets":
            endpoint["filteringTermsUrl"] = f"{base_url}/datasets/{{id}}/filtering_terms"
        elif entry.filtering_terms:
            endpoint["filteringTermsUrl"] = f"{base_url}/{entry.path}/filtering_terms"
        sets[f"{entry.id}Endpoints"] = endpoint
    return {"$schema": MAP_SCHEMA, "endpointSets": sets}


def _root(base_url: str) -> str:
    """The gateway's root, from the Beacon's base URL."""
    return base_url[: -len(PREFIX)] if base_url.endswith(PREFIX) else base_url
