"""The access API as a client library: apply, submit, decide, veto, revoke, close; grants and passports.

Everything goes through the gateway with the caller's bearer token (``genomebus token issue`` in
the local profile, the node's login service in production): the gateway verifies who is asking
and publishes the command; the access decider decides. A refusal comes back as ``AccessRefused``
carrying the problem document (status, machine-readable reasons, the application's state).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx

from genomebus.infra.settings import Settings
from genomebus.producers.commands import GatewayUnavailable


@dataclass
class AccessRefused(Exception):
    """The gateway answered with a problem document."""

    status: int
    detail: str
    code: str = ""
    reasons: list[dict[str, str]] = field(default_factory=list)
    state: str | None = None

    def __str__(self) -> str:
        return self.detail


class StillPending(TimeoutError):
    """The command was published but not decided before the gateway stopped waiting."""

    def __init__(self, command_id: str) -> None:
        super().__init__(f"command {command_id} is published but not decided yet")
        self.command_id = command_id


def traceparent(trace_id: str) -> str:
    """A W3C ``traceparent`` header in the trace ``trace_id`` (a span id of its own each time)."""
    return f"00-{trace_id}-{os.urandom(8).hex()}-01"


def new_journey() -> str:
    """A new trace id for a journey (32 hex digits; the correlation id of its events, as a UUID)."""
    return uuid.uuid4().hex


class AccessClient:
    """A researcher's, DAC member's or steward's session with the node's access API."""

    def __init__(self, settings: Settings, token: str, *, http: httpx.AsyncClient | None = None,
                 journey: str | None = None) -> None:
        """``journey``: a W3C trace id (32 hex digits) sent with every request as ``traceparent``, so all the
        session's commands and audited reads share one correlation id (``genomebus audit journey``)."""
        self._own = http is None
        self.http = http or httpx.AsyncClient(base_url=settings.gateway_url, timeout=settings.command_timeout_s + 10)
        self.headers = {"Authorization": f"Bearer {token}"}
        if journey is not None:
            self.headers["traceparent"] = traceparent(journey)

    async def __aenter__(self) -> AccessClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._own:
            await self.http.aclose()

    async def apply(self, datasets: list[str], *, project_title: str, purpose: str, research_use: dict[str, Any],
                    collaborators: list[str] | None = None) -> dict[str, Any]:
        return await self._call("POST", "/access/applications", {
            "datasets": datasets, "project_title": project_title, "purpose": purpose,
            "research_use": research_use, "collaborators": collaborators or []})

    async def submit(self, application_id: UUID | str, changes: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self._call("POST", f"/access/applications/{application_id}/submit",
                                {"changes": changes} if changes else None)

    async def decide(self, application_id: UUID | str, dataset_id: str, decision: str, *,
                     expires_at: datetime | None = None, reason: str | None = None) -> dict[str, Any]:
        return await self._call("POST", f"/access/applications/{application_id}/decision", {
            "dataset_id": dataset_id, "decision": decision,
            "expires_at": expires_at.isoformat() if expires_at else None, "reason": reason})

    async def veto(self, application_id: UUID | str, dataset_id: str, reason: str) -> dict[str, Any]:
        return await self._call("POST", f"/access/applications/{application_id}/veto",
                                {"dataset_id": dataset_id, "reason": reason})

    async def veto_central(self, dataset_id: str, user_id: str, reason: str) -> dict[str, Any]:
        return await self._call("POST", "/access/vetoes", {"dataset_id": dataset_id, "user_id": user_id,
                                                           "reason": reason})

    async def revoke(self, application_id: UUID | str, dataset_id: str, reason: str) -> dict[str, Any]:
        return await self._call("POST", f"/access/applications/{application_id}/revoke",
                                {"dataset_id": dataset_id, "reason": reason})

    async def close(self, application_id: UUID | str, reason: str | None = None) -> dict[str, Any]:
        return await self._call("POST", f"/access/applications/{application_id}/close", {"reason": reason})

    async def applications(self, *, limit: int = 100, offset: int = 0) -> dict[str, Any]:
        return await self._call("GET", "/access/applications", params={"limit": limit, "offset": offset})

    async def application(self, application_id: UUID | str) -> dict[str, Any]:
        return await self._call("GET", f"/access/applications/{application_id}")

    async def grants(self, dataset_id: str | None = None, *, active: bool = True) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"active": str(active).lower()}
        if dataset_id:
            params["dataset_id"] = dataset_id
        return await self._call("GET", "/access/grants", params=params)

    async def passport(self) -> str:
        return (await self._call("GET", "/passport"))["passport"]

    async def permissions(self, user_id: str) -> list[str]:
        return (await self._call("GET", f"/permissions/{user_id}"))["ga4gh_passport_v1"]

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None, *,
                    params: dict[str, Any] | None = None) -> Any:
        response = await self._send(method, path, body, params=params)
        return response.json()

    async def _send(self, method: str, path: str, body: dict[str, Any] | None = None, *,
                    params: dict[str, Any] | None = None) -> httpx.Response:
        try:
            response = await self.http.request(method, path, json=body, params=params, headers=self.headers)
        except httpx.TransportError as exc:
            raise GatewayUnavailable(f"the gateway at {self.http.base_url} does not answer "
                                     f"({type(exc).__name__})") from exc
        if response.status_code == 202:
            raise StillPending(response.json().get("command_id", "?"))
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {}
            raise AccessRefused(response.status_code, problem.get("detail") or response.reason_phrase,
                                str(problem.get("type", "")).rsplit("/", 1)[-1], problem.get("reasons") or [],
                                problem.get("state"))
        return response
