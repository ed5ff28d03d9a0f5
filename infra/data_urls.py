"""Signed, short-lived data URLs: what a DRS access URL or an htsget ticket hands out.

A data URL names one archived object and carries a token signed with the node's visa key (so
every gateway instance verifies it, and a key rotation is followed as for visas). The token says
who asked, which grant allowed it when it was issued and how the bytes are to be served:

- ``plain``: the decrypted bytes;
- ``c4gh``: a Crypt4GH copy for ``recipient`` (its header re-encrypted, the stored body as is);
- ``c4gh-body``: only the stored body bytes (an htsget Crypt4GH ticket sends its own header).

A data URL is a bearer credential for one object for a few minutes, not a grant: each request
made with it goes through the enforcement point again (``Enforcer.authorize_data_url``), so a
grant revoked or vetoed after the URL was issued stops the next request. Its token has its own
``typ`` and audience, so it is never accepted as a login or a visa, and no login or visa is ever
accepted as a data URL.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass
from typing import Literal

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from genomebus.infra.settings import Settings
from genomebus.infra.visas import VisaKeys

DATA_URL_TYP = "genomebus-data-url+jwt"
DATA_URL_AUDIENCE = "urn:genomebus:data"
Mode = Literal["plain", "c4gh", "c4gh-body"]
MODES: tuple[Mode, ...] = ("plain", "c4gh", "c4gh-body")


class DataUrlError(Exception):
    """A data URL that is not accepted: ``code`` is ``expired`` or ``invalid``."""

    def __init__(self, code: Literal["expired", "invalid"], message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class DataTicket:
    """What a data URL allows: one object, in one mode, for the user and grant that asked."""

    object_id: str
    dataset_id: str
    mode: Mode = "plain"
    user_id: str | None = None
    grant_id: str | None = None
    credential: str = "public"
    """How the caller showed its right when the URL was issued: ``bearer``, ``passport`` or ``public``."""
    issuer: str | None = None
    """Who vouched for the grant: this node (``settings.gateway_url``) or a central visa issuer."""
    recipient: str | None = None
    """The reader's Crypt4GH public key (base64 of the 32 raw bytes), for the ``c4gh`` modes."""
    expires_at: int = 0


def sign(keys: VisaKeys, settings: Settings, ticket: DataTicket, *, ttl_s: int | None = None,
         now: float | None = None) -> str:
    """The token of a data URL for ``ticket``, valid ``ttl_s`` (default ``settings.data_url_ttl_s``)."""
    if ticket.mode not in MODES:
        raise ValueError(f"unknown data URL mode {ticket.mode!r}")
    if ticket.mode != "plain" and not ticket.recipient:
        raise ValueError("a Crypt4GH data URL needs the reader's public key")
    issued = int(now if now is not None else time.time())
    claims = {key: value for key, value in asdict(ticket).items() if value is not None and key != "expires_at"}
    claims |= {"iss": settings.gateway_url, "aud": DATA_URL_AUDIENCE, "iat": issued,
               "exp": issued + (ttl_s if ttl_s is not None else settings.data_url_ttl_s), "jti": uuid.uuid4().hex}
    key = keys.signing_key()
    header = {"typ": DATA_URL_TYP, "alg": key.alg, "kid": key.kid}
    return jwt.encode(header, claims, key, algorithms=[key.alg], default_type=None)  # type: ignore[list-item]


def verify(keys: VisaKeys, settings: Settings, token: str, *, now: float | None = None) -> DataTicket:
    """The ticket a data URL's token carries, once its signature, type, audience and expiry are checked."""
    if not token or len(token) > 8192:
        raise DataUrlError("invalid", "the data URL has no valid signature")
    try:
        verification = keys.verification_keys()
        decoded = jwt.decode(token, KeySet(list(verification)), algorithms=sorted({k.alg for k in verification}))
    except (JoseError, ValueError, TypeError) as exc:
        raise DataUrlError("invalid", "the data URL has no valid signature") from exc
    header, claims = decoded.header, decoded.claims
    if header.get("typ") != DATA_URL_TYP or claims.get("aud") != DATA_URL_AUDIENCE \
            or claims.get("iss") != settings.gateway_url:
        raise DataUrlError("invalid", "the token is not a data URL of this node")
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp <= int(now if now is not None else time.time()):
        raise DataUrlError("expired", "the data URL has expired; ask for a new access URL or ticket")
    try:
        return DataTicket(object_id=claims["object_id"], dataset_id=claims["dataset_id"], mode=claims["mode"],
                          user_id=claims.get("user_id"), grant_id=claims.get("grant_id"),
                          credential=claims.get("credential", "public"), issuer=claims.get("issuer"),
                          recipient=claims.get("recipient"), expires_at=exp)
    except KeyError as exc:
        raise DataUrlError("invalid", "the data URL's token lacks a claim") from exc


DATA_PATH = "/data/objects/{object_id}"
"""The gateway endpoint that serves an object's bytes to a data URL (``?sig=`` carries the signed ticket)."""

QUERY_PARAMETER = "sig"
"""The data URL's query parameter holding the signed ticket. ``sig`` is among the parameters OpenTelemetry's
HTTP instrumentation redacts from the URLs it records, so a trace never holds a usable data URL."""


def url_for(keys: VisaKeys, settings: Settings, ticket: DataTicket, *, ttl_s: int | None = None) -> str:
    """A signed data URL for ``ticket``: ``<gateway>/data/objects/<object id>?sig=<signed ticket>``."""
    token = sign(keys, settings, ticket, ttl_s=ttl_s)
    return f"{settings.gateway_url}{DATA_PATH.format(object_id=ticket.object_id)}?{QUERY_PARAMETER}={token}"
