"""The client side of commands: a GET to the gateway survives a closed kept-alive connection, not an outage."""

from __future__ import annotations

import httpx
import pytest

from genomebus.producers.commands import GatewayUnavailable, gateway_get


def flaky(failures: int, error: type[Exception] = httpx.RemoteProtocolError) -> tuple[httpx.AsyncClient, list[int]]:
    calls: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) <= failures:
            raise error("Server disconnected without sending a response.")
        return httpx.Response(200, json={"status": "accepted"})

    return httpx.AsyncClient(base_url="http://gateway.test", transport=httpx.MockTransport(answer)), calls


async def test_a_connection_closed_under_a_request_is_tried_again():
    client, calls = flaky(2)
    response = await gateway_get(client, "/commands/x")
    assert response.status_code == 200 and len(calls) == 3


async def test_a_gateway_that_keeps_failing_is_unavailable_in_one_plain_error():
    client, calls = flaky(10)
    with pytest.raises(GatewayUnavailable, match="does not answer"):
        await gateway_get(client, "/commands/x", attempts=3)
    assert len(calls) == 3


async def test_a_fault_that_is_not_about_the_connection_is_not_retried():
    client, calls = flaky(10, httpx.UnsupportedProtocol)
    with pytest.raises(GatewayUnavailable):
        await gateway_get(client, "/commands/x")
    assert len(calls) == 1
