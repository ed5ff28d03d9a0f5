"""The node as a GA4GH visa issuer (Passport v1.2), and the local profile's development issuers.

The node signs a ``ControlledAccessGrants`` visa for each active grant its DAC approved, and a
passport bundling a user's visas. Its signing keys are JWK files in ``settings.visa_keys_path``
(directory 0700, files 0600), one file per key (``<kid>.jwk``) recording when the key was made:
the newest signs, and the newest two are served at ``/.well-known/jwks.json`` so that visas
signed just before a rotation still verify. ``rotate_visa_keys`` adds a key and retires the ones
older than the previous: their private parts are deleted and their public parts kept under
``retired/``. Rotate no more often than ``visa_ttl_max_s``, or visas still alive stop verifying.
A ``VisaKeys`` notices a rotation made by another process (the directory changes), so the
gateway signs with the new key without a restart.

In the local profile, ``genomebus up`` also creates two development issuers under
``settings.dev_issuer_keys_path``: ``DEV_ISSUER`` signs login tokens (``genomebus token issue``)
and ``DEV_CENTRAL_ISSUER`` stands in for a central access service that issues visas. Each has a
private JWK (0600) and a public JWKS file, which the settings list among the trusted issuers.
The production profile refuses both: nothing here issues a development token there.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, Key, RSAKey

from genomebus.infra.settings import DEV_CENTRAL_ISSUER, DEV_ISSUER, Settings

log = logging.getLogger("genomebus.infra.visas")

VISA_TYP = "vnd.ga4gh.visa+jwt"
PASSPORT_TYP = "vnd.ga4gh.passport+jwt"
CONTROLLED_ACCESS_GRANTS = "ControlledAccessGrants"
GRANT_CLAIM = "genomebus_grant"
"""A private claim of the node's visas: the grant a visa stands for (``ga4gh_visa_v1`` is GA4GH's to define)."""

VISA_KEY_ALG = "ES256"
SERVED_KEYS = 2  # the current key and, during a rotation, the previous one
RETIRED_DIR = "retired"
KEY_SUFFIX = ".jwk"

DEV_ISSUER_FILE = "dev-issuer"
DEV_CENTRAL_FILE = "dev-central"
_DEV_KEYS = {DEV_ISSUER_FILE: "RS256", DEV_CENTRAL_FILE: "ES256"}  # RS256 like most login issuers


class VisaKeyError(RuntimeError):
    """The node's visa keys are missing or unreadable; the message says where."""


class DevIssuerError(RuntimeError):
    """A development issuer was asked for outside the local profile, or before ``genomebus up`` made it."""


def node_jku(settings: Settings) -> str:
    """Where the node serves its visa keys: the ``jku`` of every visa and passport it signs."""
    return f"{settings.gateway_url}/.well-known/jwks.json"


# -- the node's visa keys ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _StoredKey:
    key: Key
    created_at: datetime
    path: Path


class VisaKeys:
    """The node's visa signing keys: the newest signs; the newest two are served and verify."""

    def __init__(self, path: Path, stored: Sequence[_StoredKey], stamp: frozenset[str]) -> None:
        self.path = path
        self._set(stored, stamp)

    @classmethod
    def load(cls, path: Path) -> VisaKeys:
        """Every key in ``path``; raises ``VisaKeyError`` if there is none (``genomebus up`` makes one)."""
        path = Path(path)
        stamp, stored = _stamp(path), _read_keys(path)
        if not stored:
            raise VisaKeyError(f"no visa signing key in {path}; `genomebus up` makes one in the local profile, "
                               "production provisions visa_keys_dir")
        return cls(path, stored, stamp)

    def signing_key(self) -> Key:
        """The key that signs now: the newest."""
        self._follow_rotation()
        return self._stored[0].key

    def verification_keys(self) -> tuple[Key, ...]:
        """The served keys (current first). The same tuple is returned until the keys change."""
        self._follow_rotation()
        return self._served

    def public_jwks(self) -> dict[str, Any]:
        """``{"keys": [...]}``: public parts of the current and the previous key, with kid, alg and use."""
        return {"keys": [key.as_dict(private=False) for key in self.verification_keys()]}

    def _set(self, stored: Sequence[_StoredKey], stamp: frozenset[str]) -> None:
        self._stored = list(stored)
        self._served = tuple(s.key for s in self._stored[:SERVED_KEYS])
        self._stamp = stamp

    def _follow_rotation(self) -> None:
        # Another process (``genomebus keys rotate``, a second gateway) may have rotated the keys.
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return
        try:
            stored = _read_keys(self.path)
        except (VisaKeyError, OSError) as exc:  # mid-rotation or unreadable: keep signing with what we have
            log.warning("visa keys in %s could not be reloaded (%s); keeping the loaded ones",
                        self.path, type(exc).__name__)
            return
        if stored:
            self._set(stored, stamp)


def ensure_visa_keys(path: Path) -> None:
    """Give the node a visa signing key if it has none; existing keys are never replaced."""
    path = Path(path)
    _private_dir(path)
    if not any(path.glob(f"*{KEY_SUFFIX}")):
        _new_visa_key(path, datetime.now(UTC))


def rotate_visa_keys(path: Path) -> str:
    """Add a key that signs from now, keep the previous one served, retire older ones; return the new kid."""
    path = Path(path)
    _private_dir(path)
    existing = _read_keys(path)
    created_at = datetime.now(UTC)
    if existing and created_at <= existing[0].created_at:  # the new key must be the newest, whatever the clock did
        created_at = existing[0].created_at + timedelta(microseconds=1)
    new = _new_visa_key(path, created_at)
    retired = _private_dir(path / RETIRED_DIR)
    for old in existing[SERVED_KEYS - 1:]:
        # The public part stays, to check an old visa in an investigation; the private part goes.
        _write_file(retired / old.path.name, json.dumps(
            {"created_at": old.created_at.isoformat(), "jwk": old.key.as_dict(private=False)}).encode(), 0o600)
        old.path.unlink()
    return new.kid  # type: ignore[return-value]


def _new_visa_key(path: Path, created_at: datetime) -> Key:
    key = ECKey.generate_key("P-256", parameters={"alg": VISA_KEY_ALG, "use": "sig"}, private=True, auto_kid=True)
    content = {"created_at": created_at.isoformat(), "jwk": key.as_dict(private=True)}
    _write_file(path / f"{key.kid}{KEY_SUFFIX}", json.dumps(content).encode(), 0o600, exclusive=True)
    return key


def _read_keys(path: Path) -> list[_StoredKey]:
    """The keys in ``path``, newest first."""
    stored = []
    for file in sorted(path.glob(f"*{KEY_SUFFIX}")):
        try:
            content = json.loads(file.read_bytes())
            key = JWKRegistry.import_key(content["jwk"])
            created_at = datetime.fromisoformat(content["created_at"])
        except (OSError, ValueError, KeyError, TypeError, JoseError) as exc:
            raise VisaKeyError(f"{file} is not a visa key file ({type(exc).__name__})") from None
        if not key.is_private or key.kid is None or key.alg is None:
            raise VisaKeyError(f"{file} must hold a private JWK with kid and alg")
        stored.append(_StoredKey(key, created_at, file))
    return sorted(stored, key=lambda s: s.created_at, reverse=True)


def _stamp(path: Path) -> frozenset[str]:
    """The key files' names: every key has its own (``<kid>.jwk``), so a rotation always changes them.

    Cheaper than reading the keys, and unlike the directory's mtime (coarse on Linux) never misses a change.
    """
    try:
        return frozenset(name for name in os.listdir(path) if name.endswith(KEY_SUFFIX))
    except OSError:
        return frozenset()


# -- issuing ------------------------------------------------------------------------------------------


def issue_visa(keys: VisaKeys, settings: Settings, *, user_id: str, dataset_id: str, grant_id: str,
               asserted: datetime, expires_at: datetime, now: datetime | None = None) -> str:
    """A ``ControlledAccessGrants`` visa for one grant, signed by the node's current key.

    It expires with the grant at the latest, and at most ``visa_ttl_max_s`` after issuance.
    """
    iat = _seconds(now or datetime.now(UTC), "now")
    exp = min(_seconds(expires_at, "expires_at"), iat + settings.visa_ttl_max_s)
    if exp <= iat:
        raise ValueError("the grant has expired: no visa is issued for it")
    claims = {
        "iss": settings.gateway_url,
        "sub": user_id,
        "iat": iat,
        "exp": exp,
        "jti": str(uuid.uuid4()),
        GRANT_CLAIM: grant_id,
        "ga4gh_visa_v1": {
            "type": CONTROLLED_ACCESS_GRANTS,
            "asserted": _seconds(asserted, "asserted"),
            "value": settings.dataset_url(dataset_id),
            "source": f"{settings.gateway_url}/dac",
            "by": "dac",
        },
    }
    return _sign(keys.signing_key(), claims, typ=VISA_TYP, jku=node_jku(settings))


def issue_passport(keys: VisaKeys, settings: Settings, *, user_id: str, visas: Sequence[str],
                   now: datetime | None = None) -> str:
    """A passport of ``user_id``'s visas, living no longer than the shortest-lived of them."""
    iat = _seconds(now or datetime.now(UTC), "now")
    exp = iat + settings.visa_ttl_max_s
    for visa in visas:
        # Read unverified, only to bound the passport's life: whoever presents it gets each visa verified.
        claims = _unverified_claims(visa)
        if claims.get("sub") != user_id:
            raise ValueError("a visa of another subject cannot go into this passport")
        exp = min(exp, int(claims["exp"]))
    if exp <= iat:
        raise ValueError("a visa has expired: no passport is issued with it")
    claims = {"iss": settings.gateway_url, "sub": user_id, "iat": iat, "exp": exp, "jti": str(uuid.uuid4()),
              "ga4gh_passport_v1": list(visas)}
    return _sign(keys.signing_key(), claims, typ=PASSPORT_TYP, jku=node_jku(settings))


def _sign(key: Key, claims: dict[str, Any], *, typ: str, jku: str | None = None) -> str:
    header = {"typ": typ, "alg": key.alg, "kid": key.kid}
    if jku is not None:
        header["jku"] = jku
    return jwt.encode(header, claims, key, algorithms=[key.alg], default_type=None)  # type: ignore[list-item]


def _seconds(moment: datetime, name: str) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return int(moment.timestamp())


def _unverified_claims(token: str) -> dict[str, Any]:
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        int(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        raise ValueError("a visa is not a JWT with an exp") from None
    return claims


# -- the local profile's development issuers --------------------------------------------------------------


def ensure_dev_issuers(settings: Settings) -> None:
    """Create the development login issuer and the stand-in central visa issuer, once (local profile)."""
    _refuse_production(settings)
    directory = _private_dir(settings.dev_issuer_keys_path)
    for name, alg in _DEV_KEYS.items():
        private, public = directory / f"{name}.jwk", directory / f"{name}.jwks.json"
        if private.exists():
            key = JWKRegistry.import_key(json.loads(private.read_bytes()))
        else:
            key = _generate(alg)
            _write_file(private, json.dumps(key.as_dict(private=True)).encode(), 0o600)
        if not public.exists() or json.loads(public.read_bytes()) != {"keys": [key.as_dict(private=False)]}:
            _write_file(public, json.dumps({"keys": [key.as_dict(private=False)]}).encode(), 0o644)


def issue_dev_token(settings: Settings, *, sub: str, roles: Sequence[str], ttl_s: int,
                    audience: str | None = None) -> str:
    """A login token of the development issuer carrying ``roles``; refused outside the local profile."""
    _refuse_production(settings)
    if ttl_s <= 0:
        raise ValueError("ttl_s must be positive")
    now = int(time.time())
    claims = {"iss": DEV_ISSUER, "aud": audience or settings.auth_audience, "sub": sub, "iat": now, "nbf": now,
              "exp": now + ttl_s, "jti": str(uuid.uuid4()), settings.auth_roles_claim: list(roles)}
    return _sign(_dev_key(settings, DEV_ISSUER_FILE), claims, typ="at+jwt")


def issue_dev_visa(settings: Settings, *, sub: str, dataset_id: str, ttl_s: int) -> str:
    """A ``ControlledAccessGrants`` visa from the stand-in central issuer for one of this node's datasets."""
    _refuse_production(settings)
    if ttl_s <= 0:
        raise ValueError("ttl_s must be positive")
    now = int(time.time())
    claims = {
        "iss": DEV_CENTRAL_ISSUER, "sub": sub, "iat": now, "exp": now + ttl_s, "jti": str(uuid.uuid4()),
        "ga4gh_visa_v1": {"type": CONTROLLED_ACCESS_GRANTS, "asserted": now,
                          "value": settings.dataset_url(dataset_id), "source": DEV_CENTRAL_ISSUER, "by": "dac"},
    }
    # No jku: the development issuer publishes its keys as a file, not at a URL.
    return _sign(_dev_key(settings, DEV_CENTRAL_FILE), claims, typ=VISA_TYP)


def _refuse_production(settings: Settings) -> None:
    if settings.profile != "local":
        raise DevIssuerError("the development issuers exist only in the local profile")


def _dev_key(settings: Settings, name: str) -> Key:
    path = settings.dev_issuer_keys_path / f"{name}.jwk"
    try:
        return JWKRegistry.import_key(json.loads(path.read_bytes()))
    except FileNotFoundError:
        raise DevIssuerError(f"no development issuer key at {path}; start the node with "
                             f"`genomebus up --data-dir {settings.data_dir}`") from None


def _generate(alg: str) -> Key:
    parameters = {"alg": alg, "use": "sig"}
    if alg == "RS256":
        return RSAKey.generate_key(2048, parameters=parameters, private=True, auto_kid=True)  # type: ignore[arg-type]
    return ECKey.generate_key("P-256", parameters=parameters, private=True, auto_kid=True)  # type: ignore[arg-type]


# -- files ----------------------------------------------------------------------------------------------------


def _private_dir(path: Path) -> Path:
    if not path.exists():
        path.mkdir(mode=0o700, parents=True)
        path.chmod(0o700)  # mkdir's mode passes through the umask
    return path


def _write_file(path: Path, content: bytes, mode: int, *, exclusive: bool = False) -> None:
    """Write through a temporary file in the same directory, so a crash never leaves half a key."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
        if exclusive:
            os.link(tmp, path)  # fails if the name exists: a key file is never replaced
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
