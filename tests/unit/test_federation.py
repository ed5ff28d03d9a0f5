"""Federated discovery over real local sockets: tiny in-process Beacons that answer, hang, fail or are not there.

The gateway's federated router runs in-process (``httpx.ASGITransport``); this node's own Beacon is a
stand-in for ``beacon.run_query`` (answering as FI); every peer is an HTTP server on a loopback port
of this process, which keeps every request it gets, so what was sent to whom (the body, the token)
is asserted, not assumed. The deadline is short (``DEADLINE``) so that the hanging peer costs the
suite little; a test that would wait past it is bounded by ``asyncio.wait_for``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from genomebus.gateway import problems
from genomebus.gateway.problems import Problem
from genomebus.gateway.routers import beacon_federated as federated
from genomebus.infra.settings import BeaconPeer, Settings
from tests.beacon_spec import RESPONSES, errors, response_errors

DEADLINE = 1.0
GOOD_TOKEN = "Bearer alice-token"
BOUND = 10 * DEADLINE
"""No federated answer may take this long: a test waits for it no longer (it would otherwise hang)."""


def beacon_answer(node: str, *, count: int | None, exists: bool = True, granularity: str = "count",
                  precision: str = "rounded", datasets: tuple[str, ...] | None = None) -> dict[str, Any]:
    """What a genomebus Beacon answers for ``g_variants``: a result set per dataset, counts as it shows them."""
    datasets = datasets or (f"GDI-{node}-DATASET-001",)
    sets = []
    for dataset in datasets:
        rs: dict[str, Any] = {"id": dataset, "setType": "dataset", "exists": exists,
                              "info": {"returnedGranularity": granularity, "accessRights": "controlled"}}
        if granularity != "boolean":
            rs |= {"resultsCount": count or 0, "countPrecision": precision}
            if precision == "rounded":
                rs["countAdjustedTo"] = ["rounded up to a multiple of 10"]
        if granularity == "record":
            rs["results"] = []
        sets.append(rs)
    summary: dict[str, Any] = {"exists": exists}
    if granularity != "boolean":
        summary |= {"numTotalResults": (count or 0) * len(datasets), "countPrecision": precision}
        if precision == "rounded":
            summary["countAdjustedTo"] = ["rounded up to a multiple of 10"]
    return {
        "meta": {"beaconId": f"org.example.genomebus.{node.lower()}", "apiVersion": "v2.0.0",
                 "returnedSchemas": [{"entityType": "genomicVariant", "schema": "ga4gh-beacon-variant-v2.0.0"}],
                 "returnedGranularity": granularity,
                 "receivedRequestSummary": {"apiVersion": "v2.0.0", "requestedSchemas": [], "pagination": {},
                                            "requestedGranularity": "count"}},
        "responseSummary": summary,
        "response": {"resultSets": sets},
    }


# -- tiny peers ------------------------------------------------------------------------------------------


@dataclass
class TinyPeer:
    """An HTTP/1.1 server on a loopback port: ``behaviour`` is ok, hang, fail (500), refuse (401 without
    ``GOOD_TOKEN``), refuse-all (401), junk (200 that is not a Beacon answer) or down (nothing listens)."""

    name: str
    behaviour: str
    answer: dict[str, Any] | None = None
    received: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0
    _server: asyncio.base_events.Server | None = None
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/beacon/v2"

    def peer(self, *, forward: bool = False) -> BeaconPeer:
        return BeaconPeer(name=self.name, url=self.url, forward_credentials=forward)

    async def start(self) -> None:
        if self.behaviour == "down":
            with socket.socket() as s:  # a port nothing listens on: connections are refused
                s.bind(("127.0.0.1", 0))
                self.port = s.getsockname()[1]
            return
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            method, path, _ = head[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:] if line)}
            raw = await reader.readexactly(int(headers.get("content-length", "0")))
            self.received.append({"method": method, "path": path, "headers": headers,
                                  "body": json.loads(raw) if raw else None})
            if self.behaviour == "hang":
                await self._release.wait()
                return
            status, body = self._reply(headers)
            payload = json.dumps(body).encode()
            writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}"
                         "\r\nConnection: close\r\n\r\n".encode() + payload)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _reply(self, headers: dict[str, str]) -> tuple[int, Any]:
        if self.behaviour == "fail":
            return 500, {"meta": {}, "error": {"errorCode": 500, "errorMessage": "the index is rebuilding"}}
        refused = self.behaviour == "refuse-all" or (
            self.behaviour == "refuse" and headers.get("authorization") != GOOD_TOKEN)
        if refused:
            return 401, {"meta": {}, "error": {"errorCode": 401, "errorMessage": "the credential is not accepted"}}
        if self.behaviour == "junk":
            return 200, {"hello": "this is not a Beacon"}
        return 200, self.answer or beacon_answer(self.name, count=10)


@contextlib.asynccontextmanager
async def peers(*specs: tuple[str, str]) -> AsyncIterator[list[TinyPeer]]:
    started = [TinyPeer(name, behaviour) for name, behaviour in specs]
    for p in started:
        await p.start()
    try:
        yield started
    finally:
        for p in started:
            await p.stop()


# -- the gateway's side ----------------------------------------------------------------------------------


class FakeEnforcer:
    """The enforcement point's ``principal``: ``GOOD_TOKEN`` is a verified login, anything else a 401."""

    async def principal(self, request: Request) -> object:
        if request.headers.get("authorization") != GOOD_TOKEN:
            raise Problem(401, "invalid-token", "the credential is not accepted: bad signature")
        return object()


@dataclass
class OwnBeacon:
    """This node's Beacon as ``run_query`` is called: it keeps what it was asked, answers or raises."""

    answer: dict[str, Any] | None = None
    raises: Problem | None = None
    delay: float = 0.0
    asked: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def __call__(self, entry_type: str, body: dict[str, Any]) -> dict[str, Any]:
        self.asked.append((entry_type, body))
        await asyncio.sleep(self.delay)
        if self.raises is not None:
            raise self.raises
        return self.answer or beacon_answer("FI", count=20)


def settings_for(tmp_path: Path, *configured: BeaconPeer, deadline: float = DEADLINE) -> Settings:
    return Settings(data_dir=tmp_path, node_id="FI", beacon_peers=configured, beacon_federation_deadline_s=deadline)


@contextlib.asynccontextmanager
async def gateway(settings: Settings, own: OwnBeacon | None = None) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    problems.install(app)
    app.include_router(federated.router)
    app.state.settings = settings
    app.state.enforcer = FakeEnforcer()
    beacon = own or OwnBeacon()
    app.dependency_overrides[federated.own_beacon] = lambda: beacon
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fi.test") as client:
        yield client


QUERY = {"meta": {"apiVersion": "v2.0.0"},
         "query": {"requestParameters": {"referenceName": "21", "start": [10000062], "referenceBases": "A",
                                         "alternateBases": "G"}, "requestedGranularity": "count"}}


async def post(client: httpx.AsyncClient, body: dict[str, Any] = QUERY, headers: dict[str, str] | None = None,
               entry_type: str = "g_variants") -> httpx.Response:
    return await asyncio.wait_for(client.post(f"/beacon/v2/federated/{entry_type}", json=body, headers=headers),
                                  BOUND)


def nodes(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["node"]: n for n in body["info"]["nodes"]}


# -- the four peers of the issue ---------------------------------------------------------------------------


async def test_a_healthy_a_hanging_a_failing_and_a_down_peer_each_get_their_status_by_the_deadline(
        tmp_path: Path) -> None:
    async with peers(("SE", "ok"), ("NO", "hang"), ("DK", "fail"), ("EE", "down")) as (se, no, dk, ee):
        settings = settings_for(tmp_path, se.peer(), no.peer(), dk.peer(), ee.peer())
        async with gateway(settings) as client:
            response = await post(client)

    assert response.status_code == 200, response.text
    body = response.json()
    assert response_errors(body) == []
    status = {name: n["status"] for name, n in nodes(body).items()}
    assert status == {"FI": "ok", "SE": "ok", "NO": "timeout", "DK": "error", "EE": "error"}
    assert [n["node"] for n in body["info"]["nodes"]][0] == "FI" and nodes(body)["FI"]["self"] is True
    assert nodes(body)["NO"]["elapsedSeconds"] >= DEADLINE  # cut at the deadline, not answered
    assert nodes(body)["DK"]["httpStatus"] == 500 and "rebuilding" in nodes(body)["DK"]["detail"]
    assert "ConnectError" in nodes(body)["EE"]["detail"]
    # the query reached every live peer as sent, at its plain Beacon endpoint
    for peer in (se, no, dk):
        assert [(r["method"], r["path"], r["body"]) for r in peer.received] == [
            ("POST", "/beacon/v2/g_variants", QUERY)]
    # the answers of the two nodes that answered, each result set tagged with its node
    assert {(rs["id"], rs["info"]["node"]) for rs in body["response"]["resultSets"]} == {
        ("GDI-FI-DATASET-001", "FI"), ("GDI-SE-DATASET-001", "SE")}
    assert body["responseSummary"] == {"exists": True, "numTotalResults": 30, "countPrecision": "rounded",
                                       "countAdjustedTo": ["rounded up to a multiple of 10"]}
    assert body["meta"]["returnedGranularity"] == "count"
    assert body["meta"]["beaconId"] == settings.beacon_identifier


async def test_with_every_peer_failing_this_nodes_answer_still_comes(tmp_path: Path) -> None:
    async with peers(("NO", "hang"), ("DK", "fail"), ("LV", "junk")) as (no, dk, lv):
        async with gateway(settings_for(tmp_path, no.peer(), dk.peer(), lv.peer())) as client:
            body = (await post(client)).json()
    assert {name: n["status"] for name, n in nodes(body).items()} == {
        "FI": "ok", "NO": "timeout", "DK": "error", "LV": "error"}
    assert "not a Beacon response" in nodes(body)["LV"]["detail"]
    assert [rs["info"]["node"] for rs in body["response"]["resultSets"]] == ["FI"]
    assert response_errors(body) == []


async def test_this_node_slow_or_failing_is_one_status_among_others(tmp_path: Path) -> None:
    async with peers(("SE", "ok")) as (se,):
        settings = settings_for(tmp_path, se.peer())
        async with gateway(settings, OwnBeacon(delay=BOUND)) as client:
            slow = (await post(client)).json()
        async with gateway(settings, OwnBeacon(raises=Problem(503, "database-unavailable", "the index is down"))
                           ) as client:
            failing = (await post(client)).json()
    assert nodes(slow)["FI"]["status"] == "timeout" and nodes(slow)["SE"]["status"] == "ok"
    assert nodes(failing)["FI"] | {"elapsedSeconds": 0} == {
        "node": "FI", "url": "http://fi.test/beacon/v2", "status": "error", "self": True, "httpStatus": 503,
        "detail": "the index is down", "elapsedSeconds": 0}
    for body in (slow, failing):
        assert [rs["info"]["node"] for rs in body["response"]["resultSets"]] == ["SE"]
        assert body["responseSummary"]["numTotalResults"] == 10
        assert response_errors(body) == []


@pytest.mark.parametrize("status", [400, 429])
async def test_a_request_this_node_refuses_is_refused_whole(tmp_path: Path, status: int) -> None:
    refusal = Problem(status, "bad-request" if status == 400 else "budget-spent", f"refused with {status}",
                      headers={"Retry-After": "60"} if status == 429 else None)
    async with peers(("NO", "hang")) as (no,):
        async with gateway(settings_for(tmp_path, no.peer()), OwnBeacon(raises=refusal)) as client:
            response = await post(client)
    assert response.status_code == status
    assert "refused with" in response.text
    if status == 429:
        assert response.headers["retry-after"] == "60"


# -- credentials -----------------------------------------------------------------------------------------


async def test_the_callers_token_goes_only_to_peers_configured_for_it(tmp_path: Path) -> None:
    async with peers(("SE", "ok"), ("NO", "ok"), ("DK", "refuse")) as (se, no, dk):
        settings = settings_for(tmp_path, se.peer(forward=True), no.peer(), dk.peer())
        own = OwnBeacon()
        async with gateway(settings, own) as client:
            body = (await post(client, headers={"Authorization": GOOD_TOKEN, "Cookie": "session=1",
                                                "X-Forwarded-For": "10.1.2.3"})).json()
    assert se.received[0]["headers"]["authorization"] == GOOD_TOKEN
    assert "authorization" not in no.received[0]["headers"]
    assert "authorization" not in dk.received[0]["headers"]
    for peer in (se, no, dk):  # nothing else of the caller's travels
        assert not {"cookie", "x-forwarded-for"} & set(peer.received[0]["headers"])
    assert {name: (n["status"], n.get("credentialsForwarded")) for name, n in nodes(body).items()} == {
        "FI": ("ok", None), "SE": ("ok", True), "NO": ("ok", False), "DK": ("unauthorized", False)}
    assert "forwards no credential to it" in nodes(body)["DK"]["detail"]
    assert len(own.asked) == 1


async def test_a_peer_refusing_the_forwarded_token_or_wanting_one_is_unauthorized(tmp_path: Path) -> None:
    async with peers(("DK", "refuse-all"), ("NO", "refuse")) as (dk, no):
        async with gateway(settings_for(tmp_path, dk.peer(forward=True), no.peer())) as client:
            body = (await post(client, headers={"Authorization": GOOD_TOKEN})).json()
    assert dk.received[0]["headers"]["authorization"] == GOOD_TOKEN
    assert nodes(body)["DK"] | {"elapsedSeconds": 0} == {
        "node": "DK", "url": dk.url, "status": "unauthorized", "httpStatus": 401, "credentialsForwarded": True,
        "detail": "the credential is not accepted", "elapsedSeconds": 0}
    assert nodes(body)["NO"] | {"elapsedSeconds": 0} == {
        "node": "NO", "url": no.url, "status": "unauthorized", "httpStatus": 401, "credentialsForwarded": False,
        "detail": "the credential is not accepted (asked without one: this node forwards no credential to it)",
        "elapsedSeconds": 0}
    assert nodes(body)["FI"]["status"] == "ok"


async def test_a_token_this_node_refuses_never_leaves_it(tmp_path: Path) -> None:
    async with peers(("SE", "ok")) as (se,):
        own = OwnBeacon()
        async with gateway(settings_for(tmp_path, se.peer(forward=True)), own) as client:
            response = await post(client, headers={"Authorization": "Bearer forged"})
    assert response.status_code == 401
    assert se.received == [] and own.asked == []


async def test_production_forwards_credentials_over_https_only() -> None:
    production = Settings.model_construct(profile="production")
    local = Settings.model_construct(profile="local")
    plain = BeaconPeer(name="SE", url="http://beacon.se.example/beacon/v2", forward_credentials=True)
    tls = BeaconPeer(name="SE", url="https://beacon.se.example/beacon/v2", forward_credentials=True)
    unset = BeaconPeer(name="SE", url="https://beacon.se.example/beacon/v2")
    assert [federated.forwards_credentials(p, production) for p in (plain, tls, unset)] == [False, True, False]
    assert [federated.forwards_credentials(p, local) for p in (plain, tls, unset)] == [True, True, False]


# -- peers from the file ------------------------------------------------------------------------------------


async def test_the_peers_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    async with peers(("SE", "ok"), ("NO", "ok")) as (se, no):
        settings = settings_for(tmp_path)
        peers_file = tmp_path / "beacon-peers.json"
        async with gateway(settings) as client:
            alone = (await post(client)).json()
            peers_file.write_text(json.dumps([{"name": "SE", "url": se.url}]))
            with_se = (await post(client)).json()
            peers_file.write_text(json.dumps({"peers": [{"name": "SE", "url": se.url},
                                                        {"name": "NO", "url": no.url, "forward_credentials": True}]}))
            with_both = (await post(client)).json()
            info = (await client.get("/beacon/v2/federated/")).json()
            peers_file.write_text("[{'name': 'SE'")
            broken = (await post(client)).json()
            peers_file.unlink()
            removed = (await post(client)).json()
    assert list(nodes(alone)) == ["FI"]
    assert list(nodes(with_se)) == ["FI", "SE"]
    assert list(nodes(with_both)) == ["FI", "SE", "NO"]
    assert [(n["node"], n.get("forwardCredentials")) for n in info["response"]["info"]["nodes"]] == [
        ("FI", None), ("SE", False), ("NO", True)]
    assert errors(RESPONSES["info"], info) == []
    assert list(nodes(broken)) == ["FI"]
    assert broken["info"]["warnings"][0]["code"] == "peer_configuration"
    assert "is not JSON" in broken["info"]["warnings"][0]["message"]
    assert list(nodes(removed)) == ["FI"] and "warnings" not in removed["info"]
    assert len(se.received) == 2 and len(no.received) == 1


async def test_peers_are_named_once_and_never_after_this_node(tmp_path: Path) -> None:
    async with peers(("SE", "ok"), ("SE", "ok"), ("FI", "ok")) as (se, se_again, fi_again):
        (tmp_path / "beacon-peers.json").write_text(json.dumps([
            {"name": "SE", "url": se_again.url}, {"name": "FI", "url": fi_again.url}]))
        async with gateway(settings_for(tmp_path, se.peer())) as client:
            body = (await post(client)).json()
    assert list(nodes(body)) == ["FI", "SE"] and nodes(body)["SE"]["url"] == se.url
    assert len(se.received) == 1 and se_again.received == [] and fi_again.received == []
    assert any("defined twice" in w["message"] for w in body["info"]["warnings"])
    assert any("this node's own name" in w["message"] for w in body["info"]["warnings"])


def test_a_peers_file_that_is_not_a_peer_list_says_what_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "peers.json"
    path.write_text(json.dumps([{"name": "SE", "url": "https://se.example/beacon/v2", "forward": True}]))
    assert federated.read_peers(path)[0] == ()
    assert "0.forward" in federated.read_peers(path)[1]
    path.write_text(json.dumps([{"name": "SE", "url": "https://se.example/beacon/v2"}]))
    assert federated.read_peers(path) == ((BeaconPeer(name="SE", url="https://se.example/beacon/v2"),), None)


# -- GET, and the merge ------------------------------------------------------------------------------------------


async def test_a_get_is_sent_as_the_equivalent_post(tmp_path: Path) -> None:
    async with peers(("SE", "ok")) as (se,):
        own = OwnBeacon()
        async with gateway(settings_for(tmp_path, se.peer()), own) as client:
            response = await client.get("/beacon/v2/federated/individuals", params=[
                ("filters", "NCIT:C16576,HP:0001250"), ("skip", "0"), ("limit", "5"),
                ("requestedGranularity", "record"), ("testMode", "true")])
            bad = await client.get("/beacon/v2/federated/g_variants", params={"start": "x"})
    assert response.status_code == 200
    expected = {"meta": {"apiVersion": "v2.0.0"},
                "query": {"requestParameters": {}, "filters": ["NCIT:C16576", "HP:0001250"],
                          "pagination": {"skip": 0, "limit": 5}, "requestedGranularity": "record", "testMode": True}}
    assert se.received[0]["path"] == "/beacon/v2/individuals" and se.received[0]["body"] == expected
    assert own.asked == [("individuals", expected)]
    assert bad.status_code == 400 and len(se.received) == 1  # refused as /beacon/v2 refuses it, asked nowhere


async def test_datasets_are_merged_as_collections(tmp_path: Path) -> None:
    def collection(node: str, granularity: str) -> dict[str, Any]:
        found = {"meta": {**beacon_answer(node, count=1)["meta"], "returnedGranularity": granularity},
                 "responseSummary": {"exists": True, "numTotalResults": 1}}
        if granularity == "record":
            found["response"] = {"collections": [{"id": f"GDI-{node}-DATASET-001", "name": f"{node}'s"}]}
        return found

    peer = TinyPeer("SE", "ok", answer=collection("SE", "record"))
    await peer.start()
    try:
        async with gateway(settings_for(tmp_path, peer.peer()), OwnBeacon(answer=collection("FI", "record"))
                           ) as client:
            listed = (await post(client, {"query": {"requestedGranularity": "record"}}, entry_type="datasets")).json()
        async with gateway(settings_for(tmp_path, peer.peer()), OwnBeacon(answer=collection("FI", "count"))
                           ) as client:
            counted = (await post(client, {}, entry_type="datasets")).json()
    finally:
        await peer.stop()
    assert [(c["id"], c["info"]["node"]) for c in listed["response"]["collections"]] == [
        ("GDI-FI-DATASET-001", "FI"), ("GDI-SE-DATASET-001", "SE")]
    assert response_errors(listed) == []
    assert counted["meta"]["returnedGranularity"] == "count"
    assert [(c["id"], c["info"]["node"]) for c in counted["response"]["collections"]] == [("GDI-SE-DATASET-001", "SE")]
    assert counted["responseSummary"]["numTotalResults"] == 2


def answer_of(node: str, response: dict[str, Any] | None, status: str = "ok", own: bool = False
              ) -> federated.NodeAnswer:
    return federated.NodeAnswer(node, f"http://{node.lower()}.test/beacon/v2", status, 0.1,  # type: ignore[arg-type]
                                response=response, own=own)


def test_the_merged_granularity_is_the_least_detailed_and_counts_add_up_only_when_every_node_counted() -> None:
    record = beacon_answer("FI", count=3, granularity="record", precision="exact")
    count = beacon_answer("SE", count=10)
    boolean = beacon_answer("NO", count=None, granularity="boolean")

    def merged_of(*answers: federated.NodeAnswer) -> dict[str, Any]:
        return federated.merge(answers, beacon_id="fi", entry_type="g_variants", body=QUERY, deadline_s=DEADLINE)

    merged = merged_of(answer_of("FI", record, own=True), answer_of("SE", count))
    assert merged["meta"]["returnedGranularity"] == "count"
    assert merged["responseSummary"] == {"exists": True, "numTotalResults": 13, "countPrecision": "rounded",
                                         "countAdjustedTo": ["rounded up to a multiple of 10"]}
    assert merged["meta"]["receivedRequestSummary"] == record["meta"]["receivedRequestSummary"]
    assert response_errors(merged) == []
    with_boolean = merged_of(answer_of("FI", record, own=True), answer_of("SE", count), answer_of("NO", boolean))
    assert with_boolean["meta"]["returnedGranularity"] == "boolean"
    assert with_boolean["responseSummary"] == {"exists": True}
    # a node's own result sets are kept as it gave them (its counts too): only the node is added
    assert [(rs["info"]["node"], rs.get("resultsCount")) for rs in with_boolean["response"]["resultSets"]] == [
        ("FI", 3), ("SE", 10), ("NO", None)]
    assert response_errors(with_boolean) == []
    none_found = merged_of(answer_of("SE", beacon_answer("SE", count=0, exists=False, precision="exact")))
    assert none_found["responseSummary"] == {"exists": False, "numTotalResults": 0, "countPrecision": "exact"}


def test_with_no_node_answering_the_answer_is_a_valid_empty_beacon_response() -> None:
    merged = federated.merge([answer_of("FI", None, "timeout", own=True), answer_of("SE", None, "error")],
                             beacon_id="org.example.genomebus.fi", entry_type="g_variants", body=QUERY,
                             deadline_s=DEADLINE)
    assert merged["responseSummary"] == {"exists": False}
    assert merged["meta"]["returnedGranularity"] == "boolean"
    assert merged["meta"]["receivedRequestSummary"]["requestedGranularity"] == "count"
    assert response_errors(merged) == []


def test_what_a_node_warns_about_is_kept_with_its_node() -> None:
    own = beacon_answer("FI", count=1) | {"info": {"warnings": [
        {"code": "unknown_term", "message": "HP:9999999 is not a term of this beacon's data",
         "filterId": "HP:9999999"}]}}
    peer = beacon_answer("SE", count=1) | {"info": {"warnings": ["filter HP:9999999 ignored"]}}
    merged = federated.merge([answer_of("FI", own, own=True), answer_of("SE", peer)], beacon_id="fi",
                             entry_type="g_variants", body=QUERY, deadline_s=DEADLINE,
                             warnings=["peer DK is defined twice; https://dk.example is not asked"])
    assert merged["info"]["warnings"] == [
        {"code": "peer_configuration", "message": "peer DK is defined twice; https://dk.example is not asked"},
        {"code": "unknown_term", "message": "HP:9999999 is not a term of this beacon's data", "filterId": "HP:9999999",
         "node": "FI"},
        {"message": "filter HP:9999999 ignored", "node": "SE"}]


def test_only_answers_shaped_as_beacon_answers_are_taken() -> None:
    assert federated.beacon_response(beacon_answer("SE", count=1))
    assert not federated.beacon_response({"meta": {}, "responseSummary": {"exists": "yes"}})
    assert not federated.beacon_response([1, 2])
    assert federated.error_message({"error": {"errorCode": 400, "errorMessage": "start without referenceName"}}) \
        == "start without referenceName"
    assert federated.error_message({"type": "x", "detail": "a problem"}) == "a problem"
