"""Verifying credentials: login tokens, GA4GH visas and passports from trusted issuers.

The gateway's enforcement point calls ``Verifier.login`` for a bearer token and
``Verifier.visas`` for the passports (or bare visas) a request carries. Every check below must
hold, in this order, or a ``CredentialError`` says which did not (``code``, HTTP ``status``):

1. the token is at most ``auth_max_token_bytes`` long (checked before anything is parsed) and a
   JWS in compact serialization (three base64url parts, JSON objects without duplicate members);
2. its ``alg`` is on the allow-list (RSA, RSA-PSS, ECDSA, EdDSA; never ``none``, never HMAC:
   an ``HS256`` token "signed" with an issuer's public key is the classic forgery), no ``crit``;
3. its ``iss``, read from the still unverified payload only to choose keys, is trusted for this
   kind of token: logins from ``login`` issuers, visas from ``visa`` issuers or this node,
   passports from ``passport`` issuers or this node; a visa's or passport's ``jku``, if any, is
   its issuer's own key URL (a key URL in a token is never fetched);
4. the issuer's key named by ``kid`` (without ``kid``: its only key fitting ``alg``) fits ``alg``
   (key type, curve, the key's own ``alg`` and ``use``) and the signature verifies;
5. then the claims: ``exp`` (required) not passed, ``nbf`` and ``iat`` (required) not in the
   future, each within ``auth_clock_skew_s``; a login's ``aud`` names ``auth_audience`` and it
   has a ``sub``; a visa has a ``ga4gh_visa_v1`` object; a passport lists at most 200 visas, each
   verified as a visa and for the passport's own ``sub``. A visa or passport with an ``aud``
   must name this node too.

Inside a passport, a visa whose issuer this node does not trust is ignored (Passport v1.2,
§8.3); a bare visa from such an issuer is refused. Any other failing visa refuses the passport.

Keys come from a JWKS file (read again when it changes), a JWKS URL (kept ``jwks_cache_ttl_s``;
an unknown ``kid`` fetches again at most every ``jwks_min_refresh_interval_s``; a failed fetch
waits as long before the next) or, for this node's own visas, its ``VisaKeys``. Keys that
cannot be had, and no copy younger than the TTL, refuse with ``keys_unavailable`` (503): the
node fails closed. No token text ever goes into an error message or a log line.
"""

from __future__ import annotations

import asyncio
import binascii
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, Key
from joserfc.jws import JWSRegistry
from joserfc.util import urlsafe_b64decode

from genomebus.infra.settings import Settings, TrustedIssuer
from genomebus.infra.visas import GRANT_CLAIM, PASSPORT_TYP, VISA_TYP, VisaKeys, node_jku

log = logging.getLogger("genomebus.infra.identity")

ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
MIN_RSA_BITS = 2048
MAX_VISAS_PER_PASSPORT = 200
MAX_PASSPORT_BYTES = 262144
"""A passport nests its visas, so it may be longer than ``auth_max_token_bytes`` (which bounds each visa):
200 visas of about a kilobyte each, base64-encoded once more. Anything longer is refused unread."""
JWKS_FETCH_TIMEOUT_S = 5.0
JWKS_MAX_BYTES = 1 << 20
_LAST_TIMESTAMP = 253402300799  # 9999-12-31T23:59:59Z: anything later is not a time

Kind = Literal["login", "visa", "passport"]
_TYPS: dict[Kind, frozenset[str]] = {  # compared in lower case, without an "application/" prefix (RFC 7515 §4.1.9)
    "login": frozenset({"jwt", "at+jwt"}),
    "visa": frozenset({VISA_TYP, "jwt", "at+jwt"}),
    "passport": frozenset({PASSPORT_TYP, "jwt", "at+jwt"}),
}
_KIND_NAMES: dict[Kind, str] = {"login": "logins", "visa": "visas", "passport": "passports"}


class CredentialError(Exception):
    """A credential the node does not accept. ``code`` is machine-readable; ``str()`` a plain sentence."""

    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status if status is not None else (503 if code == "keys_unavailable" else 401)


@dataclass(frozen=True)
class Principal:
    """The verified caller of a login token, with the roles its issuer asserted."""

    user_id: str
    issuer: str
    roles: frozenset[str]
    researcher: bool
    steward: bool
    """``steward:<this node's id>``: a steward of another node is no steward here."""
    auditor: bool
    operator: bool
    output_checker: bool
    """``output_checker``: may review the airlock's output requests (never their own)."""
    dacs: frozenset[str]
    """The Data Access Committees the caller sits on, from ``dac_member:<DAC id>``."""
    expires_at: datetime


@dataclass(frozen=True)
class Visa:
    """One verified GA4GH visa (Passport v1.2): who asserted what about whom, until when."""

    issuer: str
    user_id: str
    type: str
    value: str
    source: str
    by: str | None
    asserted: datetime
    expires_at: datetime
    jti: str | None
    own: bool
    """Issued by this node (signed with its visa keys)."""
    grant_id: str | None = None
    """The grant an own visa stands for; None for other issuers' visas."""
    conditions: Any = field(default=None, compare=False)
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The raw ``ga4gh_visa_v1`` object."""


# -- the token, parsed but not yet trusted -------------------------------------------------------------


@dataclass(frozen=True)
class _Jws:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two parsers reading different values of one repeated member is a known way around a check.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate member")
    return obj


def _parse(token: object, max_bytes: int) -> _Jws:
    if not isinstance(token, str):
        raise CredentialError("malformed", "the token is not a string")
    if len(token) > max_bytes:  # a str of n characters is at least n bytes
        raise CredentialError("too_large", f"the token is longer than {max_bytes} bytes")
    if not token.isascii():
        raise CredentialError("malformed", "the token is not a signed JWT (JWS compact serialization)")
    parts = token.encode("ascii").split(b".")
    if len(parts) != 3:
        raise CredentialError("malformed", "the token is not a signed JWT (JWS compact serialization)")
    try:
        header = json.loads(urlsafe_b64decode(parts[0]), object_pairs_hook=_no_duplicates)
        claims = json.loads(urlsafe_b64decode(parts[1]), object_pairs_hook=_no_duplicates)
        signature = urlsafe_b64decode(parts[2])
    except (binascii.Error, ValueError, RecursionError):
        raise CredentialError("malformed", "the token is not a signed JWT (JWS compact serialization)") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise CredentialError("malformed", "the token's header or payload is not a JSON object")
    return _Jws(header, claims, parts[0] + b"." + parts[1], signature)


# -- keys --------------------------------------------------------------------------------------------------


def _fits(key: Key, alg: str) -> bool:
    """Whether ``key`` may verify an ``alg`` signature: type, curve, and the key's own alg, use and ops."""
    model = JWSRegistry.algorithms[alg]
    try:
        model.check_key(key)  # use "sig" if given, key type, key's alg if given, EC curve
    except JoseError:
        return False
    ops = key.get("key_ops")
    if ops is not None and "verify" not in ops:
        return False
    if key.key_type == "OKP":
        return key.curve_name in ("Ed25519", "Ed448")  # type: ignore[attr-defined]
    if key.key_type == "RSA":
        return key.raw_value.key_size >= MIN_RSA_BITS  # type: ignore[union-attr]
    return True


class _KeyIndex:
    """An issuer's parsed keys, by kid, with the key chosen for each (kid, alg) remembered."""

    def __init__(self, keys: Iterable[tuple[str | None, Key]]) -> None:
        self.keys = list(keys)
        self._by_kid: dict[str | None, list[Key]] = {}
        for kid, key in self.keys:
            self._by_kid.setdefault(kid, []).append(key)
        self._chosen: dict[tuple[str | None, str], Key | None] = {}

    def knows(self, kid: str) -> bool:
        return kid in self._by_kid

    def find(self, kid: str | None, alg: str) -> Key | None:
        """The key for a token's kid and alg; without kid, the only key fitting alg; else None."""
        if kid is not None and kid not in self._by_kid:
            return None  # not remembered: kids are the caller's to invent, this memory is not theirs to fill
        memo = (kid, alg)
        if memo not in self._chosen:
            candidates = [k for _, k in self.keys] if kid is None else self._by_kid.get(kid, [])
            fitting = [k for k in candidates if _fits(k, alg)]
            self._chosen[memo] = fitting[0] if (len(fitting) == 1 or (kid is not None and fitting)) else None
        return self._chosen[memo]


def _index_of_jwks(document: object) -> _KeyIndex:
    """The usable public keys of a JWKS document (others are skipped: RFC 7517 §5)."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS")
    keys = []
    for data in document["keys"]:
        if not isinstance(data, dict) or data.get("kty") not in ("RSA", "EC", "OKP"):
            continue  # symmetric keys never verify anything here
        if "d" in data:
            continue  # a published private key: anyone could sign with it
        try:
            key = JWKRegistry.import_key(data)
        except (JoseError, ValueError, TypeError):
            continue
        kid = data.get("kid")
        keys.append((kid if isinstance(kid, str) else None, key))
    if not keys:
        raise ValueError("no usable key")
    return _KeyIndex(keys)


class _Unavailable(Exception):
    """Keys that cannot be had right now; the message names the reason, never a token."""


class _KeySource:
    jku: str | None = None

    async def current(self, now: float) -> _KeyIndex:
        raise NotImplementedError

    async def refreshed(self, now: float) -> _KeyIndex | None:
        """Newer keys after an unknown kid, or None when none may be had now."""
        return None


class _FileKeys(_KeySource):
    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._index: _KeyIndex | None = None

    async def current(self, now: float) -> _KeyIndex:
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            if stamp != self._stamp or self._index is None:
                self._index = _index_of_jwks(json.loads(self.path.read_bytes()))
                self._stamp = stamp
        except (OSError, ValueError) as exc:
            raise _Unavailable(f"{self.path}: {type(exc).__name__}") from None
        return self._index


class _UrlKeys(_KeySource):
    def __init__(self, uri: str, verifier: Verifier) -> None:
        self.jku = uri
        self._verifier = verifier
        self._index: _KeyIndex | None = None
        self._fetched_at = -math.inf
        self._attempted_at = -math.inf
        self._refreshed_at = -math.inf
        self._failed = False
        self._lock = asyncio.Lock()
        self._generation = 0

    async def current(self, now: float) -> _KeyIndex:
        settings = self._verifier.settings
        if self._index is not None and now - self._fetched_at < settings.jwks_cache_ttl_s:
            return self._index
        if self._failed and now - self._attempted_at < settings.jwks_min_refresh_interval_s:
            raise _Unavailable("the last fetch failed moments ago")  # not one slow request per token
        return await self._fetch(now)

    async def refreshed(self, now: float) -> _KeyIndex | None:
        # Unknown kids are cheap to invent: each may cost the issuer one request per interval, no more.
        if now - self._refreshed_at < self._verifier.settings.jwks_min_refresh_interval_s:
            return None
        self._refreshed_at = now
        return await self._fetch(now)

    async def _fetch(self, now: float) -> _KeyIndex:
        seen = self._generation
        async with self._lock:
            if self._generation != seen:  # fetched by another request while this one waited: one fetch for all
                if self._failed or self._index is None:
                    raise _Unavailable("the fetch just made failed")
                return self._index
            self._generation += 1
            self._attempted_at = now
            try:
                index = _index_of_jwks(json.loads(await self._download()))
            except (httpx.HTTPError, ValueError, _Unavailable) as exc:
                self._failed = True
                log.warning("keys of an issuer could not be fetched from %s: %s", self.jku, type(exc).__name__)
                raise _Unavailable(type(exc).__name__) from None
            self._index, self._fetched_at, self._failed = index, now, False
            return index

    async def _download(self) -> bytes:
        http = self._verifier.http
        async with http.stream("GET", self.jku, timeout=JWKS_FETCH_TIMEOUT_S,
                               headers={"Accept": "application/jwk-set+json, application/json"}) as response:
            if response.status_code != 200:
                raise _Unavailable(f"HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > JWKS_MAX_BYTES:
                    raise _Unavailable("JWKS too large")
        return bytes(body)


class _OwnKeys(_KeySource):
    def __init__(self, keys: VisaKeys, jku: str) -> None:
        self.jku = jku
        self._keys = keys
        self._of: tuple[Key, ...] | None = None
        self._index: _KeyIndex | None = None

    async def current(self, now: float) -> _KeyIndex:
        served = self._keys.verification_keys()  # the same tuple until the keys rotate
        if served is not self._of or self._index is None:
            self._index = _KeyIndex((key.kid, key) for key in served)
            self._of = served
        return self._index


# -- the verifier ------------------------------------------------------------------------------------------


class Verifier:
    """Verifies login tokens, visas and passports against the trusted issuers of ``settings``."""

    def __init__(self, settings: Settings, *, own_keys: VisaKeys | None = None,
                 http: httpx.AsyncClient | None = None, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self._own_http = http is None
        self.http = http if http is not None else httpx.AsyncClient(follow_redirects=False)
        self._issuers: dict[str, tuple[TrustedIssuer, _KeySource]] = {}
        for trusted in settings.issuers():
            source: _KeySource = (_FileKeys(trusted.jwks_file) if trusted.jwks_file is not None
                                  else _UrlKeys(trusted.jwks_uri, self))  # type: ignore[arg-type]
            self._issuers[trusted.issuer] = (trusted, source)
        self._own_issuer: str | None = None
        self._own: _OwnKeys | None = None
        if own_keys is not None:
            self._own_issuer = settings.gateway_url
            self._own = _OwnKeys(own_keys, node_jku(settings))

    async def aclose(self) -> None:
        if self._own_http:
            await self.http.aclose()

    async def login(self, token: str) -> Principal:
        """The caller of a bearer token from a trusted login issuer."""
        jws = _parse(token, self.settings.auth_max_token_bytes)
        claims, issuer, _ = await self._verified(jws, "login")
        if not _names_audience(claims.get("aud"), self.settings.auth_audience):
            raise CredentialError("wrong_audience", "the token is not meant for this node (aud)")
        roles = claims.get(self.settings.auth_roles_claim, [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise CredentialError("invalid_claim", "the token's roles claim is not a list of strings")
        return Principal(
            user_id=_subject(claims), issuer=issuer, roles=frozenset(roles),
            researcher="researcher" in roles, steward=f"steward:{self.settings.node_id}" in roles,
            auditor="auditor" in roles, operator="operator" in roles, output_checker="output_checker" in roles,
            dacs=frozenset(r.removeprefix("dac_member:") for r in roles
                           if r.startswith("dac_member:") and len(r) > len("dac_member:")),
            expires_at=_datetime(claims["exp"], "exp"),
        )

    async def visas(self, tokens: Sequence[str]) -> list[Visa]:
        """The verified visas of ``tokens``: each a passport (its visas, each verified) or a bare visa."""
        if isinstance(tokens, str):
            raise TypeError("visas() takes a sequence of tokens, not one token")
        found: list[Visa] = []
        limit = self.settings.auth_max_token_bytes
        for token in tokens:
            jws = _parse(token, max(limit, MAX_PASSPORT_BYTES))
            if "ga4gh_passport_v1" in jws.claims:
                found += await self._passport(jws)
            elif len(token) > limit:  # type: ignore[arg-type]
                raise CredentialError("too_large", f"the visa is longer than {limit} bytes")
            else:
                found.append(await self._visa(jws))
        return found

    # -- the kinds ------------------------------------------------------------------------------------

    async def _passport(self, jws: _Jws) -> list[Visa]:
        claims, _, _ = await self._verified(jws, "passport")
        self._check_audience_if_any(claims)
        subject = _subject(claims)
        listed = claims["ga4gh_passport_v1"]
        if not isinstance(listed, list) or not all(isinstance(v, str) for v in listed):
            raise CredentialError("invalid_claim", "the passport's ga4gh_passport_v1 claim is not a list of visas")
        if len(listed) > MAX_VISAS_PER_PASSPORT:
            raise CredentialError("too_large", f"the passport lists more than {MAX_VISAS_PER_PASSPORT} visas")
        visas = []
        for token in listed:
            try:
                visa_jws = _parse(token, self.settings.auth_max_token_bytes)
                if "ga4gh_passport_v1" in visa_jws.claims:
                    raise CredentialError("not_a_visa", "the token is a passport, not a visa")
                visa = await self._visa(visa_jws)
            except CredentialError as exc:
                if exc.code == "untrusted_issuer":  # Passport v1.2 §8.3: ignored, not refused
                    continue
                raise CredentialError(exc.code, f"a visa in the passport: {exc}", status=exc.status) from None
            if visa.user_id != subject:
                raise CredentialError("subject_mismatch", "a visa in the passport is for another subject")
            visas.append(visa)
        return visas

    async def _visa(self, jws: _Jws) -> Visa:
        claims, issuer, own = await self._verified(jws, "visa")
        self._check_audience_if_any(claims)
        subject = _subject(claims)
        body = claims.get("ga4gh_visa_v1")
        if not isinstance(body, dict):
            raise CredentialError("not_a_visa", "the token is not a GA4GH visa (no ga4gh_visa_v1 object)")
        for name in ("type", "value", "source"):
            if not isinstance(body.get(name), str):
                raise CredentialError("not_a_visa", f"the visa's ga4gh_visa_v1 has no {name} string")
        if not isinstance(body.get("by", ""), str) or not isinstance(body.get("conditions", []), list):
            raise CredentialError("not_a_visa", "the visa's by or conditions is not valid")
        if "asserted" not in body:
            raise CredentialError("not_a_visa", "the visa's ga4gh_visa_v1 has no asserted time")
        jti = claims.get("jti")
        grant = claims.get(GRANT_CLAIM) if own else None
        return Visa(
            issuer=issuer, user_id=subject, type=body["type"], value=body["value"], source=body["source"],
            by=body.get("by"), asserted=_datetime(body["asserted"], "asserted"),
            expires_at=_datetime(claims["exp"], "exp"), jti=jti if isinstance(jti, str) else None, own=own,
            grant_id=grant if isinstance(grant, str) else None, conditions=body.get("conditions"), claims=body,
        )

    def _check_audience_if_any(self, claims: dict[str, Any]) -> None:
        if "aud" in claims and not _names_audience(claims["aud"], self.settings.auth_audience):
            raise CredentialError("wrong_audience", "the token is meant for another audience (aud)")

    # -- what every kind needs ----------------------------------------------------------------------------

    async def _verified(self, jws: _Jws, kind: Kind) -> tuple[dict[str, Any], str, bool]:
        """The claims of a token whose signature and times hold, its issuer, and whether it is this node."""
        header = jws.header
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise CredentialError("algorithm_not_allowed", "the token's signing algorithm is not allowed")
        if "crit" in header:
            raise CredentialError("malformed", "the token has critical header parameters this node does not know")
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str)
                                or typ.lower().removeprefix("application/") not in _TYPS[kind]):
            raise CredentialError("wrong_token_type", f"the token's type (typ) is not that of {_KIND_NAMES[kind]}")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise CredentialError("malformed", "the token's key id (kid) is not a string")

        issuer = jws.claims.get("iss")
        if not isinstance(issuer, str):
            raise CredentialError("missing_claim", "the token has no iss claim")
        source, own = self._source(issuer, kind)
        if kind != "login" and "jku" in header and header["jku"] != source.jku:
            raise CredentialError("untrusted_jku", "the token's key URL (jku) is not its issuer's")

        key = await self._key(source, kid, alg)
        if not JWSRegistry.algorithms[alg].verify(jws.signing_input, jws.signature, key):
            raise CredentialError("invalid_signature", "the token's signature does not verify")

        self._check_times(jws.claims)
        return jws.claims, issuer, own

    def _source(self, issuer: str, kind: Kind) -> tuple[_KeySource, bool]:
        if kind != "login" and self._own is not None and issuer == self._own_issuer:
            return self._own, True
        trusted = self._issuers.get(issuer)
        if trusted is None:
            raise CredentialError("untrusted_issuer", "the token's issuer is not trusted by this node")
        if kind not in trusted[0].kinds:
            raise CredentialError("untrusted_issuer", f"the token's issuer is not trusted for {_KIND_NAMES[kind]}")
        return trusted[1], False

    async def _key(self, source: _KeySource, kid: str | None, alg: str) -> Key:
        now = self.clock()
        try:
            index = await source.current(now)
            key = index.find(kid, alg)
            if key is None and not (kid is not None and index.knows(kid)):
                newer = await source.refreshed(now)
                if newer is not None:
                    index, key = newer, newer.find(kid, alg)
        except _Unavailable:
            raise CredentialError("keys_unavailable", "the issuer's keys cannot be fetched right now") from None
        if key is not None:
            return key
        if kid is not None and index.knows(kid):
            raise CredentialError("algorithm_not_allowed", "the token's algorithm does not fit its key")
        if kid is None:
            raise CredentialError("unknown_key", "the token names no key (kid) and its issuer has not exactly one "
                                                 "key for its algorithm")
        raise CredentialError("unknown_key", "the issuer has no key with the token's key id (kid)")

    def _check_times(self, claims: dict[str, Any]) -> None:
        now, skew = self.clock(), self.settings.auth_clock_skew_s
        if _timestamp(claims, "exp", required=True) + skew <= now:  # type: ignore[operator]
            raise CredentialError("expired", "the token has expired")
        nbf = _timestamp(claims, "nbf", required=False)
        if nbf is not None and nbf > now + skew:
            raise CredentialError("not_yet_valid", "the token is not valid yet (nbf)")
        if _timestamp(claims, "iat", required=True) > now + skew:  # type: ignore[operator]
            raise CredentialError("issued_in_future", "the token was issued in the future (iat)")


def _timestamp(claims: dict[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise CredentialError("missing_claim", f"the token has no {name} claim")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= _LAST_TIMESTAMP:
        raise CredentialError("invalid_claim", f"the token's {name} claim is not a time")
    return value


def _datetime(value: Any, name: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= _LAST_TIMESTAMP:
        raise CredentialError("invalid_claim", f"the token's {name} is not a time")
    return datetime.fromtimestamp(value, UTC)


def _subject(claims: dict[str, Any]) -> str:
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise CredentialError("missing_claim", "the token has no sub claim")
    return sub


def _names_audience(aud: Any, ours: str) -> bool:
    if isinstance(aud, str):
        return aud == ours
    return isinstance(aud, list) and ours in aud
