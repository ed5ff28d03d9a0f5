"""The catalogue graph against the GDI shapes (pySHACL), the metadata check against pySHACL, and the router.

A complete description (the demo's example metadata) gives a catalogue with no violation; taking
away any one property the shapes require gives exactly that violation, and ``missing_metadata``
names exactly that property. The router is served over HTTP with fake read models.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from rdflib import Graph, Literal, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, SH, XSD

from genomebus.gateway import problems
from genomebus.gateway.routers import catalogue as router
from genomebus.infra import catalogue
from genomebus.infra.catalogue import ACCESS_RIGHT, DCATAP, HEALTHDCATAP, Counts, Node
from genomebus.infra.discovery.query import IndexedDataset
from genomebus.infra.readmodels.datasets import CatalogueEntry
from genomebus.infra.settings import Settings
from genomebus.producers.metadata import load_metadata
from genomebus.schemas.healthdcat import MANDATORY, PROFILE, missing_metadata
from genomebus.schemas.reception import DatasetDescription
from tests.gdi_shapes import curie, shapes, violated_properties, violations

EXAMPLE = Path(__file__).resolve().parents[2] / "producers" / "examples" / "GDI-FI-DATASET-001.json"
DATASET = "GDI-FI-DATASET-001"
NODE = Node("http://fi.test", "FI", "genomebus national node", "THL", "https://example.org/thl",
            "mailto:helpdesk@example.org")
WHEN = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BARE = {"title": "Finnish trios", "data_use": ("DUO:0000042",)}
NODE_SUPPLIED = {"dct:identifier", "dct:accessRights"}
"""Properties the shapes require that the node states itself, whatever the description says."""


def complete() -> DatasetDescription:
    fields = {k: v for k, v in load_metadata(EXAMPLE).items() if k != "dataset_id"}
    return DatasetDescription.model_validate(fields)


def entry(description: DatasetDescription, dataset_id: str = DATASET) -> CatalogueEntry:
    return CatalogueEntry(dataset_id, description, WHEN, WHEN, WHEN)


def graph_of(description: DatasetDescription, *, indexed: bool = True) -> Graph:
    counts = {DATASET: Counts(records=1234, individuals=3)} if indexed else {}
    return catalogue.build(NODE, [entry(description)], counts)


def changed(base: DatasetDescription, /, **fields: Any) -> DatasetDescription:
    return DatasetDescription.model_validate({**base.model_dump(), **fields})


def without(base: DatasetDescription, field: str, value: Any = None) -> DatasetDescription:
    return changed(base, **{field: DatasetDescription.model_fields[field].default if value is None else value})


# rdflib's JSON-LD parser builds a ConjunctiveGraph, which rdflib 7.1 deprecates (its own doing, not ours)
JSONLD_PARSE = pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")


# -- the shapes and the check agree ------------------------------------------------------------------


def test_the_demo_dataset_is_complete_and_its_catalogue_has_no_violation():
    description = complete()
    assert missing_metadata(description) == ()
    assert violations(graph_of(description)) == []
    assert violations(graph_of(description, indexed=False)) == []


@pytest.mark.parametrize("access", ["controlled", "restricted", "public"])
def test_every_access_right_conforms(access: str):
    assert violations(graph_of(changed(complete(), access_rights=access))) == []


@pytest.mark.parametrize("prop", [p for p in PROFILE if p.need == "mandatory"], ids=lambda p: p.curie)
def test_each_missing_mandatory_property_is_named_by_pyshacl_and_by_the_check(prop: Any):
    description = without(complete(), prop.field, " " if prop.field in ("title", "publisher") else None)

    assert violated_properties(graph_of(description)) == {prop.curie}
    assert violated_properties(graph_of(description), str(NODE.dataset(DATASET))) == {prop.curie}
    warnings = missing_metadata(description)
    assert [(w.code, w.property, w.field) for w in warnings] == [("metadata_incomplete", prop.curie, prop.field)]
    assert warnings[0].message.startswith(f"{prop.curie} ({prop.field}) is missing")


@pytest.mark.parametrize("prop", [p for p in PROFILE if p.need == "recommended"], ids=lambda p: p.curie)
def test_a_missing_recommended_property_is_a_warning_but_no_violation(prop: Any):
    description = without(complete(), prop.field)

    assert violations(graph_of(description)) == []
    assert [(w.code, w.property) for w in missing_metadata(description)] == [("metadata_recommended", prop.curie)]


def test_a_bare_description_fails_on_exactly_the_properties_the_check_names():
    description = DatasetDescription(**BARE)
    warned = {w.property for w in missing_metadata(description) if w.code == "metadata_incomplete"}

    assert violated_properties(graph_of(description)) == warned == MANDATORY - {"dct:title"}
    assert [w.code for w in missing_metadata(description)] == \
        ["metadata_incomplete"] * len(warned) + ["metadata_recommended"] * 3


def test_the_profile_covers_every_property_the_dataset_shape_requires():
    g = shapes()
    dataset_shape = URIRef("http://data.gdi.eu/core/p2/DatasetShape")
    required = {curie(g.value(p, SH.path))
                for p in g.objects(dataset_shape, SH.property) if int(g.value(p, SH.minCount) or 0) >= 1}

    assert required == MANDATORY | NODE_SUPPLIED


def test_the_dataset_id_is_an_identifier_the_shape_accepts_and_a_bad_one_would_fail():
    g = graph_of(complete())
    s = NODE.dataset(DATASET)
    assert g.value(s, DCTERMS.identifier) == Literal(DATASET, datatype=XSD.string)
    g.set((s, DCTERMS.identifier, Literal("dataset-1", datatype=XSD.string)))
    assert violated_properties(g) == {"dct:identifier"}


# -- what the graph says -----------------------------------------------------------------------------


def test_the_catalogue_describes_the_dataset_its_distributions_and_services():
    g = graph_of(complete())
    s = NODE.dataset(DATASET)
    assert (NODE.catalogue, DCAT.dataset, s) in g
    assert str(g.value(s, DCTERMS.title)) == complete().title
    assert g.value(s, DCTERMS.accessRights) == ACCESS_RIGHT.NON_PUBLIC
    assert g.value(s, HEALTHDCATAP.numberOfRecords) == Literal(1234, datatype=XSD.nonNegativeInteger)
    assert g.value(s, HEALTHDCATAP.numberOfUniqueIndividuals) == Literal(3, datatype=XSD.nonNegativeInteger)
    assert {str(k) for k in g.objects(s, DCAT.keyword)} == set(complete().keywords)
    assert str(g.value(g.value(s, DCTERMS.publisher), FOAF.name)) == complete().publisher
    assert sorted(str(g.value(c, FOAF.name)) for c in g.objects(s, DCTERMS.creator)) == \
        sorted(c.name for c in complete().creators)
    assert g.value(s, DCAT.contactPoint) == g.value(g.value(s, DCTERMS.publisher), DCAT.contactPoint)
    assert {str(x) for x in g.objects(s, DCATAP.applicableLegislation)} == \
        {str(x) for x in complete().applicable_legislation}
    access = {str(g.value(d, DCAT.accessURL)): g.value(d, DCAT.accessService) for d in g.objects(s, DCAT.distribution)}
    assert access == {f"http://fi.test/ga4gh/drs/v1/objects/{DATASET}": URIRef("http://fi.test/ga4gh/drs/v1"),
                      f"http://fi.test/beacon/v2/datasets/{DATASET}": URIRef("http://fi.test/beacon/v2")}
    for service in access.values():
        assert (service, RDF.type, DCAT.DataService) in g
        assert (service, DCAT.servesDataset, s) in g


def test_a_dataset_not_indexed_has_no_counts_and_no_beacon_distribution():
    g = graph_of(complete(), indexed=False)
    s = NODE.dataset(DATASET)
    assert g.value(s, HEALTHDCATAP.numberOfRecords) is None
    assert [str(g.value(d, DCAT.accessURL)) for d in g.objects(s, DCAT.distribution)] == \
        [f"http://fi.test/ga4gh/drs/v1/objects/{DATASET}"]
    assert (URIRef("http://fi.test/beacon/v2"), DCAT.servesDataset, s) not in g


def test_unique_individuals_are_the_described_ones_else_the_genotyped_samples():
    def indexed(individuals: int, samples: int) -> IndexedDataset:
        return IndexedDataset(DATASET, "controlled", "GRCh38", 10, samples, individuals, 0, {})

    assert Counts.of(indexed(3, 5)) == Counts(10, 3)
    assert Counts.of(indexed(0, 5)) == Counts(10, 5)


def test_optional_metadata_is_mapped():
    description = changed(
        complete(), synthetic=True, conforms_to=("1mg_compliant",), is_referenced_by=("https://doi.org/10.1000/182",),
        other_identifiers=({"notation": "10.1000/182", "schema_agency": "DataCite"},),
        creators=({"name": "FIMM", "iri": "https://ror.org/030sbze61"},))
    g = graph_of(description)
    s = NODE.dataset(DATASET)
    assert violations(g) == []
    assert g.value(s, DCTERMS.type) == URIRef(
        "https://publications.europa.eu/resource/authority/dataset-type/SYNTHETIC_DATA")
    assert g.value(s, DCTERMS.creator) == URIRef("https://ror.org/030sbze61")
    assert g.value(s, DCTERMS.isReferencedBy) == URIRef("https://doi.org/10.1000/182")
    assert str(g.value(g.value(s, URIRef("http://www.w3.org/ns/adms#identifier")),
                       URIRef("http://www.w3.org/2004/02/skos/core#notation"))) == "10.1000/182"


@pytest.mark.parametrize("media_type", list(catalogue.MEDIA_TYPES))
@JSONLD_PARSE
def test_every_format_reads_back_as_the_same_graph(media_type: str):
    g = graph_of(complete())
    back = Graph().parse(data=catalogue.serialize(g, media_type), format=catalogue.MEDIA_TYPES[media_type])
    assert isomorphic(g, back)


# -- content negotiation -------------------------------------------------------------------------------


@pytest.mark.parametrize(("accept", "chosen"), [
    (None, "text/turtle"),
    ("", "text/turtle"),
    ("*/*", "text/turtle"),
    ("application/ld+json", "application/ld+json"),
    ("application/rdf+xml", "application/rdf+xml"),
    ("application/*", "application/ld+json"),
    ("text/*", "text/turtle"),
    ("text/turtle;q=0.5, application/ld+json", "application/ld+json"),
    ("application/rdf+xml;q=0.9, */*;q=0.1", "application/rdf+xml"),
    ("text/html, application/xhtml+xml, */*;q=0.8", "text/turtle"),
    ("APPLICATION/LD+JSON", "application/ld+json"),
    ("application/ld+json;q=0, */*", "text/turtle"),
    ("text/turtle;q=bad, application/rdf+xml", "application/rdf+xml"),
    ("application/json", None),
    ("text/html", None),
    ("*/*;q=0", None),
    ("nonsense", None),
])
def test_negotiation(accept: str | None, chosen: str | None):
    assert router.negotiate(accept) == chosen


# -- the router ------------------------------------------------------------------------------------------


@pytest.fixture
async def http(monkeypatch: pytest.MonkeyPatch):
    released = {DATASET: entry(complete()), "GDI-FI-DATASET-002": entry(DatasetDescription(**BARE), "GDI-FI-DATASET-002")}

    async def released_descriptions(conn: Any, dataset_id: str | None = None) -> list[CatalogueEntry]:
        return [e for k, e in sorted(released.items()) if dataset_id in (None, k)]

    async def indexed(pool: Any) -> list[IndexedDataset]:
        return [IndexedDataset(DATASET, "controlled", "GRCh37", 1234, 3, 3, 2, {})]

    monkeypatch.setattr("genomebus.infra.readmodels.datasets.released_descriptions", released_descriptions)
    monkeypatch.setattr("genomebus.infra.discovery.query.datasets", indexed)
    app = FastAPI()
    problems.install(app)
    app.include_router(router.router)
    app.state.settings = Settings(node_id="FI")
    app.state.pool = object()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fi.test") as client:
        yield client


@pytest.mark.parametrize("media_type", list(catalogue.MEDIA_TYPES))
@JSONLD_PARSE
async def test_the_catalogue_is_served_in_each_format(http: httpx.AsyncClient, media_type: str):
    response = await http.get("/catalogue", headers={"Accept": media_type})
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media_type
    assert response.headers["vary"] == "Accept"
    g = Graph().parse(data=response.content, format=catalogue.MEDIA_TYPES[media_type])
    assert set(g.objects(URIRef("http://fi.test/catalogue"), DCAT.dataset)) == \
        {URIRef(f"http://fi.test/catalogue/datasets/{d}") for d in (DATASET, "GDI-FI-DATASET-002")}
    # the complete dataset conforms; the bare one fails only on what registration warned of
    assert violated_properties(g, f"http://fi.test/catalogue/datasets/{DATASET}") == set()
    assert violated_properties(g, "http://fi.test/catalogue/datasets/GDI-FI-DATASET-002") == \
        {w.property for w in missing_metadata(DatasetDescription(**BARE)) if w.code == "metadata_incomplete"}


@JSONLD_PARSE
async def test_a_dataset_entry_is_its_own_graph_at_its_iri(http: httpx.AsyncClient):
    response = await http.get(f"/catalogue/datasets/{DATASET}", headers={"Accept": "application/ld+json"})
    assert response.status_code == 200
    body = json.loads(response.content)
    g = Graph().parse(data=response.content, format="json-ld")
    assert (URIRef(f"http://fi.test/catalogue/datasets/{DATASET}"), RDF.type, DCAT.Dataset) in g
    assert not list(g.subjects(RDF.type, DCAT.Catalog))
    assert violations(g) == []
    assert body  # JSON-LD is JSON


async def test_a_dataset_not_released_is_a_404_problem(http: httpx.AsyncClient):
    response = await http.get("/catalogue/datasets/GDI-FI-DATASET-999")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"].startswith("GDI-FI-DATASET-999 is not in this node's catalogue")


@pytest.mark.parametrize("path", ["/catalogue", f"/catalogue/datasets/{DATASET}", "/catalogue/datasets/GDI-FI-DATASET-999"])
async def test_an_unacceptable_format_is_a_406_problem_naming_the_formats(http: httpx.AsyncClient, path: str):
    response = await http.get(path, headers={"Accept": "application/json"})
    assert response.status_code == 406
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 406 and body["acceptable"] == list(catalogue.MEDIA_TYPES)
    assert "text/turtle" in body["detail"]


async def test_a_malformed_dataset_id_is_a_400_problem(http: httpx.AsyncClient):
    response = await http.get("/catalogue/datasets/not-a-pid")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_public_url_names_the_iris_when_configured(http: httpx.AsyncClient):
    http._transport.app.state.settings = Settings(node_id="FI", gateway_public_url="https://fi.example.org/")  # type: ignore[attr-defined]
    response = await http.get(f"/catalogue/datasets/{DATASET}")
    g = Graph().parse(data=response.content, format="turtle")
    assert (URIRef(f"https://fi.example.org/catalogue/datasets/{DATASET}"), RDF.type, DCAT.Dataset) in g
