"""The node as visa issuer: its keys on disk, the visas and passports it signs, the development issuers."""

from __future__ import annotations

import base64
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from genomebus.infra.identity import Verifier
from genomebus.infra.settings import DEV_CENTRAL_ISSUER, DEV_ISSUER, Settings
from genomebus.infra.visas import (
    DevIssuerError,
    VisaKeyError,
    VisaKeys,
    ensure_dev_issuers,
    ensure_visa_keys,
    issue_dev_token,
    issue_dev_visa,
    issue_passport,
    issue_visa,
    rotate_visa_keys,
)
from tests.unit.test_settings import SAFE_PRODUCTION

GATEWAY = "https://genomebus.node.example.fi"
NOW = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)
DATASET = "GDI-FI-DATASET-00000001"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("GENOMEBUS_"):
            monkeypatch.delenv(name)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, gateway_public_url=GATEWAY, visa_ttl_max_s=86400)


@pytest.fixture
def keys(settings: Settings) -> VisaKeys:
    ensure_visa_keys(settings.visa_keys_path)
    return VisaKeys.load(settings.visa_keys_path)


def part(token: str, index: int) -> dict[str, Any]:
    """A token's header (0) or payload (1), unverified."""
    segment = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def visa_for(keys: VisaKeys, settings: Settings, *, expires_at: datetime, grant_id: str = "grant-1",
             user_id: str = "alice@example.org") -> str:
    return issue_visa(keys, settings, user_id=user_id, dataset_id=DATASET, grant_id=grant_id,
                      asserted=NOW - timedelta(days=2), expires_at=expires_at, now=NOW)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- visas and passports ------------------------------------------------------------------------------------


def test_a_visa_is_a_passport_v1_2_controlled_access_grant(keys: VisaKeys, settings: Settings) -> None:
    token = visa_for(keys, settings, expires_at=NOW + timedelta(hours=3))

    assert part(token, 0) == {"typ": "vnd.ga4gh.visa+jwt", "alg": "ES256", "kid": keys.signing_key().kid,
                              "jku": f"{GATEWAY}/.well-known/jwks.json"}
    claims = part(token, 1)
    assert claims == {
        "iss": GATEWAY, "sub": "alice@example.org", "iat": int(NOW.timestamp()),
        "exp": int((NOW + timedelta(hours=3)).timestamp()), "jti": claims["jti"], "genomebus_grant": "grant-1",
        "ga4gh_visa_v1": {"type": "ControlledAccessGrants", "asserted": int((NOW - timedelta(days=2)).timestamp()),
                          "value": f"{GATEWAY}/datasets/{DATASET}", "source": f"{GATEWAY}/dac", "by": "dac"},
    }


def test_every_issuance_has_its_own_jti(keys: VisaKeys, settings: Settings) -> None:
    tokens = [visa_for(keys, settings, expires_at=NOW + timedelta(days=1)) for _ in range(3)]

    assert len({part(t, 1)["jti"] for t in tokens}) == 3


@pytest.mark.parametrize("grant_left", [timedelta(seconds=1), timedelta(hours=1), timedelta(days=1),
                                        timedelta(days=1, seconds=1), timedelta(days=900)])
def test_a_visa_never_outlives_its_grant_nor_the_longest_visa_life(
        keys: VisaKeys, settings: Settings, grant_left: timedelta) -> None:
    claims = part(visa_for(keys, settings, expires_at=NOW + grant_left), 1)

    assert claims["exp"] <= int((NOW + grant_left).timestamp())
    assert claims["exp"] - claims["iat"] == min(int(grant_left.total_seconds()), settings.visa_ttl_max_s)


def test_no_visa_for_an_expired_grant_nor_for_naive_times(keys: VisaKeys, settings: Settings) -> None:
    with pytest.raises(ValueError, match="expired"):
        visa_for(keys, settings, expires_at=NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        visa_for(keys, settings, expires_at=datetime(2030, 1, 1))


def test_a_passport_bundles_the_visas_and_ends_with_the_first_to_expire(keys: VisaKeys, settings: Settings) -> None:
    visas = [visa_for(keys, settings, expires_at=NOW + timedelta(hours=h), grant_id=f"g-{h}") for h in (5, 2, 9)]

    token = issue_passport(keys, settings, user_id="alice@example.org", visas=visas, now=NOW)

    assert part(token, 0) == {"typ": "vnd.ga4gh.passport+jwt", "alg": "ES256", "kid": keys.signing_key().kid,
                              "jku": f"{GATEWAY}/.well-known/jwks.json"}
    claims = part(token, 1)
    assert (claims["iss"], claims["sub"], claims["ga4gh_passport_v1"]) == (GATEWAY, "alice@example.org", visas)
    assert claims["iat"] == int(NOW.timestamp())
    assert claims["exp"] == int((NOW + timedelta(hours=2)).timestamp())
    assert claims["jti"]


def test_an_empty_passport_lives_at_most_the_longest_visa_life(keys: VisaKeys, settings: Settings) -> None:
    claims = part(issue_passport(keys, settings, user_id="alice@example.org", visas=[], now=NOW), 1)

    assert (claims["ga4gh_passport_v1"], claims["exp"] - claims["iat"]) == ([], settings.visa_ttl_max_s)


def test_a_passport_takes_only_its_subjects_visas(keys: VisaKeys, settings: Settings) -> None:
    mallory = visa_for(keys, settings, expires_at=NOW + timedelta(hours=1), user_id="mallory@example.org")

    with pytest.raises(ValueError, match="another subject"):
        issue_passport(keys, settings, user_id="alice@example.org", visas=[mallory], now=NOW)


async def test_what_the_node_issues_its_verifier_accepts(keys: VisaKeys, settings: Settings) -> None:
    now = datetime.now(UTC)
    visa = issue_visa(keys, settings, user_id="alice", dataset_id=DATASET, grant_id="g-7", asserted=now,
                      expires_at=now + timedelta(days=10))
    verifier = Verifier(settings, own_keys=keys)
    try:
        [verified] = await verifier.visas([issue_passport(keys, settings, user_id="alice", visas=[visa])])
    finally:
        await verifier.aclose()

    assert (verified.own, verified.grant_id, verified.value) == (True, "g-7", settings.dataset_url(DATASET))


# -- the keys on disk ---------------------------------------------------------------------------------------------


def test_the_visa_key_is_private_on_disk_and_made_once(settings: Settings) -> None:
    ensure_visa_keys(settings.visa_keys_path)
    files = {f.name: f.read_bytes() for f in settings.visa_keys_path.iterdir()}
    ensure_visa_keys(settings.visa_keys_path)

    assert {f.name: f.read_bytes() for f in settings.visa_keys_path.iterdir()} == files
    assert len(files) == 1
    assert mode(settings.visa_keys_path) == 0o700
    assert all(mode(f) == 0o600 for f in settings.visa_keys_path.iterdir())


def test_the_public_jwks_has_public_parts_only(keys: VisaKeys) -> None:
    [public] = keys.public_jwks()["keys"]

    assert public["kid"] == keys.signing_key().kid
    assert (public["kty"], public["alg"], public["use"]) == ("EC", "ES256", "sig")
    assert "d" not in public


def test_a_rotation_keeps_the_previous_key_served_and_retires_older_ones(keys: VisaKeys, settings: Settings) -> None:
    first = keys.signing_key().kid

    second = rotate_visa_keys(settings.visa_keys_path)
    assert [k["kid"] for k in keys.public_jwks()["keys"]] == [second, first]
    assert keys.signing_key().kid == second  # a VisaKeys loaded before the rotation follows it

    third = rotate_visa_keys(settings.visa_keys_path)
    assert [k["kid"] for k in VisaKeys.load(settings.visa_keys_path).public_jwks()["keys"]] == [third, second]
    retired = settings.visa_keys_path / "retired"
    [kept] = retired.iterdir()
    assert json.loads(kept.read_text())["jwk"]["kid"] == first
    assert "d" not in json.loads(kept.read_text())["jwk"]  # the retired private key is gone
    assert sorted(p.name for p in settings.visa_keys_path.glob("*.jwk")) == sorted([f"{second}.jwk", f"{third}.jwk"])


def test_no_keys_is_an_error_that_says_where(tmp_path: Path) -> None:
    with pytest.raises(VisaKeyError, match=str(tmp_path / "none")):
        VisaKeys.load(tmp_path / "none")


# -- the development issuers ----------------------------------------------------------------------------------


def test_the_development_issuers_are_made_once_with_private_keys_private(settings: Settings) -> None:
    ensure_dev_issuers(settings)
    directory = settings.dev_issuer_keys_path
    files = {f.name: f.read_bytes() for f in directory.iterdir()}
    ensure_dev_issuers(settings)

    assert {f.name: f.read_bytes() for f in directory.iterdir()} == files
    assert set(files) == {"dev-issuer.jwk", "dev-issuer.jwks.json", "dev-central.jwk", "dev-central.jwks.json"}
    assert mode(directory) == 0o700
    assert mode(directory / "dev-issuer.jwk") == mode(directory / "dev-central.jwk") == 0o600
    for name in ("dev-issuer", "dev-central"):
        assert "d" not in json.loads(files[f"{name}.jwks.json"])["keys"][0]


def test_a_lost_public_jwks_is_written_again_from_the_private_key(settings: Settings) -> None:
    ensure_dev_issuers(settings)
    public = settings.dev_issuer_keys_path / "dev-issuer.jwks.json"
    before = public.read_bytes()
    public.unlink()

    ensure_dev_issuers(settings)

    assert json.loads(public.read_bytes()) == json.loads(before)


async def test_a_development_login_token_carries_its_roles(settings: Settings) -> None:
    ensure_dev_issuers(settings)
    token = issue_dev_token(settings, sub="alice", roles=["researcher", "dac_member:FI-DAC-1"], ttl_s=600)

    claims = part(token, 1)
    assert (claims["iss"], claims["aud"], claims["sub"]) == (DEV_ISSUER, "genomebus", "alice")
    assert claims["exp"] - claims["iat"] == 600 and claims["nbf"] == claims["iat"] and claims["jti"]
    verifier = Verifier(settings)
    try:
        principal = await verifier.login(token)
    finally:
        await verifier.aclose()
    assert (principal.researcher, principal.dacs) == (True, frozenset({"FI-DAC-1"}))


def test_a_development_visa_is_a_central_grant_for_a_dataset_of_this_node(settings: Settings) -> None:
    ensure_dev_issuers(settings)

    token = issue_dev_visa(settings, sub="alice", dataset_id=DATASET, ttl_s=600)

    assert part(token, 0)["typ"] == "vnd.ga4gh.visa+jwt"
    claims = part(token, 1)
    assert (claims["iss"], claims["sub"], claims["exp"] - claims["iat"]) == (DEV_CENTRAL_ISSUER, "alice", 600)
    assert claims["ga4gh_visa_v1"] == {"type": "ControlledAccessGrants", "asserted": claims["iat"],
                                       "value": settings.dataset_url(DATASET), "source": DEV_CENTRAL_ISSUER,
                                       "by": "dac"}


def test_development_tokens_need_the_issuers_made_by_genomebus_up(settings: Settings) -> None:
    with pytest.raises(DevIssuerError, match="genomebus up"):
        issue_dev_token(settings, sub="alice", roles=[], ttl_s=60)


def test_production_refuses_the_development_issuers(tmp_path: Path) -> None:
    settings = Settings(**SAFE_PRODUCTION, data_dir=tmp_path)

    for attempt in (lambda: ensure_dev_issuers(settings),
                    lambda: issue_dev_token(settings, sub="alice", roles=["steward:SE"], ttl_s=60),
                    lambda: issue_dev_visa(settings, sub="alice", dataset_id=DATASET, ttl_s=60)):
        with pytest.raises(DevIssuerError, match="only in the local profile"):
            attempt()
    assert not settings.dev_issuer_keys_path.exists()
