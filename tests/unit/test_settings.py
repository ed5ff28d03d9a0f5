"""Settings: production refuses unsafe values; the local profile finds the stack `genomebus up` started."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from genomebus.infra.settings import DEV_CENTRAL_ISSUER, DEV_ISSUER, STATE_FILE, Settings, SettingsError

SAFE_PRODUCTION: dict[str, Any] = {
    "profile": "production",
    "node_id": "SE",
    "kafka_bootstrap_servers": "kafka-1.node.example.se:9093,kafka-2.node.example.se:9093",
    "kafka_security_protocol": "SASL_SSL",
    "kafka_sasl_mechanism": "SCRAM-SHA-512",
    "kafka_sasl_username": "genomebus-node",
    "kafka_sasl_password": "Wm3-Qd9x-Rt5v-Ls2k",
    "kafka_enable_idempotence": True,
    "database_url": "postgresql://genomebus:Kx8-r2Lq-Vw7n-Zp4s@db.node.example.se:5432/genomebus",
    "s3_endpoint_url": "https://s3.node.example.se",
    "s3_access_key_id": "genomebus-node",
    "s3_secret_access_key": "q7N2-kR9v-Lw4x-Tz8m-Hc3p",
    "gateway_public_url": "https://genomebus.node.example.se",
    "archive_secret_key_path": "/run/secrets/genomebus-archive.sec",
    "archive_public_key_path": "/etc/genomebus/archive.pub",
    "visa_keys_dir": "/etc/genomebus/visa-keys",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets reaches Settings, whatever the shell running pytest exports."""
    for name in list(os.environ):
        if name.upper().startswith("GENOMEBUS_"):
            monkeypatch.delenv(name)


def production(**changes: Any) -> Settings:
    return Settings(**{**SAFE_PRODUCTION, **changes}, data_dir=Path("/nonexistent"))


# -- production ---------------------------------------------------------------------------------


def test_a_complete_safe_production_config_is_accepted() -> None:
    settings = production()

    assert settings.kafka_servers == SAFE_PRODUCTION["kafka_bootstrap_servers"]
    assert settings.dsn == SAFE_PRODUCTION["database_url"]
    assert settings.s3_credentials == ("genomebus-node", SAFE_PRODUCTION["s3_secret_access_key"])
    assert settings.gateway_url == "https://genomebus.node.example.se"
    assert settings.source == "urn:genomebus:node:SE"


@pytest.mark.parametrize("missing", ["kafka_bootstrap_servers", "database_url", "s3_endpoint_url",
                                     "s3_access_key_id", "s3_secret_access_key", "gateway_public_url"])
def test_production_refuses_a_missing_setting(missing: str) -> None:
    config = {k: v for k, v in SAFE_PRODUCTION.items() if k != missing}

    with pytest.raises(ValueError, match=f"needs explicit settings: {missing}"):
        Settings(**config)


@pytest.mark.parametrize("secret", ["changeme", "CHANGEME", "minioadmin", "short-but-real"])
def test_production_refuses_a_placeholder_or_short_s3_secret(secret: str) -> None:
    with pytest.raises(ValueError, match="placeholder or short S3 secret"):
        production(s3_secret_access_key=secret)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "LOCALHOST", "[::1]"])
def test_production_refuses_a_loopback_database(host: str) -> None:
    with pytest.raises(ValueError, match="loopback database host"):
        production(database_url=f"postgresql://genomebus:Kx8-r2Lq-Vw7n-Zp4s@{host}:5432/genomebus")


@pytest.mark.parametrize("password", ["postgres", "changeme", "genomebus", "Password"])
def test_production_refuses_a_placeholder_database_password(password: str) -> None:
    with pytest.raises(ValueError, match="placeholder database password"):
        production(database_url=f"postgresql://genomebus:{password}@db.node.example.se:5432/genomebus")


def test_production_judges_the_database_host_not_substrings_of_the_url() -> None:
    url = "postgresql://genomebus:Kx8-r2Lq-Vw7n-Zp4s@trusted-db.node.example.se:5432/localhost_archive"

    assert production(database_url=url).dsn == url


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_production_refuses_kafka_without_tls(protocol: str) -> None:
    with pytest.raises(ValueError, match="Kafka without TLS"):
        production(kafka_security_protocol=protocol)


def test_production_sasl_needs_credentials() -> None:
    with pytest.raises(ValueError, match="SASL_SSL needs"):
        production(kafka_sasl_password=None)


def test_production_refuses_replace_me_placeholders() -> None:
    with pytest.raises(ValueError, match="REPLACE_ME placeholders in: database_url"):
        production(database_url="postgresql://genomebus:REPLACE_ME_db_password@db.node.example.se/genomebus")


def test_kafka_client_options_carry_tls_and_sasl() -> None:
    from genomebus.infra.kafka import client_options

    options = client_options(production())
    assert options["security_protocol"] == "SASL_SSL"
    assert options["ssl_context"] is not None
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_password"] == SAFE_PRODUCTION["kafka_sasl_password"]


@pytest.mark.parametrize("url", ["http://genomebus.node.example.se", "genomebus.node.example.se"])
def test_production_refuses_a_public_url_that_is_not_https(url: str) -> None:
    with pytest.raises(ValueError, match="https gateway_public_url"):
        production(gateway_public_url=url)


@pytest.mark.parametrize("issuer", [DEV_ISSUER, DEV_CENTRAL_ISSUER])
def test_production_refuses_the_development_issuers(issuer: str) -> None:
    trusted = [{"issuer": issuer, "kinds": ["login", "visa"], "jwks_uri": "https://issuer.example.org/jwks"}]

    with pytest.raises(ValueError, match=f"refuses the development issuers: {issuer}"):
        production(trusted_issuers=trusted)


def test_production_trusts_no_development_issuer_of_its_own() -> None:
    trusted = [{"issuer": "https://login.example.se", "jwks_uri": "https://login.example.se/jwks"}]

    assert [i.issuer for i in production(trusted_issuers=trusted).issuers()] == ["https://login.example.se"]


@pytest.mark.parametrize("uri", ["http://login.example.se/jwks", "login.example.se/jwks"])
def test_production_refuses_a_jwks_url_that_is_not_https(uri: str) -> None:
    trusted = [{"issuer": "https://login.example.se", "jwks_uri": uri}]

    with pytest.raises(ValueError, match="https JWKS URLs; not for: https://login.example.se"):
        production(trusted_issuers=trusted)


def test_production_needs_the_visa_keys_dir() -> None:
    config = {k: v for k, v in SAFE_PRODUCTION.items() if k != "visa_keys_dir"}

    with pytest.raises(ValueError, match="needs visa_keys_dir"):
        Settings(**config, data_dir=Path("/nonexistent"))


def test_production_reads_nothing_from_a_local_stack_state(tmp_path: Path) -> None:
    write_stack_state(tmp_path)

    settings = Settings(**SAFE_PRODUCTION, data_dir=tmp_path)

    assert settings.stack_state() == {}
    assert settings.kafka_servers == SAFE_PRODUCTION["kafka_bootstrap_servers"]


# -- local profile --------------------------------------------------------------------------------


def write_stack_state(data_dir: Path) -> None:
    """A state file shaped like the one ``infra.stack.Supervisor.record`` writes."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / STATE_FILE).write_text(json.dumps({
        "status": "running",
        "supervisor_pid": 4242,
        "node_id": "FI",
        "ports": {"s3": 28333, "postgres": 28432, "kafka": 29092, "gateway": 28080},
        "components": {
            "s3": {"url": "http://127.0.0.1:28333", "access_key_id": "local-key",
                   "secret_access_key": "local-secret", "pid": 11, "kind": "server", "restarts": 0},
            "postgres": {"dsn": "postgresql://genomebus:generated@127.0.0.1:28432/genomebus", "pid": 12,
                         "kind": "server", "restarts": 0},
            "kafka": {"bootstrap_servers": "127.0.0.1:29092", "pid": 13, "kind": "server", "restarts": 0},
            "gateway": {"url": "http://127.0.0.1:28080", "pid": 14, "kind": "gateway", "restarts": 0},
        },
        "gateway_url": "http://127.0.0.1:28080",
        "updated": 1735689600.0,
    }))


def test_local_profile_reads_addresses_and_credentials_from_the_stack_state(tmp_path: Path) -> None:
    write_stack_state(tmp_path)

    settings = Settings(data_dir=tmp_path)

    assert settings.kafka_servers == "127.0.0.1:29092"
    assert settings.dsn == "postgresql://genomebus:generated@127.0.0.1:28432/genomebus"
    assert settings.s3_endpoint == "http://127.0.0.1:28333"
    assert settings.s3_credentials == ("local-key", "local-secret")
    assert settings.gateway_url == "http://127.0.0.1:28080"


def test_explicit_local_settings_win_over_the_stack_state(tmp_path: Path) -> None:
    write_stack_state(tmp_path)

    settings = Settings(data_dir=tmp_path, kafka_bootstrap_servers="127.0.0.1:9092", gateway_port=8080)

    assert settings.kafka_servers == "127.0.0.1:9092"
    assert settings.gateway_url == "http://127.0.0.1:8080"
    assert settings.s3_endpoint == "http://127.0.0.1:28333"


@pytest.mark.parametrize("address", ["kafka_servers", "dsn", "s3_endpoint", "s3_credentials", "gateway_url"])
def test_local_profile_without_a_stack_says_to_start_one(tmp_path: Path, address: str) -> None:
    settings = Settings(data_dir=tmp_path / "empty")

    with pytest.raises(SettingsError, match="genomebus up"):
        getattr(settings, address)


# -- environment ------------------------------------------------------------------------------------


def test_node_id_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENOMEBUS_NODE_ID", "EE")

    settings = Settings()

    assert settings.node_id == "EE"
    assert settings.source == "urn:genomebus:node:EE"


@pytest.mark.parametrize("node_id", ["fin", "fi", "FIN", "F", "F1"])
def test_an_invalid_node_id_is_rejected(node_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="node_id"):
        Settings(node_id=node_id)
    monkeypatch.setenv("GENOMEBUS_NODE_ID", node_id)
    with pytest.raises(ValueError, match="node_id"):
        Settings()
