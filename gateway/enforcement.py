"""The enforcement point: the one place that decides whether a caller may read a dataset's data.

Every controlled endpoint (individual-level records here; DRS, htsget, Beacon records and
processing later) calls ``Enforcer.authorize(request, dataset_id, passports=...)``. It

1. finds the dataset: unknown, not released or withdrawn → 404 (the data is not served);
   ``access_rights`` ``public`` → allowed without credentials (still audited);
2. verifies the credential: the visas of the passports given in a ``POST`` body (DRS style), else
   the bearer token; none → 401 with ``WWW-Authenticate``; invalid → 401 ``invalid_token``;
   the issuer's keys unreachable → 503 (fail closed);
3. finds the grant: for a bearer token, the user's active grant in the ``access`` read model;
   for a visa of this node, the same grant must still be active now (not revoked, vetoed or
   expired, whatever the visa's own ``exp``); for a visa of a trusted central issuer, its value
   must be this dataset and this node must not have vetoed that user for it. None → 403;
4. publishes the decision on ``genomebus.audit`` (``data.accessed`` / ``data.access_denied``:
   user, resource without the query, reason code, grant) and waits for the broker's
   acknowledgement before answering. An allowed access whose audit event cannot be written is
   refused with 503 (fail closed). The event's id is returned in the ``X-Audit-Event`` header.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from datetime import UTC, datetime

import asyncpg
from fastapi import Request

from genomebus.gateway.problems import Problem
from genomebus.infra import data_urls
from genomebus.infra.data_urls import DataTicket
from genomebus.infra.identity import CredentialError, Principal, Verifier, Visa
from genomebus.infra.kafka import Publisher
from genomebus.infra.readmodels import access, datasets
from genomebus.infra.settings import Settings
from genomebus.infra.visas import VisaKeys
from genomebus.schemas.audit import DataAccessDenied, DataAccessed
from genomebus.schemas.envelope import new_envelope

log = logging.getLogger("genomebus.gateway.enforcement")

ACTOR = "gateway:enforcement"
AUDIT_HEADER = "X-Audit-Event"
AUDIT_TIMEOUT_S = 5.0
CONTROLLED_GRANT = "ControlledAccessGrants"


def challenge(error: str | None = None) -> dict[str, str]:
    """The ``WWW-Authenticate`` header of a 401 (RFC 6750)."""
    value = 'Bearer realm="genomebus"'
    if error:
        value += f', error="{error}"'
    return {"WWW-Authenticate": value}


@dataclass(frozen=True)
class Allowed:
    """An access the enforcement point allowed, and the audit event that records it."""

    dataset_id: str
    user_id: str | None
    grant_id: str | None
    credential: str
    audit_event_id: str
    issuer: str | None = None
    """Who vouched for the grant: this node (its gateway URL), a central visa issuer, or None (public data)."""

    @property
    def headers(self) -> dict[str, str]:
        return {AUDIT_HEADER: self.audit_event_id}


@dataclass(frozen=True)
class Read:
    """What a data read names, for its audit event: the object, and the bytes or the region asked for."""

    object_id: str | None = None
    byte_range: str | None = None
    region: str | None = None


NO_READ = Read()


@dataclass(frozen=True)
class _Resource:
    """What is accessed: method and path (never the query), and the read's details."""

    path: str
    read: Read = NO_READ


@dataclass(frozen=True)
class _Denial:
    status: int
    reason: str
    detail: str
    headers: dict[str, str] | None = None
    code: str | None = None
    """The problem type, when it is not the reason code's (``invalid-token`` for every bad credential)."""


def bearer_token(request: Request) -> str | None:
    """The bearer token of the request, if any; a malformed header is an invalid credential."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise CredentialError("malformed", "the Authorization header is not `Bearer <token>`")
    return token.strip()


class Enforcer:
    def __init__(self, settings: Settings, verifier: Verifier, pool: asyncpg.Pool, publisher: Publisher,
                 visa_keys: VisaKeys | None = None) -> None:
        self.settings = settings
        self.visa_keys = visa_keys
        """The node's signing keys, which also sign data URLs (None: data URLs are refused)."""
        self.verifier = verifier
        self.pool = pool
        self.publisher = publisher

    # -- callers of the role-protected APIs --------------------------------------------------------

    async def principal(self, request: Request) -> Principal:
        """The verified caller of an API that needs a login (401 without one, 503 if keys are unreachable)."""
        try:
            token = bearer_token(request)
            if token is None:
                raise Problem(401, "credentials-required", "this endpoint needs a bearer token from a trusted issuer",
                              headers=challenge())
            return await self.verifier.login(token)
        except CredentialError as exc:
            raise _credential_problem(exc) from None

    # -- data access ------------------------------------------------------------------------------

    async def authorize(self, request: Request, dataset_id: str, *, passports: list[str] | None = None,
                        read: Read = NO_READ) -> Allowed:
        """Allow (and audit) a read of ``dataset_id``'s data, or raise the audited refusal as a Problem."""
        resource = _Resource(f"{request.method} {request.url.path}", read)
        now = datetime.now(UTC)
        user_id: str | None = None
        credential = "none"
        async with self.pool.acquire() as conn:
            dataset = await datasets.dataset_access(conn, dataset_id)
            if dataset is None or dataset["state"] != "released":
                denial = _Denial(404, "unknown_dataset" if dataset is None else f"dataset_{dataset['state']}",
                                 f"no released dataset {dataset_id} on this node")
                await self._deny(dataset_id, resource, denial, user_id=None, credential="none")
            if dataset["access_rights"] == "public":
                return await self._allow(dataset_id, resource, user_id=None, grant_id=None, credential="public",
                                         issuer=None)
            try:
                if passports:
                    credential = "passport"
                    visas = await self.verifier.visas(passports)
                    user_id = visas[0].user_id if visas else None
                    return await self._allow_by_visas(conn, dataset_id, resource, visas, now)
                token = bearer_token(request)
                if token is None:
                    await self._deny(dataset_id, resource, _Denial(
                        401, "credentials_required", "this data needs a bearer token or a passport with a visa "
                        "for its dataset", challenge()), user_id=None, credential="none")
                credential = "bearer"
                principal = await self.verifier.login(token)
                user_id = principal.user_id
            except CredentialError as exc:
                problem = _credential_problem(exc)
                await self._deny(dataset_id, resource, _Denial(problem.status, exc.code, problem.detail,
                                                               problem.headers, problem.code),
                                 user_id=user_id, credential=credential)
            grant = await access.active_grant(conn, principal.user_id, dataset_id, now)
            if grant is not None:
                return await self._allow(dataset_id, resource, user_id=principal.user_id,
                                         grant_id=str(grant["grant_id"]), credential="bearer",
                                         issuer=self.settings.gateway_url)
            reason = await _why_no_grant(conn, principal.user_id, dataset_id, now)
            await self._deny(dataset_id, resource, _Denial(403, reason, _FORBIDDEN[reason].format(dataset_id)),
                             user_id=principal.user_id, credential="bearer")
        raise AssertionError("unreachable")  # pragma: no cover - _deny always raises

    async def authorize_data_url(self, request: Request, token: str | None, *, object_id: str, dataset_id: str,
                                 read: Read = NO_READ) -> tuple[Allowed, DataTicket]:
        """Allow (and audit) one request made with a signed data URL for ``object_id`` of ``dataset_id``.

        The URL's signature and expiry are checked, then the right it was issued on is checked again
        now: the dataset still released, and for controlled data the grant still active (or, for a
        central visa, no veto since). A bad or expired URL is 401; a right gone since is 403.
        """
        resource = _Resource(f"{request.method} {request.url.path}", read)
        try:
            if self.visa_keys is None:
                raise data_urls.DataUrlError("invalid", "this gateway does not serve data URLs")
            ticket = data_urls.verify(self.visa_keys, self.settings, token or "")
        except data_urls.DataUrlError as exc:
            await self._deny(dataset_id, resource, _Denial(
                401, f"url_{exc.code}", str(exc), challenge("invalid_token"), f"url-{exc.code}"),
                user_id=None, credential="data_url")
        if ticket.object_id != object_id or ticket.dataset_id != dataset_id:
            await self._deny(dataset_id, resource, _Denial(401, "url_invalid", "this data URL is for another object",
                                                           challenge("invalid_token"), "url-invalid"),
                             user_id=ticket.user_id, credential="data_url")
        now = datetime.now(UTC)
        async with self.pool.acquire() as conn:
            dataset = await datasets.dataset_access(conn, dataset_id)
            if dataset is None or dataset["state"] != "released":
                await self._deny(dataset_id, resource, _Denial(
                    404, "unknown_dataset" if dataset is None else f"dataset_{dataset['state']}",
                    f"no released dataset {dataset_id} on this node"), user_id=ticket.user_id, credential="data_url")
            if dataset["access_rights"] == "public":
                allowed = await self._allow(dataset_id, resource, user_id=ticket.user_id, grant_id=None,
                                            credential="data_url", issuer=None, reason="public_dataset")
                return allowed, ticket
            if ticket.user_id is None:  # issued while the dataset was public: controlled now, so a grant is needed
                await self._deny(dataset_id, resource, _Denial(403, "no_grant", _FORBIDDEN["no_grant"].format(
                    dataset_id)), user_id=None, credential="data_url")
            if ticket.issuer in (None, self.settings.gateway_url):  # a grant of this node: still active now?
                grant = await access.active_grant(conn, ticket.user_id, dataset_id, now)
                if grant is not None:
                    allowed = await self._allow(dataset_id, resource, user_id=ticket.user_id,
                                                grant_id=str(grant["grant_id"]), credential="data_url",
                                                issuer=self.settings.gateway_url)
                    return allowed, ticket
                reason = await _why_no_grant(conn, ticket.user_id, dataset_id, now)
            elif await access.is_vetoed(conn, ticket.user_id, dataset_id):
                reason = "vetoed"
            else:  # a central visa's grant, not vetoed since the URL was issued
                allowed = await self._allow(dataset_id, resource, user_id=ticket.user_id, grant_id=ticket.grant_id,
                                            credential="data_url", issuer=ticket.issuer)
                return allowed, ticket
            await self._deny(dataset_id, resource, _Denial(403, reason, _FORBIDDEN[reason].format(dataset_id)),
                             user_id=ticket.user_id, credential="data_url")
        raise AssertionError("unreachable")  # pragma: no cover

    # -- released outputs of tasks: their owner alone ---------------------------------------------------

    async def authorize_output(self, request: Request, output: dict[str, Any], *, read: Read = NO_READ) -> Allowed:
        """Allow (and audit) a read of a released task output by its owner (a bearer token), or raise the
        audited refusal: 401 without a valid token, 403 for anyone else. The audit event's dataset is the task."""
        resource = _Resource(f"{request.method} {request.url.path}", read)
        task_id, user_id = output["dataset_id"], None
        try:
            token = bearer_token(request)
            if token is None:
                await self._deny(task_id, resource, _Denial(401, "credentials_required", "a task's released output "
                                 "is read with its owner's bearer token", challenge()), user_id=None, credential="none")
            user_id = (await self.verifier.login(token)).user_id
        except CredentialError as exc:
            problem = _credential_problem(exc)
            await self._deny(task_id, resource, _Denial(problem.status, exc.code, problem.detail, problem.headers,
                                                        problem.code), user_id=None, credential="bearer")
        if user_id != output["owner"]:
            await self._deny(task_id, resource, _Denial(403, "not_owner", "only the researcher who ran the task may "
                                                        "read its released outputs"), user_id=user_id,
                             credential="bearer")
        return await self._allow(task_id, resource, user_id=user_id, grant_id=None, credential="bearer",
                                 issuer=self.settings.gateway_url, reason="output_owner")

    async def authorize_output_url(self, request: Request, token: str | None, output: dict[str, Any], *,
                                   read: Read = NO_READ) -> tuple[Allowed, DataTicket]:
        """Allow (and audit) a read of a released output with a signed data URL issued to its owner."""
        resource = _Resource(f"{request.method} {request.url.path}", read)
        task_id = output["dataset_id"]
        try:
            if self.visa_keys is None:
                raise data_urls.DataUrlError("invalid", "this gateway does not serve data URLs")
            ticket = data_urls.verify(self.visa_keys, self.settings, token or "")
        except data_urls.DataUrlError as exc:
            await self._deny(task_id, resource, _Denial(
                401, f"url_{exc.code}", str(exc), challenge("invalid_token"), f"url-{exc.code}"),
                user_id=None, credential="data_url")
        if ticket.object_id != output["drs_id"] or ticket.dataset_id != task_id:
            await self._deny(task_id, resource, _Denial(401, "url_invalid", "this data URL is for another object",
                                                        challenge("invalid_token"), "url-invalid"),
                             user_id=ticket.user_id, credential="data_url")
        if ticket.user_id != output["owner"]:
            await self._deny(task_id, resource, _Denial(403, "not_owner", "only the researcher who ran the task may "
                                                        "read its released outputs"), user_id=ticket.user_id,
                             credential="data_url")
        allowed = await self._allow(task_id, resource, user_id=ticket.user_id, grant_id=None, credential="data_url",
                                    issuer=self.settings.gateway_url, reason="output_owner")
        return allowed, ticket

    async def _allow_by_visas(self, conn: asyncpg.Connection, dataset_id: str, resource: _Resource, visas: list[Visa],
                              now: datetime) -> Allowed:
        wanted = self.settings.dataset_url(dataset_id)
        matching = [v for v in visas if v.type == CONTROLLED_GRANT and v.value == wanted]
        user_id = visas[0].user_id if visas else None
        if not matching:
            await self._deny(dataset_id, resource, _Denial(
                403, "no_visa_for_dataset", f"no ControlledAccessGrants visa in the passports is for {dataset_id}"),
                user_id=user_id, credential="passport")
        reason = "no_grant"
        for visa in matching:
            if visa.own:  # issued here: the grant it stands for must still be active now
                grant = await access.active_grant(conn, visa.user_id, dataset_id, now)
                if grant is not None:
                    return await self._allow(dataset_id, resource, user_id=visa.user_id,
                                             grant_id=str(grant["grant_id"]), credential="passport",
                                             issuer=visa.issuer)
                reason = await _why_no_grant(conn, visa.user_id, dataset_id, now)
            elif await access.is_vetoed(conn, visa.user_id, dataset_id):
                reason = "vetoed"
            else:  # a central access service's grant, for a dataset of this node that did not veto it
                return await self._allow(dataset_id, resource, user_id=visa.user_id,
                                         grant_id=visa.jti or f"{visa.issuer}#{int(visa.asserted.timestamp())}",
                                         credential="passport", issuer=visa.issuer)
        await self._deny(dataset_id, resource, _Denial(403, reason, _FORBIDDEN[reason].format(dataset_id)),
                         user_id=matching[0].user_id, credential="passport")
        raise AssertionError("unreachable")  # pragma: no cover

    # -- the audit ----------------------------------------------------------------------------------

    async def _allow(self, dataset_id: str, resource: _Resource, *, user_id: str | None, grant_id: str | None,
                     credential: str, issuer: str | None, reason: str | None = None) -> Allowed:
        event = DataAccessed(dataset_id=dataset_id, user_id=user_id, resource=resource.path,
                             reason=reason or ("public_dataset" if credential == "public" else "grant_active"),
                             grant_id=grant_id, credential=credential, issuer=issuer, **vars(resource.read))
        event_id = await self._audit(event)
        if event_id is None:  # fail closed: no record, no data
            raise Problem(503, "audit-unavailable", "the access cannot be recorded right now, so it is refused; "
                          "try again later", headers={"Retry-After": "5"})
        return Allowed(dataset_id, user_id, grant_id, credential, event_id, issuer)

    async def _deny(self, dataset_id: str, resource: _Resource, denial: _Denial, *, user_id: str | None,
                    credential: str) -> None:
        event = DataAccessDenied(dataset_id=dataset_id, user_id=user_id, resource=resource.path,
                                 reason=denial.reason, credential=credential, status=denial.status,
                                 **vars(resource.read))  # type: ignore[arg-type]
        event_id = await self._audit(event)
        headers = dict(denial.headers or {})
        if event_id is not None:
            headers[AUDIT_HEADER] = event_id
        raise Problem(denial.status, denial.code or denial.reason.replace("_", "-"), denial.detail,
                      headers=headers or None, reason=denial.reason)

    async def _audit(self, event: DataAccessed | DataAccessDenied) -> str | None:
        envelope = new_envelope(event, source=self.settings.source, actor=ACTOR, subject=event.dataset_id)
        try:
            await asyncio.wait_for(self.publisher.publish(envelope), AUDIT_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - any failure to record is a refusal, logged without details
            log.error("audit event %s could not be written: %s", envelope.id, type(exc).__name__)
            return None
        return str(envelope.id)


_FORBIDDEN: dict[str, str] = {
    "no_grant": "you hold no active grant for {}; apply with `genomebus access apply`",
    "vetoed": "this node vetoed your access to {}",
    "revoked": "your grant for {} was revoked",
    "expired": "your grant for {} has expired; apply again",
    "closed": "the application that granted {} is closed",
    "no_visa_for_dataset": "no visa in the passports is for {}",
}


async def _why_no_grant(conn: asyncpg.Connection, user_id: str, dataset_id: str, now: datetime) -> str:
    """The reason code of a refusal: what became of the user's latest grant for the dataset."""
    if await access.is_vetoed(conn, user_id, dataset_id):
        return "vetoed"
    past = await access.grants(conn, user_id=user_id, dataset_id=dataset_id, now=now, active_only=False)
    states = [g.get("state") for g in past]
    for state in ("revoked", "vetoed", "closed", "expired"):
        if state in states:
            return state
    if any(g.get("state") == "approved" for g in past):  # approved but past its expiry, timer not run yet
        return "expired"
    return "no_grant"


def _credential_problem(exc: CredentialError) -> Problem:
    if exc.status == 503:
        return Problem(503, "issuer-keys-unavailable", "the issuer's keys cannot be fetched, so the credential "
                       "cannot be verified; try again later", headers={"Retry-After": "30"})
    return Problem(401, "invalid-token", f"the credential is not accepted: {exc}", headers=challenge("invalid_token"))
