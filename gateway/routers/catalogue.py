"""The node's GDI / HealthDCAT-AP catalogue: ``GET /catalogue`` and ``GET /catalogue/datasets/{dataset_id}``.

Public, like ``/datasets``: every released dataset as a ``dcat:Dataset`` (``infra/catalogue.py``
says what each property comes from), with its distributions (the DRS bundle of its files and,
once the discovery index holds it, its Beacon dataset) and the node's DRS and Beacon as
``dcat:DataService``. ``/catalogue`` is the ``dcat:Catalog`` of them all; a dataset's own entry
is at its IRI, ``/catalogue/datasets/{id}``.

Formats by ``Accept``: Turtle (``text/turtle``, also for no ``Accept`` or ``*/*``), JSON-LD
(``application/ld+json``) and RDF/XML (``application/rdf+xml``), with q-values and wildcards as
RFC 9110 has them; anything else is 406 (an RFC 7807 problem naming the three). A dataset
that is not released (unknown, only registered, or withdrawn) is 404: a withdrawn dataset leaves
the catalogue at once, its events stay on the log.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from genomebus.gateway.deps import PoolDep, SettingsDep
from genomebus.gateway.problems import Problem, problem_responses
from genomebus.infra import catalogue
from genomebus.infra.catalogue import MEDIA_TYPES, Node
from genomebus.infra.settings import Settings
from genomebus.schemas.base import PID_PATTERN

router = APIRouter(tags=["catalogue"])

DEFAULT_MEDIA_TYPE = next(iter(MEDIA_TYPES))
_RDF: dict[int | str, dict[str, Any]] = {200: {
    "description": "The catalogue graph, in the format the Accept header asks for",
    "content": {media_type: {"schema": {"type": "string"}} for media_type in MEDIA_TYPES},
    "headers": {"Vary": {"description": "Accept: the format depends on it", "schema": {"type": "string"}}},
}}


def negotiate(accept: str | None) -> str | None:
    """The media type to answer ``accept`` with (the server's order breaks ties), or None: 406."""
    if accept is None or not accept.strip():
        return DEFAULT_MEDIA_TYPE
    ranges = [r for r in (_media_range(part) for part in accept.split(",")) if r is not None]
    best, best_q = None, 0.0
    for offer in MEDIA_TYPES:
        q = _quality(offer, ranges)
        if q > best_q:
            best, best_q = offer, q
    return best


def _media_range(part: str) -> tuple[str, float] | None:
    """``type/subtype`` and its q from one element of ``Accept`` (None: not a media range)."""
    name, *parameters = (p.strip() for p in part.split(";"))
    if name.count("/") != 1:
        return None
    q = 1.0
    for parameter in parameters:
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "q":
            try:
                q = float(value)
            except ValueError:
                return None
            if not 0.0 <= q <= 1.0:
                return None
    return name.lower(), q


def _quality(offer: str, ranges: list[tuple[str, float]]) -> float:
    """The q of the most specific range that matches ``offer`` (0 if none does)."""
    kind = offer.split("/")[0]
    for pattern in (offer, f"{kind}/*", "*/*"):
        found = [q for name, q in ranges if name == pattern]
        if found:
            return max(found)
    return 0.0


def _media_type(request: Request) -> str:
    media_type = negotiate(request.headers.get("accept"))
    if media_type is None:
        raise Problem(406, "not-acceptable",
                      f"the catalogue is served as {', '.join(MEDIA_TYPES)}; ask for one of them in Accept",
                      acceptable=list(MEDIA_TYPES))
    return media_type


def _node(request: Request, settings: Settings) -> Node:
    """The node as its clients reach it (the public URL when one is configured)."""
    base = settings.gateway_public_url or str(request.base_url)
    return Node.of(settings, base)


def _answer(graph: Any, media_type: str) -> Response:
    return Response(catalogue.serialize(graph, media_type), media_type=media_type, headers={"Vary": "Accept"})


@router.get("/catalogue", response_class=Response, responses={**_RDF, **problem_responses(406, 503)})
async def get_catalogue(request: Request, pool: PoolDep, settings: SettingsDep) -> Response:
    """The dcat:Catalog of every released dataset (GDI / HealthDCAT-AP), in Turtle, JSON-LD or RDF/XML."""
    media_type = _media_type(request)
    return _answer(await catalogue.catalogue(pool, _node(request, settings)), media_type)


@router.get("/catalogue/datasets/{dataset_id}", response_class=Response,
            responses={**_RDF, **problem_responses(404, 406, 503)})
async def get_catalogue_dataset(
    request: Request, pool: PoolDep, settings: SettingsDep,
    dataset_id: Annotated[str, Path(pattern=PID_PATTERN, description="The dataset's 1+MG PID")],
) -> Response:
    """One released dataset's catalogue entry, with its distributions and the services that serve them."""
    media_type = _media_type(request)
    graph = await catalogue.dataset_entry(pool, _node(request, settings), dataset_id)
    if graph is None:
        raise Problem(404, "dataset-not-in-catalogue",
                      f"{dataset_id} is not in this node's catalogue: only released datasets are (is it withdrawn, "
                      "or not released yet?)")
    return _answer(graph, media_type)
