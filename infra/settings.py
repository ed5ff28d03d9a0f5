"""One settings class for every genomebus process.

Values come from the environment (prefix ``GENOMEBUS_``) or from explicit
arguments in tests. In the ``local`` profile, addresses and generated
credentials that are not set explicitly are read from the running local
stack's state file in the data directory (``stack.json``), so every command
given the same ``--data-dir`` talks to the stack that ``genomebus up``
started there. The ``production`` profile reads nothing from the data
directory and refuses dev-only defaults.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

STATE_FILE = "stack.json"

# Values that must never reach a production deployment.
PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "secret", "password", "postgres", "minioadmin", "admin", "genomebus"}
)


class SettingsError(ValueError):
    """Settings that cannot be used as given."""


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


DEV_ISSUER = "urn:genomebus:dev-issuer"
"""The local profile's development login issuer (`genomebus token issue`); production refuses it."""
DEV_CENTRAL_ISSUER = "urn:genomebus:dev-central"
"""The local profile's stand-in for a central access service that issues visas; production refuses it."""



class BeaconPeer(BaseModel):
    """Another node's Beacon that federated discovery asks."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9._-]+$", description="e.g. the country code")
    url: str = Field(min_length=1, description="The peer's Beacon base URL, e.g. https://beacon.example.se/beacon/v2")
    forward_credentials: bool = Field(
        False, description="Send the caller's bearer token to this peer (only for peers trusting the same issuers)")

class TrustedIssuer(BaseModel):
    """An issuer whose tokens the node accepts: logins (bearer tokens), visas, or passports (a broker)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    issuer: str = Field(min_length=1, description="The `iss` its tokens carry, compared exactly")
    kinds: tuple[Literal["login", "visa", "passport"], ...] = Field(("login",), min_length=1)
    jwks_uri: str | None = Field(None, description="Where its public keys are (https in production)")
    jwks_file: Path | None = Field(None, description="Its public keys as a JWKS file, instead of a URL")

    @model_validator(mode="after")
    def _one_source(self) -> TrustedIssuer:
        if (self.jwks_uri is None) == (self.jwks_file is None):
            raise ValueError(f"trusted issuer {self.issuer}: give exactly one of jwks_uri and jwks_file")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GENOMEBUS_", frozen=True, extra="ignore")

    profile: Literal["local", "production"] = "local"
    node_id: str = Field("FI", pattern=r"^[A-Z]{2}$", description="ISO 3166 code of the node's country")
    node_name: str = "genomebus national node"
    organization_name: str = "genomebus node operator"
    organization_url: str = "https://example.org/genomebus"
    contact_url: str = "mailto:helpdesk@example.org"
    documentation_url: str = "https://example.org/genomebus/docs"
    data_dir: Path = Path(".genomebus")

    kafka_bootstrap_servers: str | None = None
    kafka_enable_idempotence: bool = Field(
        False, description="Turn on for Apache Kafka; the local Tansu broker has no InitProducerId"
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_fetch_max_wait_ms: int = Field(
        50, ge=0, le=5000, description="How long a consumer's fetch waits for data. The local broker answers only "
                                       "when it runs out, not when data arrives, so this bounds every hop's latency; "
                                       "Apache Kafka answers on arrival and can take the client default, 500")
    topic_prefix: str = "genomebus."
    topic_partitions: int = Field(3, ge=1)
    topic_replication_factor: int = Field(1, ge=1)

    database_url: SecretStr | None = None

    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_inbox_bucket: str = "genomebus-inbox"
    s3_archive_bucket: str = "genomebus-archive"
    s3_quarantine_bucket: str = Field(
        "genomebus-quarantine", description="Task outputs awaiting the airlock (Crypt4GH); only the executor writes "
                                            "and only the airlock worker reads it, never the gateway")
    s3_outputs_bucket: str = Field(
        "genomebus-outputs", description="Outputs the airlock released (Crypt4GH), served to their requester by DRS")

    gateway_host: str = "127.0.0.1"
    gateway_port: int | None = None
    gateway_public_url: str | None = None

    auth_audience: str = Field("genomebus", min_length=1, description="The `aud` every login token must carry")
    trusted_issuers: tuple[TrustedIssuer, ...] = Field(
        (), description="Issuers of logins, visas and passports the node accepts (JSON list); the local profile "
                        "adds its development issuers")
    auth_roles_claim: str = Field(
        "genomebus_roles", description="The claim listing a caller's roles: researcher, auditor, operator, "
                                       "steward:<node id>, dac_member:<DAC id>")
    auth_clock_skew_s: int = Field(60, ge=0, le=300, description="Tolerance on exp, nbf and iat")
    auth_max_token_bytes: int = Field(16384, ge=1024, le=262144, description="Longer tokens are refused unread")
    jwks_cache_ttl_s: float = Field(300.0, gt=0, description="How long fetched issuer keys are trusted")
    jwks_min_refresh_interval_s: float = Field(
        30.0, ge=0, description="An unknown `kid` refetches an issuer's keys at most this often")
    visa_keys_dir: Path | None = Field(
        None, description="The node's visa signing keys (JWK files); local default <data_dir>/keys/visa")
    visa_ttl_max_s: int = Field(86400, ge=60, description="A visa lives at most this long, and never past its grant")
    grant_max_days: int = Field(3 * 365, ge=1, description="The longest a DAC may approve a grant for")
    trusted_services: tuple[str, ...] = Field(
        (), description="Login subjects of services allowed to read any user's visas at /permissions/{user}")

    data_url_ttl_s: int = Field(
        300, ge=10, le=86400, description="How long a signed data URL (DRS access URL, htsget ticket URL) is valid")
    drs_max_bulk_request_length: int = Field(
        100, ge=1, le=10000, description="The most object ids one DRS bulk request may name (413 beyond)")
    htsget_inline_max_bytes: int = Field(
        65536, ge=0, description="htsget header blocks up to this size are sent as data: URIs in the ticket")

    beacon_id: str | None = Field(
        None, description="The Beacon's id, reverse-domain style; default org.example.genomebus.<node_id>")
    beacon_count_threshold: int = Field(
        5, ge=1, le=1000, description="Beacon counts from 1 up to this are never returned exactly: they are "
                                      "reported as this threshold (countAdjustedTo)")
    beacon_count_rounding: int = Field(
        10, ge=1, le=10000, description="Counts above the threshold are rounded up to a multiple of this for callers "
                                        "without record access to the dataset; 1 returns them exactly")
    beacon_budget_window_s: float = Field(3600.0, gt=0, description="The window of the Beacon query budgets")
    beacon_budget_anonymous: int = Field(
        100, ge=1, description="Beacon queries per window from one IP address without a credential")
    beacon_budget_user: int = Field(1000, ge=1, description="Beacon queries per window by one authenticated user")
    beacon_budget_ip: int = Field(
        3000, ge=1, description="Beacon queries per window from one IP address, whoever asks (authenticated too)")
    beacon_range_max_bp: int = Field(
        10_000_000, ge=1, description="The widest range (end - start) a Beacon variant query may ask for")
    beacon_max_limit: int = Field(100, ge=1, le=10000, description="The largest page (`limit`) a Beacon query gets")
    beacon_peers: tuple[BeaconPeer, ...] = Field(
        (), description="Other nodes' Beacons that federated queries go to (JSON list of {name, url, "
                        "forward_credentials})")
    beacon_federation_deadline_s: float = Field(
        10.0, gt=0, le=120, description="How long a federated query waits for the slowest peer")
    beacon_peers_file: Path | None = Field(
        None, description="A JSON file of more peers ([{name, url, forward_credentials}]), re-read when it changes; "
                          "local default <data_dir>/beacon-peers.json, none in production unless set")

    tes_max_cpu_cores: int = Field(2, ge=1, description="The most CPU cores one task may ask for")
    tes_max_ram_gb: float = Field(4.0, gt=0, description="The most memory one task may ask for (also its limit)")
    tes_max_disk_gb: float = Field(10.0, gt=0, description="The most work-directory space one task may ask for")
    tes_max_wall_s: int = Field(
        3600, ge=1, description="The longest a task may run (wall time); backend_parameters wall_s may ask for less")
    tes_max_processes: int = Field(64, ge=1, description="The most processes a task may have at once")
    tes_max_inputs_bytes: int = Field(
        50 * 2**30, ge=0, description="The most input bytes one task may stage (413-like rejection beyond)")
    tes_log_tail_bytes: int = Field(
        65536, ge=1024, le=2**24, description="How much of each executor's stdout and stderr a task's log keeps")
    executor_slots: int = Field(2, ge=1, le=256, description="Tasks one executor worker runs at once")
    tasks_dir: Path | None = Field(
        None, description="Where task work directories are made; local default <data_dir>/tasks. Must not be "
                          "inside anything a task may not see")
    airlock_min_cell_count: int = Field(
        10, ge=1, description="Airlock: a table cell counting fewer (but more than 0) is a disclosure risk (ACRO)")
    airlock_checkers_required: int = Field(
        2, ge=1, le=10, description="Distinct output checkers, none the requester, who must approve an output")

    otel_exporter: Literal["none", "console", "otlp", "file"] | None = Field(
        None, description="Where spans go: OTLP (OTEL_EXPORTER_OTLP_ENDPOINT), the console, JSON lines in "
                          "<data_dir>/traces/ (the default in the local profile), or nowhere (the default otherwise)")

    consumer_retry_initial_s: float = Field(0.2, gt=0)
    consumer_retry_max_s: float = Field(10.0, gt=0)
    consumer_retry_max_attempts: int = Field(
        8, ge=1, description="Attempts at a transient failure before it is dead-lettered as retries_exhausted")
    consumer_retry_max_seconds: float = Field(
        300.0, gt=0, description="Time spent retrying one event before it is dead-lettered as retries_exhausted")
    projector_batch_size: int = Field(500, ge=1)
    read_your_writes_timeout_s: float = Field(10.0, gt=0)
    command_timeout_s: float = Field(30.0, gt=0, description="How long a client waits for a command's outcome")

    archive_secret_key_path: Path | None = Field(
        None, description="Crypt4GH secret key of the archive; local default <data_dir>/keys/archive.sec")
    archive_public_key_path: Path | None = Field(
        None, description="Crypt4GH public key every archived file is encrypted for; local default .../archive.pub")
    archive_key_passphrase: SecretStr | None = Field(
        None, description="Passphrase of the archive secret key; local default from <data_dir>/secrets.json")
    archive_part_size_mib: int = Field(16, ge=5, le=512, description="Multipart upload part size of the archive")
    archive_spool_dir: Path | None = Field(
        None, description="Where ciphertext is spooled before upload (needs the file's size free); default: TMPDIR")

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.profile != "production":
            return self
        missing = [
            name
            for name in ("kafka_bootstrap_servers", "database_url", "s3_endpoint_url", "s3_access_key_id",
                         "s3_secret_access_key", "gateway_public_url", "archive_secret_key_path",
                         "archive_public_key_path")
            if getattr(self, name) is None
        ]
        if missing:
            raise SettingsError(f"production profile needs explicit settings: {', '.join(missing)}")
        secret = self.s3_secret_access_key.get_secret_value()  # type: ignore[union-attr]
        if secret.lower() in PLACEHOLDER_SECRETS or len(secret) < 16:
            raise SettingsError("production profile refuses a placeholder or short S3 secret")
        db = urlsplit(self.database_url.get_secret_value())  # type: ignore[union-attr]
        if _is_loopback(db.hostname):
            raise SettingsError("production profile refuses a loopback database host")
        if db.password is not None and unquote(db.password).lower() in PLACEHOLDER_SECRETS:
            raise SettingsError("production profile refuses a placeholder database password")
        dev = [i.issuer for i in self.trusted_issuers if i.issuer in (DEV_ISSUER, DEV_CENTRAL_ISSUER)]
        if dev:
            raise SettingsError(f"production profile refuses the development issuers: {', '.join(dev)}")
        plain = [i.issuer for i in self.trusted_issuers if i.jwks_uri and not i.jwks_uri.startswith("https://")]
        if plain:
            raise SettingsError(f"production profile needs https JWKS URLs; not for: {', '.join(plain)}")
        if self.visa_keys_dir is None:
            raise SettingsError("production profile needs visa_keys_dir (the node's visa signing keys)")
        if self.kafka_security_protocol in ("PLAINTEXT", "SASL_PLAINTEXT"):
            raise SettingsError("production profile refuses Kafka without TLS; set kafka_security_protocol to "
                                "SSL or SASL_SSL")
        if self.kafka_security_protocol == "SASL_SSL" and not (self.kafka_sasl_mechanism and self.kafka_sasl_username
                                                                and self.kafka_sasl_password):
            raise SettingsError("SASL_SSL needs kafka_sasl_mechanism, kafka_sasl_username and kafka_sasl_password")
        placeholders = [name for name, value in self if "REPLACE_ME" in str(
            value.get_secret_value() if isinstance(value, SecretStr) else value)]
        if placeholders:
            raise SettingsError(f"production profile refuses REPLACE_ME placeholders in: {', '.join(placeholders)}")
        if not self.gateway_public_url.startswith("https://"):  # type: ignore[union-attr]
            raise SettingsError("production profile needs an https gateway_public_url")
        return self

    # -- resolved addresses -------------------------------------------------

    def topic(self, context: str) -> str:
        return f"{self.topic_prefix}{context}"

    @property
    def state_path(self) -> Path:
        return self.data_dir / STATE_FILE

    def stack_state(self) -> dict:
        """The local stack's state file, or an empty dict when no stack ran here."""
        if self.profile != "local" or not self.state_path.exists():
            return {}
        return json.loads(self.state_path.read_text())

    def _from_stack(self, component: str, key: str) -> str:
        value = self.stack_state().get("components", {}).get(component, {}).get(key)
        if value is None:
            raise SettingsError(
                f"no {component} {key} configured and no local stack state in {self.data_dir}; "
                f"start one with `genomebus up --data-dir {self.data_dir}` or set GENOMEBUS_ settings"
            )
        return value

    @property
    def kafka_servers(self) -> str:
        return self.kafka_bootstrap_servers or self._from_stack("kafka", "bootstrap_servers")

    @property
    def dsn(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return self._from_stack("postgres", "dsn")

    @property
    def s3_endpoint(self) -> str:
        return self.s3_endpoint_url or self._from_stack("s3", "url")

    @property
    def s3_credentials(self) -> tuple[str, str]:
        if self.s3_access_key_id and self.s3_secret_access_key:
            return self.s3_access_key_id, self.s3_secret_access_key.get_secret_value()
        return self._from_stack("s3", "access_key_id"), self._from_stack("s3", "secret_access_key")

    @property
    def gateway_url(self) -> str:
        if self.gateway_public_url:
            return self.gateway_public_url.rstrip("/")
        if self.gateway_port:
            return f"http://{self.gateway_host}:{self.gateway_port}"
        return self._from_stack("gateway", "url")

    @property
    def visa_keys_path(self) -> Path:
        return self.visa_keys_dir or self.data_dir / "keys" / "visa"

    @property
    def dev_issuer_keys_path(self) -> Path:
        """The development issuers' private keys (local profile only): ``<data_dir>/keys/dev-issuers``."""
        return self.data_dir / "keys" / "dev-issuers"

    def issuers(self) -> tuple[TrustedIssuer, ...]:
        """The issuers trusted: the configured ones and, in the local profile, the development issuers."""
        if self.profile != "local":
            return self.trusted_issuers
        dev = self.dev_issuer_keys_path
        return self.trusted_issuers + (
            TrustedIssuer(issuer=DEV_ISSUER, kinds=("login",), jwks_file=dev / "dev-issuer.jwks.json"),
            TrustedIssuer(issuer=DEV_CENTRAL_ISSUER, kinds=("visa",), jwks_file=dev / "dev-central.jwks.json"),
        )

    def dataset_url(self, dataset_id: str) -> str:
        """A dataset's URL: the ``value`` of the visas that grant it."""
        return f"{self.gateway_url}/datasets/{dataset_id}"

    @property
    def tasks_path(self) -> Path:
        """Where task work directories are made (``tasks_dir`` or ``<data_dir>/tasks``)."""
        return self.tasks_dir if self.tasks_dir is not None else self.data_dir / "tasks"

    @property
    def beacon_peers_path(self) -> Path | None:
        """The peers file federated discovery re-reads: the configured one, else the local profile's default."""
        if self.beacon_peers_file is not None:
            return self.beacon_peers_file
        return self.data_dir / "beacon-peers.json" if self.profile == "local" else None

    @property
    def beacon_identifier(self) -> str:
        return self.beacon_id or f"org.example.genomebus.{self.node_id.lower()}"

    @property
    def source(self) -> str:
        """CloudEvents ``source`` of every event this node publishes."""
        return f"urn:genomebus:node:{self.node_id}"
