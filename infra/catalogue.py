"""The node's catalogue: every released dataset as a GDI / HealthDCAT-AP ``dcat:Dataset`` (an rdflib graph).

``catalogue(pool, node)`` is the ``dcat:Catalog`` of every released dataset, ``dataset_entry(pool,
node, dataset_id)`` one of them (None if it is not released: unknown, registered only, or
withdrawn); ``build`` does the mapping without I/O, from the ``datasets`` read model's entries
and the discovery index's counts. ``serialize`` writes Turtle, JSON-LD or RDF/XML.

What each property comes from (the steward's fields are ``DatasetDescription``'s; which of them
the GDI shapes require is ``genomebus.schemas.healthdcat.PROFILE``'s to say):

======================================  ==========================================================
``dct:identifier``                      the dataset id (a 1+MG PID, the shapes' pattern)
``dct:title``, ``dct:description``      ``title``, ``description``
``dcat:keyword``                        ``keywords``
``dct:publisher``                       ``publisher`` (its ``foaf:name``), with ``contact_point``
``dct:creator``                         ``creators`` (an agent's ``iri`` is its node, if given)
``dcat:contactPoint``                   ``contact_point`` (``vcard:Kind``: fn, ``mailto:`` email, URL)
``healthdcatap:hdab``                   ``hdab``
``dct:accessRights``                    ``access_rights``: public → PUBLIC, restricted → RESTRICTED,
                                        controlled (a DAC's grant) → NON_PUBLIC
``dcatap:applicableLegislation``        ``applicable_legislation`` (also on each distribution)
``dcat:theme``                          ``themes`` (EU data-theme codes)
``healthdcatap:healthCategory``         ``health_categories`` (the GDI categories)
``dpv:hasLegalBasis``                   ``legal_basis`` (DPV terms)
``dct:conformsTo``                      ``conforms_to`` (the GDI standards)
``dct:type``                            ``synthetic`` → SYNTHETIC_DATA
``dct:isReferencedBy``                  ``is_referenced_by``
``adms:identifier``                     ``other_identifiers``
``dcat:landingPage``                    ``landing_page``
``adms:status``                         COMPLETED (only released datasets are listed)
``dct:issued``, ``dct:modified``        when it was released, when its description last changed
``healthdcatap:numberOfRecords``        the discovery index: variant records (one per alternate
                                        allele) — only once the dataset is indexed
``numberOfUniqueIndividuals``           the discovery index: the individuals described, or (none
                                        described) the genotyped samples
``dcat:distribution``                   the DRS bundle of its files (``/ga4gh/drs/v1/objects/{id}``)
                                        and, once indexed, its Beacon dataset (``/beacon/v2/datasets/{id}``)
``dcat:DataService``                    the node's DRS and Beacon, each serving its datasets
======================================  ==========================================================

Not mapped: the DUO data use, the DAC and the individuals and biosamples (the catalogue is public:
people are counted, never listed; data use is what the Beacon's ``datasets`` record says).
IRIs: the catalogue is ``<base>/catalogue``, a dataset ``<base>/catalogue/datasets/<id>``, its
agents, contact point and distributions fragments of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import asyncpg
from rdflib import BNode, Graph, Literal as Lit, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, SKOS, XSD

from genomebus.infra.discovery import query
from genomebus.infra.readmodels import datasets
from genomebus.infra.readmodels.datasets import CatalogueEntry
from genomebus.infra.settings import Settings
from genomebus.schemas.reception import Agent, ContactPoint, DatasetDescription

DCATAP = Namespace("http://data.europa.eu/r5r/")
HEALTHDCATAP = Namespace("http://healthdataportal.eu/ns/health#")
ADMS = Namespace("http://www.w3.org/ns/adms#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
DPV = Namespace("https://w3id.org/dpv#")
GDI = Namespace("http://data.gdi.eu/core/p2/")
ACCESS_RIGHT = Namespace("http://publications.europa.eu/resource/authority/access-right/")
DATA_THEME = Namespace("http://publications.europa.eu/resource/authority/data-theme/")
DATASET_STATUS = Namespace("http://publications.europa.eu/resource/authority/dataset-status/")
DISTRIBUTION_STATUS = Namespace("http://publications.europa.eu/resource/authority/distribution-status/")
DATASET_TYPE = Namespace("https://publications.europa.eu/resource/authority/dataset-type/")  # https, as the shapes
EHDS = URIRef("http://data.europa.eu/eli/reg/2025/327/oj")
"""The European Health Data Space regulation's ELI: the legislation the catalogue itself is kept under."""

ACCESS_RIGHTS = {"public": ACCESS_RIGHT.PUBLIC, "restricted": ACCESS_RIGHT.RESTRICTED,
                 "controlled": ACCESS_RIGHT.NON_PUBLIC}
HEALTH_CATEGORIES = {"human_genetic": GDI.HealthCategoryHumanGenetic,
                     "human_epigenomic": GDI.HealthCategoryHumanEpigenomic,
                     "human_genomic": GDI.HealthCategoryHumanGenomic}
STANDARDS = {"externally_governed": GDI.ExternallyGoverned, "1mg_compliant": GDI["1MGCompliant"],
             "1mg_cohort": GDI["1MGCohort"]}
DRS_SPEC = URIRef("https://ga4gh.github.io/data-repository-service-schemas/")
BEACON_SPEC = URIRef("https://github.com/ga4gh-beacon/beacon-v2")

PREFIXES = {"dcat": DCAT, "dct": DCTERMS, "foaf": FOAF, "skos": SKOS, "xsd": XSD, "dcatap": DCATAP,
            "healthdcatap": HEALTHDCATAP, "adms": ADMS, "vcard": VCARD, "dpv": DPV, "gdi": GDI}

Format = Literal["turtle", "json-ld", "xml"]
MEDIA_TYPES: dict[str, Format] = {"text/turtle": "turtle", "application/ld+json": "json-ld",
                                  "application/rdf+xml": "xml"}
"""What the catalogue is served as, by media type; the first is the default."""


@dataclass(frozen=True)
class Node:
    """What the catalogue says of the node itself, and where it is reached (``base_url``, no trailing slash)."""

    base_url: str
    node_id: str
    name: str
    organisation: str
    organisation_url: str
    contact_url: str

    @classmethod
    def of(cls, settings: Settings, base_url: str) -> Node:
        return cls(base_url.rstrip("/"), settings.node_id, settings.node_name, settings.organization_name,
                   settings.organization_url, settings.contact_url)

    @property
    def catalogue(self) -> URIRef:
        return URIRef(f"{self.base_url}/catalogue")

    def dataset(self, dataset_id: str) -> URIRef:
        return URIRef(f"{self.base_url}/catalogue/datasets/{dataset_id}")

    @property
    def drs(self) -> URIRef:
        return URIRef(f"{self.base_url}/ga4gh/drs/v1")

    @property
    def beacon(self) -> URIRef:
        return URIRef(f"{self.base_url}/beacon/v2")


@dataclass(frozen=True)
class Counts:
    """What the discovery index counted of an indexed dataset."""

    records: int
    individuals: int

    @classmethod
    def of(cls, indexed: query.IndexedDataset) -> Counts:
        return cls(indexed.variants, indexed.individuals or indexed.samples)


# -- I/O ----------------------------------------------------------------------------------------------


async def catalogue(pool: asyncpg.Pool, node: Node) -> Graph:
    """The ``dcat:Catalog`` of every released dataset."""
    entries = await datasets.released_descriptions(pool)
    return build(node, entries, await _counts(pool), with_catalogue=True)


async def dataset_entry(pool: asyncpg.Pool, node: Node, dataset_id: str) -> Graph | None:
    """One released dataset's entry (its distributions and services with it), or None if it is not released."""
    entries = await datasets.released_descriptions(pool, dataset_id)
    if not entries:
        return None
    return build(node, entries, await _counts(pool), with_catalogue=False)


async def _counts(pool: asyncpg.Pool) -> dict[str, Counts]:
    return {d.dataset_id: Counts.of(d) for d in await query.datasets(pool)}


def serialize(graph: Graph, media_type: str) -> bytes:
    """``graph`` in the format of ``media_type`` (one of ``MEDIA_TYPES``)."""
    return graph.serialize(format=MEDIA_TYPES[media_type], encoding="utf-8")


# -- the mapping: no I/O --------------------------------------------------------------------------------


def build(node: Node, entries: Sequence[CatalogueEntry], counts: Mapping[str, Counts], *,
          with_catalogue: bool = True) -> Graph:
    """The catalogue graph of ``entries`` (with the ``dcat:Catalog`` itself, or only the datasets)."""
    g = Graph()
    for prefix, namespace in PREFIXES.items():
        g.bind(prefix, namespace)
    drs = _service(g, node.drs, f"{node.name} ({node.node_id}): GA4GH DRS", DRS_SPEC,
                   URIRef(f"{node.drs}/service-info"))
    beacon = _service(g, node.beacon, f"{node.name} ({node.node_id}): Beacon v2", BEACON_SPEC,
                      URIRef(f"{node.beacon}/info"))
    for entry in entries:
        dataset = node.dataset(entry.dataset_id)
        _dataset(g, dataset, entry, counts.get(entry.dataset_id))
        g.add((drs, DCAT.servesDataset, dataset))
        _distribution(g, URIRef(f"{dataset}#drs"), dataset, entry.description, drs,
                      f"{entry.dataset_id}: its files as a GA4GH DRS bundle",
                      URIRef(f"{node.drs}/objects/{entry.dataset_id}"))
        if entry.dataset_id in counts:  # the Beacon serves indexed datasets only
            g.add((beacon, DCAT.servesDataset, dataset))
            _distribution(g, URIRef(f"{dataset}#beacon"), dataset, entry.description, beacon,
                          f"{entry.dataset_id}: discovery through the node's Beacon v2",
                          URIRef(f"{node.beacon}/datasets/{entry.dataset_id}"))
    if with_catalogue:
        _catalogue(g, node, [node.dataset(e.dataset_id) for e in entries], (drs, beacon))
    return g


def _catalogue(g: Graph, node: Node, members: Sequence[URIRef], services: Sequence[URIRef]) -> None:
    c = node.catalogue
    g.add((c, RDF.type, DCAT.Catalog))
    g.add((c, DCTERMS.title, Lit(f"{node.name} ({node.node_id}): datasets", lang="en")))
    g.add((c, DCTERMS.description, Lit(
        f"The datasets released by the genomebus node {node.node_id}, described in the GDI / HealthDCAT-AP "
        "profile: their files through GA4GH DRS, their variants through Beacon v2, access through the node's "
        "Data Access Committees.", lang="en")))
    g.add((c, DCATAP.applicableLegislation, EHDS))
    publisher = URIRef(f"{c}#publisher")
    g.add((c, DCTERMS.publisher, publisher))
    g.add((publisher, RDF.type, FOAF.Agent))
    g.add((publisher, FOAF.name, Lit(node.organisation)))
    if node.organisation_url.startswith(("http://", "https://")):
        g.add((publisher, FOAF.homepage, URIRef(node.organisation_url)))
    if node.contact_url.startswith("mailto:"):
        contact = URIRef(f"{c}#contact-point")
        g.add((c, DCAT.contactPoint, contact))
        g.add((contact, RDF.type, VCARD.Kind))
        g.add((contact, VCARD.fn, Lit(node.organisation)))
        g.add((contact, VCARD.hasEmail, URIRef(node.contact_url)))
    for dataset in members:
        g.add((c, DCAT.dataset, dataset))
    for service in services:
        g.add((c, DCAT.service, service))


def _service(g: Graph, iri: URIRef, title: str, spec: URIRef, description: URIRef) -> URIRef:
    g.add((iri, RDF.type, DCAT.DataService))
    g.add((iri, DCTERMS.title, Lit(title, lang="en")))
    g.add((iri, DCAT.endpointURL, iri))
    g.add((iri, DCAT.endpointDescription, description))
    g.add((iri, DCTERMS.conformsTo, spec))
    return iri


def _distribution(g: Graph, iri: URIRef, dataset: URIRef, d: DatasetDescription, service: URIRef, title: str,
                  access_url: URIRef) -> None:
    g.add((dataset, DCAT.distribution, iri))
    g.add((iri, RDF.type, DCAT.Distribution))
    g.add((iri, DCTERMS.title, Lit(title, lang="en")))
    g.add((iri, DCAT.accessURL, access_url))
    g.add((iri, DCAT.accessService, service))
    g.add((iri, ADMS.status, DISTRIBUTION_STATUS.COMPLETED))
    g.add((iri, DCTERMS.accessRights, ACCESS_RIGHTS[d.access_rights]))
    for law in d.applicable_legislation:
        g.add((iri, DCATAP.applicableLegislation, URIRef(str(law))))


def _dataset(g: Graph, s: URIRef, entry: CatalogueEntry, counts: Counts | None) -> None:
    d = entry.description
    g.add((s, RDF.type, DCAT.Dataset))
    g.add((s, DCTERMS.identifier, Lit(entry.dataset_id, datatype=XSD.string)))
    _text(g, s, DCTERMS.title, d.title)
    _text(g, s, DCTERMS.description, d.description)
    for keyword in d.keywords:
        _text(g, s, DCAT.keyword, keyword)
    g.add((s, DCTERMS.accessRights, ACCESS_RIGHTS[d.access_rights]))
    g.add((s, ADMS.status, DATASET_STATUS.COMPLETED))
    g.add((s, DCTERMS.issued, _when(entry.released_at)))
    g.add((s, DCTERMS.modified, _when(entry.updated_at)))
    if d.landing_page is not None:
        g.add((s, DCAT.landingPage, URIRef(str(d.landing_page))))
    contact = _contact(g, URIRef(f"{s}#contact-point"), d.contact_point)
    if contact is not None:
        g.add((s, DCAT.contactPoint, contact))
    if d.publisher and d.publisher.strip():
        publisher = URIRef(f"{s}#publisher")
        g.add((s, DCTERMS.publisher, publisher))
        g.add((publisher, RDF.type, FOAF.Agent))
        g.add((publisher, FOAF.name, Lit(d.publisher.strip())))
        if contact is not None:  # HealthDCAT-AP: the publisher is reached through the dataset's contact point
            g.add((publisher, DCAT.contactPoint, contact))
    for n, creator in enumerate(d.creators, start=1):
        g.add((s, DCTERMS.creator, _agent(g, URIRef(f"{s}#creator-{n}"), creator)))
    if d.hdab is not None:
        g.add((s, HEALTHDCATAP.hdab, _agent(g, URIRef(f"{s}#hdab"), d.hdab)))
    for law in d.applicable_legislation:
        g.add((s, DCATAP.applicableLegislation, URIRef(str(law))))
    for theme in d.themes:
        g.add((s, DCAT.theme, DATA_THEME[theme]))
    for category in d.health_categories:
        g.add((s, HEALTHDCATAP.healthCategory, HEALTH_CATEGORIES[category]))
    for basis in d.legal_basis:
        g.add((s, DPV.hasLegalBasis, DPV[basis.removeprefix("dpv:")]))
    for standard in d.conforms_to:
        g.add((s, DCTERMS.conformsTo, STANDARDS[standard]))
    if d.synthetic:
        g.add((s, DCTERMS.type, DATASET_TYPE.SYNTHETIC_DATA))
    for reference in d.is_referenced_by:
        g.add((s, DCTERMS.isReferencedBy, URIRef(str(reference))))
    for n, other in enumerate(d.other_identifiers, start=1):
        identifier = URIRef(f"{s}#identifier-{n}")
        g.add((s, ADMS.identifier, identifier))
        g.add((identifier, RDF.type, ADMS.Identifier))
        g.add((identifier, SKOS.notation, Lit(other.notation, datatype=XSD.string)))
        if other.schema_agency:
            g.add((identifier, ADMS.schemaAgency, Lit(other.schema_agency, datatype=XSD.string)))
    if counts is not None:
        g.add((s, HEALTHDCATAP.numberOfRecords, Lit(counts.records, datatype=XSD.nonNegativeInteger)))
        g.add((s, HEALTHDCATAP.numberOfUniqueIndividuals, Lit(counts.individuals, datatype=XSD.nonNegativeInteger)))


def _agent(g: Graph, default: URIRef, agent: Agent) -> URIRef:
    node = URIRef(str(agent.iri)) if agent.iri is not None else default
    g.add((node, RDF.type, FOAF.Agent))
    g.add((node, FOAF.name, Lit(agent.name.strip())))
    contact = _contact(g, URIRef(f"{default}-contact-point"), agent.contact_point)
    if contact is not None:
        g.add((node, DCAT.contactPoint, contact))
    return node


def _contact(g: Graph, node: URIRef, contact: ContactPoint | None) -> URIRef | None:
    if contact is None:
        return None
    g.add((node, RDF.type, VCARD.Kind))
    g.add((node, VCARD.fn, Lit(contact.name.strip())))
    g.add((node, VCARD.hasEmail, URIRef(f"mailto:{contact.email}")))
    if contact.url is not None:
        g.add((node, VCARD.hasURL, URIRef(str(contact.url))))
    return node


def _text(g: Graph, subject: URIRef | BNode, predicate: URIRef, value: str | None) -> None:
    """A literal only if it says something: a blank title is no title (the check agrees)."""
    if value and value.strip():
        g.add((subject, predicate, Lit(value.strip())))


def _when(moment: datetime) -> Lit:
    return Lit(moment.isoformat(), datatype=XSD.dateTime)
