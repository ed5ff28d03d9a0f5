"""Commands: how a client asks the node for a change, and learns what the decider made of it.

A client never decides and never writes a fact. It publishes a command on the
context's commands topic (``genomebus.<context>.commands``, keyed by the
aggregate), then asks the gateway for the command's outcome until the decider
has answered: ``accepted`` with the fact it published, or ``rejected`` with
machine-readable reasons. The gateway answers from the same read model that
serves the aggregate, so once the outcome is visible the aggregate is too
(read-your-writes). No database credentials are needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import httpx

from genomebus.infra.kafka import Published, Publisher
from genomebus.infra.settings import Settings
from genomebus.schemas.base import EventModel
from genomebus.schemas.envelope import new_envelope
from genomebus.schemas.reception import MetadataWarning, Reason


@dataclass(frozen=True)
class CommandOutcome:
    """What the decider answered: ``status`` is ``accepted`` or ``rejected``."""

    command_id: UUID
    command_type: str
    status: str
    outcome_type: str | None
    reasons: tuple[Reason, ...] = ()
    state: str | None = None
    warnings: tuple[Reason, ...] = ()
    """What an accepted fact says the command lacks (``MetadataWarning``: catalogue metadata)."""
    published: Published | None = field(default=None, compare=False)

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"


class NoOutcomeYet(TimeoutError):
    """The command is on the bus, but no decision was visible in time (is the node's decider running?)."""

    def __init__(self, command_id: UUID, seconds: float) -> None:
        super().__init__(f"command {command_id} is published but was not decided within {seconds:.0f} s; "
                         "check `genomebus status` (the reception-decider and projector workers)")
        self.command_id = command_id


class GatewayUnavailable(ConnectionError):
    """The gateway did not answer; the message says where it was looked for."""


async def send_command(settings: Settings, command: EventModel, *, actor: str, timeout: float | None = None,
                       publisher: Publisher | None = None, http: httpx.AsyncClient | None = None) -> CommandOutcome:
    """Publish ``command`` and wait for its outcome (``NoOutcomeYet`` after ``timeout`` seconds).

    ``http`` is a client of the node's gateway (default: one opened on ``settings.gateway_url``).
    """
    envelope = new_envelope(command, source=settings.source, actor=actor)
    if publisher is not None:
        published = await publisher.publish(envelope)
    else:
        async with Publisher(settings) as own:
            published = await own.publish(envelope)
    outcome = await wait_for_outcome(settings, envelope.id, timeout=timeout, http=http)
    return dataclasses.replace(outcome, published=published)


def gateway_client(settings: Settings) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=settings.gateway_url, timeout=10.0)


async def wait_for_outcome(settings: Settings, command_id: UUID, *, timeout: float | None = None,
                           http: httpx.AsyncClient | None = None) -> CommandOutcome:
    """Poll the gateway's ``GET /commands/{id}`` until the command is decided."""
    limit = timeout if timeout is not None else settings.command_timeout_s
    deadline = time.monotonic() + limit
    delay = 0.02
    async with contextlib.AsyncExitStack() as stack:
        client = http if http is not None else await stack.enter_async_context(gateway_client(settings))
        while True:
            body = await _command_status(client, command_id)
            if body is not None and body["status"] != "pending":
                return CommandOutcome(
                    command_id=command_id, command_type=body.get("type") or "", status=body["status"],
                    outcome_type=body.get("outcome_type"), state=body.get("state"),
                    reasons=tuple(Reason.model_validate(r) for r in body.get("reasons") or ()),
                    warnings=tuple(_warning(w) for w in body.get("warnings") or ()))
            if time.monotonic() > deadline:
                raise NoOutcomeYet(command_id, limit)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)


_RETRIED = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError, httpx.ConnectError, httpx.PoolTimeout)
"""Faults of one attempt, not of the gateway: a kept-alive connection the server closed as it was reused,
a refused connection while it restarts. A read-only GET is simply tried again."""


async def gateway_get(client: httpx.AsyncClient, path: str, *, attempts: int = 4) -> httpx.Response:
    """``GET path`` from the gateway, tried again after a connection fault; ``GatewayUnavailable`` in the end."""
    for attempt in range(attempts):
        try:
            return await client.get(path)
        except _RETRIED as exc:
            if attempt == attempts - 1:
                raise GatewayUnavailable(f"the gateway at {client.base_url} does not answer "
                                         f"({type(exc).__name__})") from exc
            await asyncio.sleep(0.05 * 2 ** attempt)
        except httpx.TransportError as exc:
            raise GatewayUnavailable(f"the gateway at {client.base_url} does not answer "
                                     f"({type(exc).__name__})") from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _warning(body: dict[str, Any]) -> Reason:
    """A metadata warning with its property and field, any other warning as a plain reason."""
    if body.get("code") in ("metadata_incomplete", "metadata_recommended"):
        return MetadataWarning.model_validate(body)
    return Reason.model_validate({"code": body["code"], "message": body["message"]})


async def _command_status(client: httpx.AsyncClient, command_id: UUID) -> dict[str, Any] | None:
    response = await gateway_get(client, f"/commands/{command_id}")
    if response.status_code == 404:
        return None  # not projected yet
    if response.status_code != 200:
        raise GatewayUnavailable(f"the gateway at {client.base_url} answered {response.status_code} "
                                 f"for command {command_id}")
    return response.json()
