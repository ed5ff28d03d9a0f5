"""Federated discovery under ``/beacon/v2/federated``: one Beacon query to this node and to every peer at once.

``GET``/``POST /beacon/v2/federated/{entry_type}`` takes the same query as ``/beacon/v2/{entry_type}``
and sends it, concurrently, to this node's own Beacon (in-process, ``beacon.run_query``) and to
``POST <peer url>/{entry_type}`` of every peer. Whatever has answered when the deadline
(``beacon_federation_deadline_s``) passes is merged into one ``beaconResultsetsResponse``:

- every result set of every node that answered, tagged with its node in ``info.node``, unchanged
  otherwise (each node decides its own granularity, counts and rounding: a peer's answer is never
  made more precise or more detailed here);
- ``responseSummary.exists`` when any node found something; ``numTotalResults`` only when every
  node that answered gave a count;
- ``meta.returnedGranularity`` the least detailed of the nodes' (so it never exceeds what any of
  them let the caller see);
- ``info.nodes``: one status per node, this node first: ``ok``, ``timeout`` (no answer by the
  deadline), ``error`` (down, a 5xx, a refused query, something that is not a Beacon response)
  or ``unauthorized`` (the peer refused the credential, or needs one it was not sent), with the
  HTTP status, a one-line detail and the time it took.

A slow or failing peer never fails the whole answer. This node's own answer does decide whether
the request is acceptable at all: a query it cannot read (400), a credential it refuses (401) or
a spent query budget (429) is the answer, as it would be from ``/beacon/v2``. A bearer token is
verified here before anything is sent, so a token this node refuses never leaves it.

Credentials. The caller's ``Authorization`` header goes only to peers configured with
``forward_credentials`` (peers trusting the same login issuers), and in the production profile
only over https. No other header of the caller is sent anywhere; redirects are not followed (a
forwarded token never reaches a host it was not meant for). Peers without it are asked
anonymously and answer what an anonymous caller may see. A peer's budget counts this node's
address, not the caller's: federated queries from one node share the peer's per-IP budget.

Peers. ``beacon_peers`` from the settings, plus the peers file (``beacon_peers_path``: in the
local profile ``<data_dir>/beacon-peers.json``), a JSON list of ``{name, url, forward_credentials}``
read again whenever it changes, so a node is added without a restart. A file that cannot be read
is reported in ``info.warnings`` and the configured peers are still asked; a name given twice keeps
its first definition (the settings' before the file's); this node's own name is never a peer.
Peers are asked at their plain Beacon endpoints, never at their federated ones: a query goes one
hop, whatever the peers' own peers are.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, Body, Depends, Request
from pydantic import TypeAdapter, ValidationError

from genomebus.gateway.beacon_model import API_VERSION, ENTRY_TYPES
from genomebus.gateway.beacon_response import PRECISIONS
from genomebus.gateway.deps import SettingsDep
from genomebus.gateway.problems import Problem, problem_responses
from genomebus.gateway.routers import beacon
from genomebus.infra.settings import BeaconPeer, Settings

log = logging.getLogger("genomebus.gateway.beacon_federated")

PREFIX = "/beacon/v2/federated"
GRANULARITIES = ("boolean", "count", "record")
MAX_PEER_RESPONSE_BYTES = 16 << 20
"""A peer's answer larger than this is an error, not something to hold in memory."""
CALLER_FAULTS = frozenset({400, 401, 429})
"""This node's own refusals that are the answer to the whole request."""

Status = Literal["ok", "timeout", "error", "unauthorized"]
OwnBeacon = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
"""This node's Beacon, in-process: (entry type, request body) → the whole Beacon response; raises ``Problem``."""

router = APIRouter(prefix=PREFIX, tags=["Beacon (federated)"])


# -- the answers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeAnswer:
    """What one node answered (or did not) to a federated query."""

    node: str
    url: str
    status: Status
    elapsed_s: float
    response: dict[str, Any] | None = None
    http_status: int | None = None
    detail: str | None = None
    own: bool = False
    credentials_forwarded: bool = False

    @property
    def summary(self) -> dict[str, Any]:
        return (self.response or {}).get("responseSummary") or {}

    @property
    def granularity(self) -> str:
        returned = ((self.response or {}).get("meta") or {}).get("returnedGranularity")
        return returned if returned in GRANULARITIES else "boolean"

    @property
    def result_sets(self) -> list[dict[str, Any]]:
        return self._listed("resultSets")

    @property
    def warnings(self) -> list[Any]:
        """What the node said it did not use or could not do (unknown filters, records unavailable, ...)."""
        info = (self.response or {}).get("info")
        found = info.get("warnings") if isinstance(info, dict) else None
        return list(found) if isinstance(found, list) else []

    @property
    def collections(self) -> list[dict[str, Any]] | None:
        """The collections (datasets) the node listed; None when its answer has none (boolean or count)."""
        found = ((self.response or {}).get("response") or {}).get("collections")
        return self._listed("collections") if isinstance(found, list) else None

    def _listed(self, name: str) -> list[dict[str, Any]]:
        items = ((self.response or {}).get("response") or {}).get(name)
        return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []

    def described(self) -> dict[str, Any]:
        """The node's line in ``info.nodes``."""
        line: dict[str, Any] = {"node": self.node, "url": self.url, "status": self.status,
                                "elapsedSeconds": round(self.elapsed_s, 3)}
        if self.own:
            line["self"] = True
        else:
            line["credentialsForwarded"] = self.credentials_forwarded
        if self.http_status is not None:
            line["httpStatus"] = self.http_status
        if self.detail:
            line["detail"] = self.detail
        if self.status == "ok":
            meta = (self.response or {}).get("meta") or {}
            if isinstance(meta.get("beaconId"), str):
                line["beaconId"] = meta["beaconId"]
            line["returnedGranularity"] = self.granularity
            line["exists"] = bool(self.summary.get("exists"))
            if isinstance(self.summary.get("numTotalResults"), int):
                line["numTotalResults"] = self.summary["numTotalResults"]
            if self.collections is not None:
                line["collections"] = len(self.collections)
            else:
                line["resultSets"] = len(self.result_sets)
        return line


def beacon_response(body: Any) -> bool:
    """Is this a Beacon answer to a query (``meta`` and a boolean ``responseSummary.exists``)?"""
    return (isinstance(body, dict) and isinstance(body.get("meta"), dict)
            and isinstance(body.get("responseSummary"), dict)
            and isinstance(body["responseSummary"].get("exists"), bool))


def error_message(body: Any) -> str | None:
    """The message of a Beacon error (``error.errorMessage``) or of an RFC 7807 problem (``detail``)."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("errorMessage"), str):
        return error["errorMessage"]
    return body["detail"] if isinstance(body.get("detail"), str) else None


# -- asking -----------------------------------------------------------------------------------------


def forwards_credentials(peer: BeaconPeer, settings: Settings) -> bool:
    """Send the caller's token to ``peer``? Only if configured so, and never in plain text in production."""
    return peer.forward_credentials and (settings.profile == "local" or peer.url.lower().startswith("https://"))


async def ask_peer(http: httpx.AsyncClient, peer: BeaconPeer, entry_type: str, body: dict[str, Any], *,
                   authorization: str | None) -> NodeAnswer:
    """``POST <peer>/{entry_type}``; every way it can end is a ``NodeAnswer`` (timeouts too, if httpx's come first)."""
    url = f"{peer.url.rstrip('/')}/{entry_type}"
    headers = {"Accept": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    started = time.monotonic()

    def answer(status: Status, **kwargs: Any) -> NodeAnswer:
        return NodeAnswer(peer.name, peer.url, status, time.monotonic() - started,
                          credentials_forwarded=authorization is not None, **kwargs)

    try:
        async with http.stream("POST", url, json=body, headers=headers) as response:
            raw = await _bounded(response)
    except httpx.TimeoutException:
        return answer("timeout", detail="no answer in time")
    except httpx.TransportError as exc:
        return answer("error", detail=f"does not answer ({type(exc).__name__}: {exc or 'no detail'})")
    except _TooLarge:
        return answer("error", detail=f"answered more than {MAX_PEER_RESPONSE_BYTES} bytes")
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    status = response.status_code
    message = error_message(parsed)
    if status in (401, 403):
        if authorization is not None:
            return answer("unauthorized", http_status=status, detail=message or "refused the forwarded credential")
        return answer("unauthorized", http_status=status,
                      detail=f"{message or 'needs a credential'} (asked without one: this node forwards no "
                             "credential to it)")
    if status == 429:
        retry = response.headers.get("retry-after")
        return answer("error", http_status=status,
                      detail=f"query budget spent at the peer{f' (retry after {retry} s)' if retry else ''}"
                             + (f": {message}" if message else ""))
    if status >= 400:
        return answer("error", http_status=status, detail=message or f"answered {status} {response.reason_phrase}")
    if not beacon_response(parsed):
        return answer("error", http_status=status, detail="answered something that is not a Beacon response")
    return answer("ok", http_status=status, response=parsed)


class _TooLarge(Exception):
    pass


async def _bounded(response: httpx.Response) -> bytes:
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_PEER_RESPONSE_BYTES:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def ask_self(own: OwnBeacon, node: str, url: str, entry_type: str, body: dict[str, Any]) -> NodeAnswer:
    """This node's Beacon, in-process. A refusal that is the caller's (``CALLER_FAULTS``) is raised, not kept."""
    started = time.monotonic()
    try:
        response = await own(entry_type, body)
    except Problem as exc:
        if exc.status in CALLER_FAULTS:
            raise
        return NodeAnswer(node, url, "error", time.monotonic() - started, http_status=exc.status, detail=exc.detail,
                          own=True)
    except Exception:  # noqa: BLE001 - this node failing is one node's error, the peers' answers still count
        log.exception("this node's own Beacon failed in a federated query")
        return NodeAnswer(node, url, "error", time.monotonic() - started, http_status=500,
                          detail="this node's Beacon could not answer", own=True)
    return NodeAnswer(node, url, "ok", time.monotonic() - started, response=response, http_status=200, own=True)


async def federate(own: Callable[[], Awaitable[NodeAnswer]], peers: Sequence[tuple[BeaconPeer, Callable[[],
                   Awaitable[NodeAnswer]]]], *, node: str, url: str, deadline_s: float) -> list[NodeAnswer]:
    """Ask this node and every peer at once; by ``deadline_s`` whoever has not answered is a ``timeout``.

    When this node's own answer is a refusal of the caller (``ask_self`` raises it), the peers are
    cancelled and the refusal is raised: it is the answer to the whole request.
    """
    started = time.monotonic()
    own_task = asyncio.ensure_future(own())
    tasks = {own_task: (node, url)}
    for peer, ask in peers:
        tasks[asyncio.ensure_future(ask())] = (peer.name, peer.url)
    pending = set(tasks)
    try:
        while pending:
            remaining = deadline_s - (time.monotonic() - started)
            if remaining <= 0:
                break
            done, pending = await asyncio.wait(pending, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            if own_task in done and own_task.exception() is not None:
                raise own_task.exception()  # type: ignore[misc]
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    answers = []
    for task, (name, where) in tasks.items():
        if task.cancelled() or not task.done():
            answers.append(NodeAnswer(name, where, "timeout", time.monotonic() - started, own=task is own_task,
                                      detail=f"no answer within the deadline of {deadline_s:g} s"))
        elif task.exception() is not None:  # a peer's ask never raises; be safe anyway
            answers.append(NodeAnswer(name, where, "error", time.monotonic() - started,
                                      detail=f"{type(task.exception()).__name__}"))
        else:
            answers.append(task.result())
    return answers


# -- merging -----------------------------------------------------------------------------------------


def received_request_summary(body: Mapping[str, Any]) -> dict[str, Any]:
    """The request as this node understood it (``beaconReceivedRequestSummary``), when no own answer says it."""
    meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
    query = body.get("query") if isinstance(body.get("query"), dict) else {}
    pagination = query.get("pagination") if isinstance(query.get("pagination"), dict) else {}
    summary: dict[str, Any] = {
        "apiVersion": meta.get("apiVersion") if isinstance(meta.get("apiVersion"), str) else API_VERSION,
        "requestedSchemas": meta.get("requestedSchemas") if isinstance(meta.get("requestedSchemas"), list) else [],
        "pagination": {k: v for k, v in pagination.items() if k in ("skip", "limit") and isinstance(v, int)},
        "requestedGranularity": query.get("requestedGranularity")
        if query.get("requestedGranularity") in GRANULARITIES else "boolean",
    }
    # requestParameters are not echoed: Beacon 2.0's schema wants an object per parameter, which
    # `start: [123]` is not; the nodes' own summaries (under info.nodes' answers) say how each read them.
    if isinstance(query.get("filters"), list) and all(isinstance(f, dict) for f in query["filters"]):
        summary["filters"] = query["filters"]
    if query.get("includeResultsetResponses") in ("ALL", "HIT", "MISS", "NONE"):
        summary["includeResultsetResponses"] = query["includeResultsetResponses"]
    if isinstance(query.get("testMode"), bool):
        summary["testMode"] = query["testMode"]
    return summary


def merge(answers: Sequence[NodeAnswer], *, beacon_id: str, entry_type: str, body: Mapping[str, Any],
          deadline_s: float, warnings: Sequence[str] = ()) -> dict[str, Any]:
    """One Beacon response from every node's answer, with each node's status in ``info.nodes``.

    Result sets (datasets for ``datasets``: collections) keep every member a node gave them and gain
    ``info.node``. The summary adds up the nodes' counts only when every node that answered counted,
    with the least precise of their ``countPrecision`` and all their ``countAdjustedTo``.
    """
    ok = [a for a in answers if a.status == "ok"]
    own = next((a for a in ok if a.own), None)
    granularity = min((a.granularity for a in ok), key=GRANULARITIES.index, default="boolean")
    summary: dict[str, Any] = {"exists": any(a.summary.get("exists") is True for a in ok)}
    counts = [a.summary.get("numTotalResults") for a in ok]
    if ok and granularity != "boolean" and all(isinstance(c, int) and not isinstance(c, bool) for c in counts):
        summary["numTotalResults"] = sum(counts)  # type: ignore[arg-type]
        given = [a.summary.get("countPrecision") for a in ok]
        summary["countPrecision"] = max((p if p in PRECISIONS else "exact" for p in given), key=PRECISIONS.index)
        adjusted = [item for a in ok for item in a.summary.get("countAdjustedTo") or ()
                    if isinstance(item, int | str) and not isinstance(item, bool)]
        if adjusted:
            summary["countAdjustedTo"] = list(dict.fromkeys(adjusted))
    schemas: list[Any] = []
    for a in ok:
        for schema in (a.response or {}).get("meta", {}).get("returnedSchemas") or ():
            if schema not in schemas:
                schemas.append(schema)
    own_meta = (own.response or {}).get("meta", {}) if own else {}
    meta = {
        "beaconId": beacon_id,
        "apiVersion": own_meta.get("apiVersion") or API_VERSION,
        "returnedSchemas": schemas or [ENTRY_TYPES[entry_type].schema],
        "returnedGranularity": granularity,
        "receivedRequestSummary": own_meta.get("receivedRequestSummary") or received_request_summary(body),
    }
    if isinstance(own_meta.get("testMode"), bool):
        meta["testMode"] = own_meta["testMode"]
    merged: dict[str, Any] = {"meta": meta, "responseSummary": summary}
    if ENTRY_TYPES[entry_type].collection:
        listed = [(a, a.collections) for a in ok if a.collections is not None]
        if listed:
            merged["response"] = {"collections": [_tagged(item, a.node) for a, items in listed for item in items]}
    else:
        merged["response"] = {"resultSets": [_tagged(rs, a.node) for a in ok for rs in a.result_sets]}
    info: dict[str, Any] = {"federated": True, "deadlineSeconds": deadline_s,
                            "nodes": [a.described() for a in answers]}
    noted = [{"code": "peer_configuration", "message": w} for w in warnings]
    noted += [_tagged_warning(w, a.node) for a in ok for w in a.warnings]
    if noted:
        info["warnings"] = noted
    merged["info"] = info
    return merged


def _tagged_warning(warning: Any, node: str) -> dict[str, Any]:
    """A node's warning (genomebus: ``{code, message, filterId}``; other Beacons: anything) with its node."""
    if isinstance(warning, dict):
        return {**warning, "node": node}
    return {"message": str(warning), "node": node}


def _tagged(item: dict[str, Any], node: str) -> dict[str, Any]:
    info = item.get("info") if isinstance(item.get("info"), dict) else {}
    return {**item, "info": {**info, "node": node}}


# -- peers ---------------------------------------------------------------------------------------------

_PEER_LIST = TypeAdapter(list[BeaconPeer])


@dataclass
class PeersFile:
    """The peers file, read again whenever its size, time or inode change (one ``stat`` per query)."""

    path: Path | None
    _seen: tuple[int, int, int] | None = None
    _peers: tuple[BeaconPeer, ...] = ()
    _problem: str | None = None

    def current(self) -> tuple[tuple[BeaconPeer, ...], str | None]:
        """The file's peers and, if it cannot be used, why (then no peer of it is asked)."""
        if self.path is None:
            return (), None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._seen, self._peers, self._problem = None, (), None
            return (), None
        except OSError as exc:
            return (), f"the peers file {self.path} cannot be read ({exc.strerror or exc})"
        seen = (st.st_mtime_ns, st.st_size, st.st_ino)
        if seen != self._seen:
            self._peers, self._problem = read_peers(self.path)
            self._seen = seen
            if self._problem:
                log.warning("%s", self._problem)
        return self._peers, self._problem


def read_peers(path: Path) -> tuple[tuple[BeaconPeer, ...], str | None]:
    """The peers a file lists (a JSON list, or an object with a ``peers`` list), or why none."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return (), f"the peers file {path} cannot be read ({exc})"
    except ValueError as exc:
        return (), f"the peers file {path} is not JSON ({exc}); write a list of {{name, url, forward_credentials}}"
    if isinstance(document, dict) and "peers" in document:
        document = document["peers"]
    try:
        return tuple(_PEER_LIST.validate_python(document)), None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return (), (f"the peers file {path} is not a list of {{name, url, forward_credentials}} "
                    f"({where or 'the document'}: {first['msg']}); none of its peers is asked")


def peers_of(settings: Settings, peers_file: PeersFile) -> tuple[list[BeaconPeer], list[str]]:
    """The peers to ask (settings first, then the file; each name once; never this node) and warnings."""
    from_file, problem = peers_file.current()
    warnings = [problem] if problem else []
    peers: list[BeaconPeer] = []
    names = {settings.node_id}
    for peer in (*settings.beacon_peers, *from_file):
        if peer.name == settings.node_id:
            warnings.append(f"peer {peer.name} ({peer.url}) has this node's own name; it is not asked")
        elif peer.name in names:
            warnings.append(f"peer {peer.name} is defined twice; {peer.url} is not asked")
        else:
            names.add(peer.name)
            peers.append(peer)
    return peers, warnings


def _peers_file(request: Request) -> PeersFile:
    settings: Settings = request.app.state.settings
    state = request.app.state
    current = getattr(state, "beacon_peers_file", None)
    if current is None or current.path != settings.beacon_peers_path:
        current = PeersFile(settings.beacon_peers_path)
        state.beacon_peers_file = current
    return current


# -- this node's own Beacon ----------------------------------------------------------------------------


def own_beacon(request: Request) -> OwnBeacon:
    """This node's Beacon, answering in-process for the caller of ``request`` (its budget, its credential)."""

    async def ask(entry_type: str, body: dict[str, Any]) -> dict[str, Any]:
        return await beacon.run_query(request, entry_type, body)

    return ask


OwnBeaconDep = Annotated[OwnBeacon, Depends(own_beacon)]
PeersFileDep = Annotated[PeersFile, Depends(_peers_file)]


# -- routes ------------------------------------------------------------------------------------------


async def answer(request: Request, settings: Settings, own: OwnBeacon, peers_file: PeersFile, entry_type: str,
                 body: dict[str, Any]) -> dict[str, Any]:
    """The federated answer to ``body`` for ``entry_type``."""
    authorization = request.headers.get("authorization")
    if authorization is not None:  # a token this node refuses is refused here, before it goes anywhere
        await request.app.state.enforcer.principal(request)
    body = {**body, "meta": body["meta"] if isinstance(body.get("meta"), dict) else {"apiVersion": API_VERSION}}
    peers, warnings = peers_of(settings, peers_file)
    deadline = settings.beacon_federation_deadline_s
    here = beacon.base_url(request, settings)
    async with httpx.AsyncClient(timeout=httpx.Timeout(deadline + 1.0), follow_redirects=False,
                                 headers={"User-Agent": f"genomebus-federation ({settings.beacon_identifier})"}
                                 ) as http:
        def peer_call(peer: BeaconPeer) -> Callable[[], Awaitable[NodeAnswer]]:
            forward = authorization if forwards_credentials(peer, settings) else None
            return lambda: ask_peer(http, peer, entry_type, body, authorization=forward)

        answers = await federate(lambda: ask_self(own, settings.node_id, here, entry_type, body),
                                 [(peer, peer_call(peer)) for peer in peers],
                                 node=settings.node_id, url=here, deadline_s=deadline)
    return merge(answers, beacon_id=settings.beacon_identifier, entry_type=entry_type, body=body,
                 deadline_s=deadline, warnings=warnings)


_QUERY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The merged answer of every node (a Beacon response: result sets, or collections for "
                         "datasets, tagged with their node in `info.node`), a status per node in `info.nodes`"},
    **problem_responses(400, 401, 429, 503),
}
_QUERY_RESPONSES[429] = {**_QUERY_RESPONSES[429], "headers": {"Retry-After": {
    "description": "Seconds until this node's query budget has room again", "schema": {"type": "string"}}}}


def _routes(entry_type: str) -> None:
    async def get(request: Request, settings: SettingsDep, own: OwnBeaconDep, peers_file: PeersFileDep,
                  body: beacon.GetBody) -> dict[str, Any]:
        return await answer(request, settings, own, peers_file, entry_type, body)

    async def post(request: Request, settings: SettingsDep, own: OwnBeaconDep, peers_file: PeersFileDep,
                   body: beacon.PostBody = None) -> dict[str, Any]:
        posted = body.model_dump(by_alias=True, exclude_unset=True) if body is not None else {}
        return await answer(request, settings, own, peers_file, entry_type, posted)

    doc = (f"`{entry_type}` from this node and every peer at once, merged; each node's status in `info.nodes`; "
           "answered by the federation deadline whatever the peers do")
    router.add_api_route(f"/{entry_type}", get, methods=["GET"], name=f"federated_{entry_type}_get",
                         summary=f"Federated {entry_type} (GET)", description=doc, responses=_QUERY_RESPONSES)
    router.add_api_route(f"/{entry_type}", post, methods=["POST"], name=f"federated_{entry_type}_post",
                         summary=f"Federated {entry_type} (POST)", description=doc, responses=_QUERY_RESPONSES)


for _entry_type in ENTRY_TYPES:
    _routes(_entry_type)


@router.get("", include_in_schema=False)
@router.get("/", summary="The federation: this node and its peers",
            responses={200: {"description": "beaconInfoResponse; the nodes asked in `response.info.nodes`"}})
async def federation_info(request: Request, settings: SettingsDep, peers_file: PeersFileDep) -> dict[str, Any]:
    peers, warnings = peers_of(settings, peers_file)
    here = beacon.base_url(request, settings)
    nodes = [{"node": settings.node_id, "url": here, "self": True}] + [
        {"node": p.name, "url": p.url, "forwardCredentials": forwards_credentials(p, settings)} for p in peers]
    info: dict[str, Any] = {"deadlineSeconds": settings.beacon_federation_deadline_s, "entryTypes": list(ENTRY_TYPES),
                            "nodes": nodes}
    if warnings:
        info["warnings"] = [{"code": "peer_configuration", "message": w} for w in warnings]
    return {
        "meta": {"beaconId": settings.beacon_identifier, "apiVersion": API_VERSION, "returnedSchemas": []},
        "response": {
            "id": settings.beacon_identifier, "name": f"{settings.node_name} (federated discovery)",
            "apiVersion": API_VERSION, "environment": "dev" if settings.profile == "local" else "prod",
            "organization": {"id": settings.beacon_identifier, "name": settings.organization_name},
            "description": "One Beacon query to this node and to every peer at once; a status per node.",
            "info": info,
        },
    }
