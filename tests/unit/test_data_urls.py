"""Signed data URLs: they carry their ticket, expire, and are never a login or a visa."""

from __future__ import annotations

import time

import pytest

from genomebus.infra import data_urls
from genomebus.infra.data_urls import DataTicket, DataUrlError
from genomebus.infra.settings import Settings
from genomebus.infra.visas import VisaKeys, ensure_visa_keys, issue_visa


@pytest.fixture
def env(tmp_path):
    settings = Settings(data_dir=tmp_path, gateway_port=8080)
    ensure_visa_keys(settings.visa_keys_path)
    return settings, VisaKeys.load(settings.visa_keys_path)


TICKET = DataTicket(object_id="GDI-FI-FILE-00000001", dataset_id="GDI-FI-DATASET-001", user_id="alice",
                    grant_id="g-1", credential="bearer", issuer="http://127.0.0.1:8080")


def test_a_signed_ticket_verifies_to_itself(env):
    settings, keys = env
    token = data_urls.sign(keys, settings, TICKET, ttl_s=60, now=1_000_000)
    got = data_urls.verify(keys, settings, token, now=1_000_030)
    assert got == DataTicket(**{**vars(TICKET), "expires_at": 1_000_060})


def test_an_expired_ticket_is_refused_as_expired(env):
    settings, keys = env
    token = data_urls.sign(keys, settings, TICKET, ttl_s=60, now=time.time() - 120)
    with pytest.raises(DataUrlError) as refused:
        data_urls.verify(keys, settings, token)
    assert refused.value.code == "expired"


def test_an_altered_token_or_a_visa_is_not_a_data_url(env):
    settings, keys = env
    token = data_urls.sign(keys, settings, TICKET)
    head, payload, signature = token.split(".")
    for bad in (f"{head}.{payload}.{signature[:-4]}AAAA", "", "x" * 9000, "a.b.c"):
        with pytest.raises(DataUrlError) as refused:
            data_urls.verify(keys, settings, bad)
        assert refused.value.code == "invalid"
    from datetime import UTC, datetime, timedelta
    now = datetime.now(UTC)
    visa = issue_visa(keys, settings, user_id="alice", dataset_id="GDI-FI-DATASET-001", grant_id="g-1",
                      asserted=now, expires_at=now + timedelta(days=1))
    with pytest.raises(DataUrlError, match="not a data URL"):
        data_urls.verify(keys, settings, visa)


def test_a_crypt4gh_ticket_needs_the_readers_key(env):
    settings, keys = env
    with pytest.raises(ValueError, match="public key"):
        data_urls.sign(keys, settings, DataTicket(object_id="o", dataset_id="d", mode="c4gh"))


def test_a_traced_data_url_has_its_signature_redacted(env):
    """The gateway's HTTP spans record URLs through OpenTelemetry's redaction: the signed ticket never reaches a trace."""
    from opentelemetry.util.http import redact_url

    settings, keys = env
    url = data_urls.url_for(keys, settings, TICKET)
    token = url.split(f"?{data_urls.QUERY_PARAMETER}=")[1]
    assert token and token not in redact_url(url)
