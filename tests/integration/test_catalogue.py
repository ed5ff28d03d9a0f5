"""The catalogue over the real stack: a dataset registered with complete metadata, released and indexed,
is served with no GDI violation, its counts from the index and live distributions; withdrawn, it is gone.
A bare registration's warnings reach the SDK through the decider, the read model and the gateway."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from rdflib import Graph, URIRef
from rdflib.namespace import DCAT

from genomebus.infra.catalogue import HEALTHDCATAP
from genomebus.infra.settings import Settings
from genomebus.producers.datasets import describe_dataset, register_dataset, withdraw_dataset
from genomebus.producers.metadata import load_metadata
from genomebus.schemas.healthdcat import MANDATORY, missing_metadata
from genomebus.schemas.reception import CATALOGUE_FIELDS, DatasetUpdateRequested
from tests.data import REPO
from tests.gdi_shapes import violations
from tests.integration.discovery import SPEC, indexed_dataset
from tests.integration.helpers import new_dataset_id

pytestmark = pytest.mark.integration

EXAMPLE = REPO / "producers" / "examples" / "GDI-FI-DATASET-001.json"

# The demo's catalogue metadata; the individuals stay the shared fixture's, whose ids are the VCF's columns.
METADATA = {k: v for k, v in load_metadata(EXAMPLE).items()
            if k in (*CATALOGUE_FIELDS, "description", "publisher", "keywords")}


async def test_a_released_dataset_is_in_the_catalogue_until_it_is_withdrawn(stack: Settings, publisher: Any,
                                                                             pool: Any):
    # Registered without its publisher (the fixture's own ``publisher`` argument takes that name), then
    # completed by an update of the released dataset: the catalogue follows the description.
    registered = {k: v for k, v in METADATA.items() if k != "publisher"}
    dataset = await indexed_dataset(stack, publisher, pool, (SPEC,), access_rights="public", title="catalogue test",
                                    **registered)
    iri = URIRef(f"{stack.gateway_url}/catalogue/datasets/{dataset.dataset_id}")
    async with httpx.AsyncClient(base_url=stack.gateway_url) as http:
        first = await entry(http, dataset.dataset_id)
        assert {v.path for v in violations(first)} == {"dct:publisher"}
        assert [w.property for w in missing_metadata(describe_dataset(
            dataset_id=dataset.dataset_id, data_use=("DUO:0000006",), **dataset.description))] == ["dct:publisher"]

        update = describe_dataset(command=DatasetUpdateRequested, dataset_id=dataset.dataset_id,
                                  data_use=("DUO:0000006",), dac_id=dataset.dac_id,
                                  **{**dataset.description, "publisher": METADATA["publisher"]})
        updated = await register_dataset(stack, update, actor="steward-test", publisher=publisher)
        assert updated.accepted and updated.warnings == (), updated

        complete = await entry(http, dataset.dataset_id)
        assert violations(complete) == []
        assert dataset.summary is not None
        assert int(complete.value(iri, HEALTHDCATAP.numberOfRecords)) == dataset.summary.variants
        assert int(complete.value(iri, HEALTHDCATAP.numberOfUniqueIndividuals)) == \
            (dataset.summary.individuals or dataset.summary.samples)
        urls = {str(complete.value(d, DCAT.accessURL)) for d in complete.objects(iri, DCAT.distribution)}
        drs = f"{stack.gateway_url}/ga4gh/drs/v1/objects/{dataset.dataset_id}"
        assert urls == {drs, f"{stack.gateway_url}/beacon/v2/datasets/{dataset.dataset_id}"}
        bundle = await http.get(drs.removeprefix(stack.gateway_url))
        assert bundle.status_code == 200 and bundle.json()["id"] == dataset.dataset_id

        whole = await http.get("/catalogue", headers={"Accept": "application/rdf+xml"})
        assert whole.status_code == 200
        assert (URIRef(f"{stack.gateway_url}/catalogue"), DCAT.dataset, iri) in \
            Graph().parse(data=whole.content, format="xml")

        withdrawn = await withdraw_dataset(stack, dataset.dataset_id, reason="catalogue test", actor="steward-test",
                                           publisher=publisher)
        assert withdrawn.accepted, withdrawn
        gone = await http.get(f"/catalogue/datasets/{dataset.dataset_id}")
        assert gone.status_code == 404 and gone.headers["content-type"] == "application/problem+json"
        after = Graph().parse(data=(await http.get("/catalogue")).content, format="turtle")
        assert (URIRef(f"{stack.gateway_url}/catalogue"), DCAT.dataset, iri) not in after


async def entry(http: httpx.AsyncClient, dataset_id: str) -> Graph:
    response = await http.get(f"/catalogue/datasets/{dataset_id}", headers={"Accept": "text/turtle"})
    assert response.status_code == 200, response.text
    return Graph().parse(data=response.content, format="turtle")


async def test_a_bare_registration_is_accepted_and_its_warnings_reach_the_sdk(stack: Settings, publisher: Any):
    command = describe_dataset(dataset_id=new_dataset_id(), title="bare", data_use=("DUO:0000042",))
    outcome = await register_dataset(stack, command, actor="steward-test", publisher=publisher)
    assert outcome.accepted, outcome
    assert {w.property for w in outcome.warnings if w.code == "metadata_incomplete"} == MANDATORY - {"dct:title"}
    assert {(w.property, w.field) for w in outcome.warnings} >= {("dcat:contactPoint", "contact_point")}
