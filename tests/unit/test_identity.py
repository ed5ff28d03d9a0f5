"""The verifier: what a login token, a visa or a passport must be to be accepted, and every refusal's code.

Issuers here are key pairs made per test; their JWKS URLs are served by an ``httpx.MockTransport``
that counts fetches and can be made unreachable. Time is a clock the test moves.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import json
import logging
import os
import warnings
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey

from genomebus.infra.identity import MAX_PASSPORT_BYTES, CredentialError, Principal, Verifier, Visa
from genomebus.infra.settings import DEV_CENTRAL_ISSUER, Settings, TrustedIssuer
from genomebus.infra.visas import (
    VisaKeys,
    ensure_dev_issuers,
    ensure_visa_keys,
    issue_dev_visa,
    issue_passport,
    issue_visa,
    rotate_visa_keys,
)

NOW = 1_800_000_000.0
GATEWAY = "http://127.0.0.1:18080"
LOGIN = "https://login.example.org"
CENTRAL = "https://central.example.org"
BROKER = "https://broker.example.org"
DATASET = "GDI-FI-DATASET-00000001"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("GENOMEBUS_"):
            monkeypatch.delenv(name)


# -- issuers, their JWKS endpoints, the clock ----------------------------------------------------------------


class Issuer:
    """A trusted issuer of the test: its signing key, and a factory of tokens signed with it."""

    def __init__(self, iss: str, key: Key, *, kinds: tuple[str, ...]) -> None:
        self.iss, self.key, self.kinds = iss, key, kinds
        self.jwks_uri = f"{iss}/jwks.json"
        self.published: list[Key] = [key]

    def trusted(self) -> TrustedIssuer:
        return TrustedIssuer(issuer=self.iss, kinds=self.kinds, jwks_uri=self.jwks_uri)  # type: ignore[arg-type]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.as_dict(private=False) for k in self.published]}

    def token(self, claims: dict[str, Any], *, key: Key | None = None, **header: Any) -> str:
        key = key or self.key
        head = {"alg": key.alg, "kid": key.kid, **header}
        return jwt.encode({k: v for k, v in head.items() if v is not None}, claims, key,
                          algorithms=[head["alg"]], default_type=None)

    def login(self, **changes: Any) -> str:
        claims = {"iss": self.iss, "sub": "alice@example.org", "aud": "genomebus", "iat": int(NOW),
                  "exp": int(NOW) + 300, "genomebus_roles": ["researcher"], **changes}
        return self.token({k: v for k, v in claims.items() if v is not None})

    def visa(self, *, sub: str = "alice@example.org", typ: str | None = "vnd.ga4gh.visa+jwt",
             jku: str | None = None, **changes: Any) -> str:
        claims = {"iss": self.iss, "sub": sub, "iat": int(NOW), "exp": int(NOW) + 3600, "jti": "visa-1",
                  "ga4gh_visa_v1": {"type": "ControlledAccessGrants", "asserted": int(NOW) - 86400,
                                    "value": f"{GATEWAY}/datasets/{DATASET}", "source": f"{self.iss}/dac",
                                    "by": "dac"}, **changes}
        return self.token({k: v for k, v in claims.items() if v is not None}, typ=typ,
                          jku=jku or self.jwks_uri)

    def passport(self, visas: list[str], *, sub: str = "alice@example.org", **changes: Any) -> str:
        claims = {"iss": self.iss, "sub": sub, "iat": int(NOW), "exp": int(NOW) + 600, "jti": "passport-1",
                  "ga4gh_passport_v1": visas, **changes}
        return self.token(claims, typ="vnd.ga4gh.passport+jwt")


@functools.cache
def rsa(kid: str = "rsa-1", *, twin: int = 0) -> Key:
    """An RSA key, made once per test session (generating one takes a while); ``twin`` another of the same kid."""
    return RSAKey.generate_key(2048, parameters={"kid": kid, "alg": "RS256", "use": "sig"}, private=True)


def ec(kid: str = "ec-1") -> Key:
    return ECKey.generate_key("P-256", parameters={"kid": kid, "alg": "ES256", "use": "sig"}, private=True)


class JwksServer:
    """The issuers' JWKS URLs behind an ``httpx.MockTransport``: counts fetches, can go down."""

    def __init__(self, issuers: list[Issuer]) -> None:
        self.issuers = {i.jwks_uri: i for i in issuers}
        self.fetches: dict[str, int] = {}
        self.down = False
        self.status = 200

    def __call__(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.fetches[url] = self.fetches.get(url, 0) + 1
        if self.down:
            raise httpx.ConnectError("unreachable", request=request)
        if url not in self.issuers:
            return httpx.Response(404)
        return httpx.Response(self.status, json=self.issuers[url].jwks())

    def count(self, issuer: Issuer) -> int:
        return self.fetches.get(issuer.jwks_uri, 0)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def login_issuer() -> Issuer:
    return Issuer(LOGIN, rsa(), kinds=("login",))


@pytest.fixture
def central() -> Issuer:
    return Issuer(CENTRAL, ec(), kinds=("visa",))


@pytest.fixture
def broker() -> Issuer:
    return Issuer(BROKER, ec("broker-1"), kinds=("passport",))


@pytest.fixture
def server(login_issuer: Issuer, central: Issuer, broker: Issuer) -> JwksServer:
    return JwksServer([login_issuer, central, broker])


@pytest.fixture
def settings(tmp_path: Path, login_issuer: Issuer, central: Issuer, broker: Issuer) -> Settings:
    return Settings(data_dir=tmp_path, node_id="FI", gateway_public_url=GATEWAY,
                    trusted_issuers=(login_issuer.trusted(), central.trusted(), broker.trusted()))


@pytest.fixture
def own_keys(settings: Settings) -> VisaKeys:
    ensure_visa_keys(settings.visa_keys_path)
    return VisaKeys.load(settings.visa_keys_path)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def verifier(settings: Settings, own_keys: VisaKeys, server: JwksServer,
                   clock: Clock) -> AsyncIterator[Verifier]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(server))
    verifier = Verifier(settings, own_keys=own_keys, http=http, clock=clock)
    yield verifier
    await verifier.aclose()
    await http.aclose()


async def refused(call: Any, code: str, token: str | None = None, *, status: int = 401) -> CredentialError:
    """Await ``call``; it must fail with ``code`` and ``status``, saying nothing of the token itself."""
    with pytest.raises(CredentialError) as caught:
        await call
    error = caught.value
    assert (error.code, error.status) == (code, status), str(error)
    if token:
        assert not any(part and part in str(error) for part in token.split(".")), "the token leaked"
    return error


def b64(data: bytes | dict[str, Any]) -> str:
    raw = json.dumps(data).encode() if isinstance(data, dict) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def part(token: str, index: int) -> dict[str, Any]:
    """A token's header (0) or payload (1), unverified."""
    segment = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def node_visa(keys: VisaKeys, settings: Settings, *, user_id: str = "alice@example.org", grant_id: str = "g-1") -> str:
    now = datetime.fromtimestamp(NOW, UTC)
    return issue_visa(keys, settings, user_id=user_id, dataset_id=DATASET, grant_id=grant_id,
                      asserted=now - timedelta(days=1), expires_at=now + timedelta(days=30), now=now)


# -- accepted --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("roles", "steward", "dacs"), [
    (["researcher", "steward:FI", "dac_member:FI-DAC-1"], True, {"FI-DAC-1"}),
    (["researcher", "steward:SE"], False, set()),
    (["researcher", "steward:fi", "steward:FI:extra", "dac_member:"], False, set()),
])
async def test_a_good_login_token_gives_its_subject_and_roles(
        verifier: Verifier, login_issuer: Issuer, roles: list[str], steward: bool, dacs: set[str]) -> None:
    principal = await verifier.login(login_issuer.login(genomebus_roles=roles))

    assert principal == Principal(
        user_id="alice@example.org", issuer=LOGIN, roles=frozenset(roles), researcher=True, steward=steward,
        auditor=False, operator=False, output_checker=False, dacs=frozenset(dacs),
        expires_at=datetime.fromtimestamp(NOW + 300, UTC))


async def test_auditor_and_operator_roles_and_an_audience_list(verifier: Verifier, login_issuer: Issuer) -> None:
    principal = await verifier.login(login_issuer.login(aud=["other", "genomebus"],
                                                        genomebus_roles=["auditor", "operator"]))

    assert (principal.researcher, principal.auditor, principal.operator) == (False, True, True)


async def test_no_roles_claim_is_no_role(verifier: Verifier, login_issuer: Issuer) -> None:
    principal = await verifier.login(login_issuer.login(genomebus_roles=None))

    assert principal.roles == frozenset() and not principal.researcher


async def test_clock_skew_is_tolerated(verifier: Verifier, login_issuer: Issuer, settings: Settings) -> None:
    skew = settings.auth_clock_skew_s
    token = login_issuer.login(exp=int(NOW) - skew + 5, iat=int(NOW) + skew - 5, nbf=int(NOW) + skew - 5)

    assert (await verifier.login(token)).user_id == "alice@example.org"


async def test_keys_are_fetched_once_and_reused(verifier: Verifier, login_issuer: Issuer,
                                                server: JwksServer) -> None:
    token = login_issuer.login()
    for _ in range(50):
        await verifier.login(token)

    assert server.count(login_issuer) == 1


async def test_concurrent_first_requests_share_one_fetch(verifier: Verifier, login_issuer: Issuer,
                                                         server: JwksServer) -> None:
    await asyncio.gather(*(verifier.login(login_issuer.login()) for _ in range(10)))

    assert server.count(login_issuer) == 1


async def test_a_visa_of_a_trusted_central_issuer(verifier: Verifier, central: Issuer) -> None:
    [visa] = await verifier.visas([central.visa()])

    assert visa == Visa(issuer=CENTRAL, user_id="alice@example.org", type="ControlledAccessGrants",
                        value=f"{GATEWAY}/datasets/{DATASET}", source=f"{CENTRAL}/dac", by="dac",
                        asserted=datetime.fromtimestamp(NOW - 86400, UTC),
                        expires_at=datetime.fromtimestamp(NOW + 3600, UTC), jti="visa-1", own=False)
    assert visa.claims["type"] == "ControlledAccessGrants" and visa.conditions is None


async def test_a_visa_and_a_passport_of_this_node(verifier: Verifier, own_keys: VisaKeys,
                                                  settings: Settings, server: JwksServer) -> None:
    visa = node_visa(own_keys, settings)
    passport = issue_passport(own_keys, settings, user_id="alice@example.org", visas=[visa],
                              now=datetime.fromtimestamp(NOW, UTC))

    [bare] = await verifier.visas([visa])
    [inside] = await verifier.visas([passport])

    assert bare == inside
    assert (bare.issuer, bare.own, bare.grant_id, bare.value) == (GATEWAY, True, "g-1",
                                                                  f"{GATEWAY}/datasets/{DATASET}")
    assert server.fetches == {}  # the node's own keys are never fetched over HTTP


async def test_a_broker_passport_with_visas_of_a_central_issuer_and_of_this_node(
        verifier: Verifier, broker: Issuer, central: Issuer, own_keys: VisaKeys, settings: Settings) -> None:
    passport = broker.passport([central.visa(), node_visa(own_keys, settings)])

    visas = await verifier.visas([passport])

    assert [(v.issuer, v.own) for v in visas] == [(CENTRAL, False), (GATEWAY, True)]


async def test_inside_a_passport_a_visa_of_an_untrusted_issuer_is_ignored(
        verifier: Verifier, broker: Issuer, central: Issuer) -> None:
    stranger = Issuer("https://stranger.example.org", ec("s-1"), kinds=("visa",))

    visas = await verifier.visas([broker.passport([stranger.visa(), central.visa()])])

    assert [v.issuer for v in visas] == [CENTRAL]  # Passport v1.2 §8.3: ignored, not refused


async def test_a_development_central_visa(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, gateway_port=18080)
    ensure_dev_issuers(settings)
    verifier = Verifier(settings)
    try:
        [visa] = await verifier.visas([issue_dev_visa(settings, sub="alice", dataset_id=DATASET, ttl_s=600)])
    finally:
        await verifier.aclose()

    assert (visa.issuer, visa.user_id, visa.value, visa.by, visa.own) == (
        DEV_CENTRAL_ISSUER, "alice", settings.dataset_url(DATASET), "dac", False)


async def test_after_a_rotation_a_visa_of_the_previous_key_still_verifies(
        verifier: Verifier, own_keys: VisaKeys, settings: Settings) -> None:
    before = node_visa(own_keys, settings)
    previous_kid = own_keys.signing_key().kid

    new_kid = rotate_visa_keys(settings.visa_keys_path)
    after = node_visa(own_keys, settings)

    assert own_keys.signing_key().kid == new_kid != previous_kid
    assert [k["kid"] for k in own_keys.public_jwks()["keys"]] == [new_kid, previous_kid]
    assert [v.own for v in await verifier.visas([before, after])] == [True, True]
    assert part(after, 0)["kid"] == new_kid


async def test_an_issuer_rotating_its_keys_is_fetched_again_for_the_new_kid(
        verifier: Verifier, login_issuer: Issuer, server: JwksServer) -> None:
    await verifier.login(login_issuer.login())
    login_issuer.key = rsa("rsa-2")
    login_issuer.published.append(login_issuer.key)

    assert (await verifier.login(login_issuer.login())).user_id == "alice@example.org"
    assert server.count(login_issuer) == 2


async def test_keys_from_a_jwks_file_are_read_again_when_it_changes(tmp_path: Path, clock: Clock) -> None:
    issuer = Issuer("https://file-issuer.example.org", ec("f-1"), kinds=("login",))
    jwks_file = tmp_path / "issuer.jwks.json"
    jwks_file.write_text(json.dumps(issuer.jwks()))
    settings = Settings(data_dir=tmp_path, trusted_issuers=(
        TrustedIssuer(issuer=issuer.iss, kinds=("login",), jwks_file=jwks_file),))
    verifier = Verifier(settings, clock=clock)
    try:
        await verifier.login(issuer.login())
        issuer.key = issuer.published[0] = ec("f-2")
        jwks_file.write_text(json.dumps(issuer.jwks()) + "\n")

        assert (await verifier.login(issuer.login())).issuer == issuer.iss
        jwks_file.unlink()
        await refused(verifier.login(issuer.login()), "keys_unavailable", status=503)
    finally:
        await verifier.aclose()


async def test_a_token_without_kid_needs_exactly_one_fitting_key(
        verifier: Verifier, login_issuer: Issuer, clock: Clock, settings: Settings) -> None:
    def claims() -> dict[str, Any]:
        return {"iss": LOGIN, "sub": "alice", "aud": "genomebus", "iat": int(clock.now), "exp": int(clock.now) + 60}

    assert (await verifier.login(login_issuer.token(claims(), kid=None))).user_id == "alice"

    login_issuer.published.append(rsa("rsa-2"))
    clock.now += settings.jwks_cache_ttl_s + 1  # the keys are fetched again: now two fit RS256

    await refused(verifier.login(login_issuer.token(claims(), kid=None)), "unknown_key")


async def test_eddsa_and_ps256_are_accepted(tmp_path: Path, server: JwksServer, clock: Clock) -> None:
    ed = Issuer("https://ed.example.org", OKPKey.generate_key(
        "Ed25519", parameters={"kid": "ed-1", "alg": "EdDSA"}, private=True), kinds=("login",))
    ps = Issuer("https://ps.example.org", RSAKey.generate_key(
        2048, parameters={"kid": "ps-1", "alg": "PS256"}, private=True), kinds=("login",))
    server.issuers.update({ed.jwks_uri: ed, ps.jwks_uri: ps})
    settings = Settings(data_dir=tmp_path, trusted_issuers=(ed.trusted(), ps.trusted()))
    with warnings.catch_warnings():  # joserfc warns when signing with EdDSA (RFC 9864 names curves instead)
        warnings.simplefilter("ignore", SecurityWarning)
        tokens = [ed.login(), ps.login()]
    async with httpx.AsyncClient(transport=httpx.MockTransport(server)) as http:
        verifier = Verifier(settings, http=http, clock=clock)

        assert [(await verifier.login(token)).issuer for token in tokens] == [ed.iss, ps.iss]


# -- refused: forgeries ------------------------------------------------------------------------------------------


async def test_a_signature_by_another_key_with_the_same_kid_is_refused(
        verifier: Verifier, login_issuer: Issuer) -> None:
    forged = login_issuer.token(
        {"iss": LOGIN, "sub": "mallory", "aud": "genomebus", "iat": int(NOW), "exp": int(NOW) + 60},
        key=rsa(login_issuer.key.kid, twin=1))  # type: ignore[arg-type]

    await refused(verifier.login(forged), "invalid_signature", forged)


async def test_a_tampered_payload_is_refused(verifier: Verifier, login_issuer: Issuer) -> None:
    token = login_issuer.login(genomebus_roles=["researcher"])
    header, _, signature = token.split(".")
    claims = part(token, 1)
    claims["genomebus_roles"] = ["researcher", "steward:FI"]
    tampered = f"{header}.{b64(claims)}.{signature}"

    await refused(verifier.login(tampered), "invalid_signature", tampered)


async def test_alg_none_is_refused(verifier: Verifier, login_issuer: Issuer) -> None:
    claims = {"iss": LOGIN, "sub": "mallory", "aud": "genomebus", "iat": int(NOW), "exp": int(NOW) + 60}
    for unsigned in (f"{b64({'alg': 'none', 'kid': 'rsa-1'})}.{b64(claims)}.",
                     f"{b64({'alg': 'None'})}.{b64(claims)}.", f"{b64({'typ': 'JWT'})}.{b64(claims)}."):
        await refused(verifier.login(unsigned), "algorithm_not_allowed", unsigned)


async def test_hs256_signed_with_the_issuers_public_key_is_refused(
        verifier: Verifier, login_issuer: Issuer, central: Issuer) -> None:
    """The classic confusion: a verifier that lets the token choose HMAC uses the public key as the secret."""
    claims = {"iss": LOGIN, "sub": "mallory", "aud": "genomebus", "iat": int(NOW), "exp": int(NOW) + 60,
              "genomebus_roles": ["steward:FI"]}
    def forge(issuer: Issuer, claims: dict[str, Any], secret: bytes) -> str:
        signing_input = f"{b64({'alg': 'HS256', 'kid': issuer.key.kid, 'typ': 'JWT'})}.{b64(claims)}"
        return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())}"

    for secret in (login_issuer.key.as_pem(private=False), json.dumps(login_issuer.jwks()["keys"][0]).encode()):
        forged = forge(login_issuer, claims, secret)
        await refused(verifier.login(forged), "algorithm_not_allowed", forged)
    forged_visa = forge(central, {"iss": CENTRAL, "sub": "mallory"}, central.key.as_pem(private=False))
    await refused(verifier.visas([forged_visa]), "algorithm_not_allowed", forged_visa)


async def test_an_algorithm_that_does_not_fit_the_key_is_refused(verifier: Verifier, login_issuer: Issuer) -> None:
    """An RSA key named by kid, but the header says ES256 (or PS256 against a key pinned to RS256)."""
    claims = {"iss": LOGIN, "sub": "mallory", "aud": "genomebus", "iat": int(NOW), "exp": int(NOW) + 60}
    for alg in ("ES256", "PS256"):
        token = f"{b64({'alg': alg, 'kid': login_issuer.key.kid})}.{b64(claims)}.{b64(b'x' * 64)}"

        await refused(verifier.login(token), "algorithm_not_allowed", token)


async def test_a_jwks_publishing_a_private_key_is_not_used(
        verifier: Verifier, login_issuer: Issuer, server: JwksServer) -> None:
    leaky = {"keys": [login_issuer.key.as_dict(private=True)]}
    server.issuers[login_issuer.jwks_uri].jwks = lambda: leaky  # type: ignore[method-assign]

    await refused(verifier.login(login_issuer.login()), "keys_unavailable", status=503)


# -- refused: issuers and keys ----------------------------------------------------------------------------------


async def test_an_untrusted_issuer_is_refused_and_its_keys_never_fetched(
        verifier: Verifier, server: JwksServer) -> None:
    stranger = Issuer("https://stranger.example.org", rsa("stranger-1"), kinds=("login",))
    token = stranger.login()

    await refused(verifier.login(token), "untrusted_issuer", token)
    await refused(verifier.visas([stranger.visa()]), "untrusted_issuer")
    assert server.fetches == {}


async def test_each_kind_only_from_issuers_trusted_for_it(
        verifier: Verifier, login_issuer: Issuer, central: Issuer, broker: Issuer, own_keys: VisaKeys,
        settings: Settings) -> None:
    error = await refused(verifier.login(central.login()), "untrusted_issuer")
    assert "logins" in str(error)
    await refused(verifier.visas([login_issuer.visa()]), "untrusted_issuer")
    await refused(verifier.visas([central.passport([])]), "untrusted_issuer")
    await refused(verifier.visas([broker.visa()]), "untrusted_issuer")
    own_as_login = jwt.encode({"alg": "ES256", "kid": own_keys.signing_key().kid}, {
        "iss": GATEWAY, "sub": "alice", "aud": "genomebus", "iat": int(NOW), "exp": int(NOW) + 60},
        own_keys.signing_key())
    await refused(verifier.login(own_as_login), "untrusted_issuer")  # the node issues visas, not logins


async def test_an_unknown_kid_fetches_again_at_most_once_per_interval(
        verifier: Verifier, login_issuer: Issuer, server: JwksServer, clock: Clock, settings: Settings) -> None:
    await verifier.login(login_issuer.login())
    stranger_key = rsa("not-published")

    for _ in range(5):
        await refused(verifier.login(login_issuer.token(
            {"iss": LOGIN, "sub": "x", "aud": "genomebus", "iat": int(NOW), "exp": int(NOW) + 600},
            key=stranger_key)), "unknown_key")
    assert server.count(login_issuer) == 2  # the first fetch, and one refetch for the unknown kid

    clock.now += settings.jwks_min_refresh_interval_s
    await refused(verifier.login(login_issuer.token(
        {"iss": LOGIN, "sub": "x", "aud": "genomebus", "iat": int(NOW), "exp": int(NOW) + 600},
        key=stranger_key)), "unknown_key")
    assert server.count(login_issuer) == 3


async def test_unreachable_keys_fail_closed(verifier: Verifier, login_issuer: Issuer, server: JwksServer,
                                            clock: Clock, settings: Settings) -> None:
    server.down = True

    error = await refused(verifier.login(login_issuer.login()), "keys_unavailable", status=503)
    assert "unreachable" not in str(error)
    await refused(verifier.login(login_issuer.login()), "keys_unavailable", status=503)
    assert server.count(login_issuer) == 1  # a failed fetch is not repeated for every request

    server.down = False
    clock.now += settings.jwks_min_refresh_interval_s
    assert (await verifier.login(login_issuer.login())).user_id == "alice@example.org"


async def test_cached_keys_serve_within_their_ttl_while_the_issuer_is_down(
        verifier: Verifier, login_issuer: Issuer, server: JwksServer, clock: Clock, settings: Settings) -> None:
    await verifier.login(login_issuer.login())
    server.down = True

    clock.now += settings.jwks_cache_ttl_s - 1
    assert (await verifier.login(login_issuer.login(exp=int(clock.now) + 60))).issuer == LOGIN

    clock.now += 2
    await refused(verifier.login(login_issuer.login(exp=int(clock.now) + 60)), "keys_unavailable", status=503)


@pytest.mark.parametrize("status", [404, 500])
async def test_a_jwks_endpoint_answering_an_error_fails_closed(
        verifier: Verifier, login_issuer: Issuer, server: JwksServer, status: int) -> None:
    server.status = status

    await refused(verifier.login(login_issuer.login()), "keys_unavailable", status=503)


async def test_a_visa_whose_jku_is_not_its_issuers_is_refused_and_the_url_never_fetched(
        verifier: Verifier, central: Issuer, server: JwksServer, own_keys: VisaKeys, settings: Settings) -> None:
    evil = "https://evil.example.org/jwks.json"
    token = central.visa(jku=evil)

    await refused(verifier.visas([token]), "untrusted_jku", token)
    own_claims = {"iss": GATEWAY, "sub": "alice", "iat": int(NOW), "exp": int(NOW) + 60}
    await refused(verifier.visas([jwt.encode({"alg": "ES256", "kid": own_keys.signing_key().kid, "jku": evil},
                                             own_claims, own_keys.signing_key())]), "untrusted_jku")
    assert evil not in server.fetches


# -- refused: times, audience, claims ---------------------------------------------------------------------------


@pytest.mark.parametrize(("changes", "code"), [
    ({"exp": int(NOW) - 61}, "expired"),
    ({"exp": int(NOW) - 60}, "expired"),
    ({"exp": None}, "missing_claim"),
    ({"exp": "tomorrow"}, "invalid_claim"),
    ({"exp": True}, "invalid_claim"),
    ({"nbf": int(NOW) + 61}, "not_yet_valid"),
    ({"iat": int(NOW) + 61}, "issued_in_future"),
    ({"iat": None}, "missing_claim"),
    ({"aud": "another-service"}, "wrong_audience"),
    ({"aud": ["another-service"]}, "wrong_audience"),
    ({"aud": None}, "wrong_audience"),
    ({"sub": None}, "missing_claim"),
    ({"sub": ""}, "missing_claim"),
    ({"genomebus_roles": "steward:FI"}, "invalid_claim"),
])
async def test_a_login_token_with_bad_claims_is_refused(
        verifier: Verifier, login_issuer: Issuer, changes: dict[str, Any], code: str) -> None:
    token = login_issuer.login(**changes)

    await refused(verifier.login(token), code, token)


@pytest.mark.parametrize(("changes", "code"), [
    ({"exp": int(NOW) - 3600}, "expired"),
    ({"iat": int(NOW) + 3600}, "issued_in_future"),
    ({"sub": ""}, "missing_claim"),
    ({"aud": "another-clearinghouse"}, "wrong_audience"),
    ({"ga4gh_visa_v1": None}, "not_a_visa"),
    ({"ga4gh_visa_v1": "ControlledAccessGrants"}, "not_a_visa"),
    ({"ga4gh_visa_v1": {"type": "ControlledAccessGrants", "asserted": 1, "source": "x"}}, "not_a_visa"),
    ({"ga4gh_visa_v1": {"type": "ControlledAccessGrants", "value": "v", "source": "x"}}, "not_a_visa"),
])
async def test_a_visa_with_bad_claims_is_refused(
        verifier: Verifier, central: Issuer, changes: dict[str, Any], code: str) -> None:
    await refused(verifier.visas([central.visa(**changes)]), code)


@pytest.mark.parametrize("typ", ["vnd.ga4gh.passport+jwt", "dpop+jwt", "JOSE"])
async def test_a_visa_of_another_token_type_is_refused(verifier: Verifier, central: Issuer, typ: str) -> None:
    await refused(verifier.visas([central.visa(typ=typ)]), "wrong_token_type")


@pytest.mark.parametrize("typ", ["JWT", "at+jwt", "application/vnd.ga4gh.visa+jwt", None])
async def test_a_visa_may_carry_any_of_its_types_or_none(verifier: Verifier, central: Issuer,
                                                         typ: str | None) -> None:
    assert len(await verifier.visas([central.visa(typ=typ)])) == 1


async def test_a_visa_is_not_a_login(verifier: Verifier, login_issuer: Issuer) -> None:
    token = login_issuer.token({"iss": LOGIN, "sub": "a", "aud": "genomebus", "iat": int(NOW),
                                "exp": int(NOW) + 60}, typ="vnd.ga4gh.visa+jwt")

    await refused(verifier.login(token), "wrong_token_type")


async def test_a_passport_with_a_visa_of_another_subject_is_refused(
        verifier: Verifier, broker: Issuer, central: Issuer) -> None:
    passport = broker.passport([central.visa(sub="alice@example.org"), central.visa(sub="mallory@example.org")])

    await refused(verifier.visas([passport]), "subject_mismatch", passport)


async def test_a_passport_with_one_bad_visa_is_refused_whole(verifier: Verifier, broker: Issuer,
                                                              central: Issuer) -> None:
    passport = broker.passport([central.visa(), central.visa(exp=int(NOW) - 3600)])

    error = await refused(verifier.visas([passport]), "expired")
    assert str(error).startswith("a visa in the passport")


async def test_a_passport_for_another_audience_or_too_long_or_nested_is_refused(
        verifier: Verifier, broker: Issuer, own_keys: VisaKeys, settings: Settings) -> None:
    await refused(verifier.visas([broker.passport([], aud="another-clearinghouse")]), "wrong_audience")
    await refused(verifier.visas([broker.passport(["a.b.c"] * 201)]), "too_large")
    await refused(verifier.visas([broker.passport(["a.b.c", 7])]), "invalid_claim")  # type: ignore[list-item]
    nested = issue_passport(own_keys, settings, user_id="alice@example.org", visas=[],
                            now=datetime.fromtimestamp(NOW, UTC))
    await refused(verifier.visas([broker.passport([nested])]), "not_a_visa")


# -- refused: not even a token ----------------------------------------------------------------------------------


async def test_an_oversized_token_is_refused_unread(verifier: Verifier, settings: Settings, central: Issuer,
                                                    server: JwksServer) -> None:
    limit = settings.auth_max_token_bytes

    await refused(verifier.login("a" * (limit + 1)), "too_large")
    await refused(verifier.login(f"{b64({'alg': 'RS256'})}.{'a' * limit}.x"), "too_large")
    await refused(verifier.visas(["a" * (MAX_PASSPORT_BYTES + 1)]), "too_large")
    await refused(verifier.visas([central.visa(padding="x" * limit)]), "too_large")  # a visa is no passport
    assert server.fetches == {}


DUPLICATE_ALG = b'{"alg": "RS256", "alg": "none"}'
DUPLICATE_ISS = b'{"iss": "x", "iss": "y"}'


@pytest.mark.parametrize("token", [
    "", "abc", "a.b", "a.b.c.d", "!!!.@@@.###", "a+b.c/d.e=", "é.é.é",
    f"{b64(b'not json')}.{b64({'iss': LOGIN})}.", f"{b64({'alg': 'RS256'})}.{b64(b'[1, 2]')}.",
    f"{b64(b'[]')}.{b64({'iss': LOGIN})}.",
    f"{b64(DUPLICATE_ALG)}.{b64({'iss': LOGIN})}.",
    f"{b64({'alg': 'RS256'})}.{b64(DUPLICATE_ISS)}.",
    f"{b64({'alg': 'RS256', 'crit': ['exp']})}.{b64({'iss': LOGIN})}.",
    f"{b64({'alg': 'RS256', 'kid': 7})}.{b64({'iss': LOGIN})}.",
])
async def test_malformed_strings_are_refused(verifier: Verifier, token: str) -> None:
    await refused(verifier.login(token), "malformed")


async def test_a_token_that_is_not_a_string_is_refused(verifier: Verifier) -> None:
    await refused(verifier.login(None), "malformed")  # type: ignore[arg-type]
    await refused(verifier.visas([b"a.b.c"]), "malformed")  # type: ignore[list-item]


async def test_no_token_text_reaches_the_log(verifier: Verifier, login_issuer: Issuer, server: JwksServer,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server.down = True
    token = login_issuer.login()

    await refused(verifier.login(token), "keys_unavailable", token, status=503)

    assert caplog.records  # the failed fetch is logged ...
    assert not any(part in caplog.text for part in token.split("."))  # ... without the token


async def test_many_visas_verify_with_one_key_fetch(verifier: Verifier, broker: Issuer, central: Issuer,
                                                    server: JwksServer) -> None:
    """The hot path: parsed keys are kept, so a passport of many visas costs one fetch per issuer.

    The passport is longer than ``auth_max_token_bytes``, which bounds each of its visas, not the whole.
    """
    many = [central.visa(jti=f"visa-{i}") for i in range(20)]
    passport = broker.passport(many)
    assert len(passport) > verifier.settings.auth_max_token_bytes

    visas = await verifier.visas([passport, *many])

    assert len(visas) == 40
    assert (server.count(central), server.count(broker)) == (1, 1)
