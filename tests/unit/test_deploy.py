"""The deployment files agree with the code: Kafka ACLs (kafka-acls.sh --dry-run), compose services, settings.

The ACL script is run with bash in ``--dry-run`` mode (no Kafka needed) and its commands are parsed;
they must grant exactly the table of ``infra/deploy/principals.md`` and cover what the workers' code
actually consumes and produces.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from genomebus.consumers import WORKER_MODULES
from genomebus.contract import workers as faststream_workers
from genomebus.infra.readmodels import READ_MODELS
from genomebus.infra.settings import Settings
from genomebus.schemas.topics import CATALOGUE, DEAD_LETTER

DEPLOY = Path(__file__).resolve().parents[2] / "infra" / "deploy"
PREFIX = "genomebus."


def t(context: str) -> str:
    return PREFIX + context


def user(role: str) -> str:
    return f"User:genomebus-{role}"


CLIENT, GATEWAY, AUDITOR = user("client"), user("gateway"), user("auditor")
COMMAND_TOPICS = {t(c) for c in CATALOGUE if c.endswith(".commands")}

# principals.md: principal -> (topics read, topics written, groups read as (name, pattern type)).
TABLE: dict[str, tuple[set[str], set[str], set[tuple[str, str]]]] = {
    CLIENT: (set(), {t("reception.commands"), t("processing.commands")}, set()),
    # The gateway publishes every context's commands and is the enforcement point: it writes the audit topic.
    GATEWAY: (set(), COMMAND_TOPICS | {t("audit")}, set()),
    user("reception-decider"): ({t("reception.commands"), t("reception")}, {t("reception"), t(DEAD_LETTER)},
                                {("genomebus-reception-decider", "literal")}),
    user("qc"): ({t("reception")}, {t("reception"), t(DEAD_LETTER)}, {("genomebus-qc", "literal")}),
    user("archive"): ({t("reception")}, {t("reception"), t(DEAD_LETTER)}, {("genomebus-archive", "literal")}),
    user("access-decider"): ({t("access.commands"), t("access"), t("reception")}, {t("access"), t(DEAD_LETTER)},
                             {("genomebus-access-decider", "literal")}),
    user("access-timer"): (set(), {t("access.commands")}, set()),
    user("indexer"): ({t("reception")}, {t("discovery"), t(DEAD_LETTER)}, {("genomebus-indexer", "literal")}),
    user("tool-registry"): ({t("processing.commands"), t("processing")}, {t("processing"), t(DEAD_LETTER)},
                            {("genomebus-tool-registry", "literal")}),
    user("scheduler"): ({t("processing.commands"), t("processing"), t("reception"), t("access")},
                        {t("processing"), t("audit"), t(DEAD_LETTER)}, {("genomebus-scheduler", "literal")}),
    user("executor"): ({t("processing")}, {t("processing"), t(DEAD_LETTER)}, {("genomebus-executor", "literal")}),
    user("airlock"): ({t("processing"), t("processing.commands")}, {t("processing"), t(DEAD_LETTER)},
                      {("genomebus-airlock", "literal")}),
    user("projector"): ({t("reception"), t("reception.commands"), t("access"), t("access.commands"),
                         t("processing"), t("processing.commands")},
                        {t(DEAD_LETTER)}, {("genomebus-projection-", "prefixed")}),
    AUDITOR: ({t(c) for c in CATALOGUE}, set(), set()),
}


@dataclass(frozen=True)
class Grant:
    principal: str
    operations: frozenset[str]
    resource: str  # topic, group, cluster, transactional-id
    name: str
    pattern: str  # literal, prefixed

    def matches(self, resource: str, name: str) -> bool:
        if self.resource != resource:
            return False
        if self.name == "*" and self.pattern == "literal":
            return True
        return name.startswith(self.name) if self.pattern == "prefixed" else name == self.name


def parse(line: str) -> Grant:
    argv = shlex.split(line)
    assert Path(argv[0]).name == "kafka-acls.sh", line
    assert "--add" in argv and "--remove" not in argv and "--deny-principal" not in argv, line
    principal, operations, resource, name, pattern = None, set(), None, None, "literal"
    i = 1
    while i < len(argv):
        arg = argv[i]
        value = argv[i + 1] if i + 1 < len(argv) else None
        if arg == "--allow-principal":
            principal = value
        elif arg == "--operation":
            operations.add(value)
        elif arg in ("--topic", "--group", "--transactional-id"):
            resource, name = arg[2:], value
        elif arg == "--cluster":
            resource, name = "cluster", "kafka-cluster"
            i += 1
            continue
        elif arg == "--resource-pattern-type":
            pattern = value
        elif arg in ("--bootstrap-server", "--command-config"):
            pass
        else:
            i += 1
            continue
        i += 2
    assert principal and operations and resource and name, line
    assert pattern in ("literal", "prefixed"), line
    return Grant(principal, frozenset(operations), resource, name, pattern)


def dry_run(**env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("GENOMEBUS_PRINCIPAL_", "GENOMEBUS_TOPIC_PREFIX", "KAFKA_ACLS"))}
    out = subprocess.run(["bash", str(DEPLOY / "kafka-acls.sh"), "--dry-run"], env={**clean, **env},
                         capture_output=True, text=True, check=True, timeout=30)
    return [line for line in out.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def grants() -> list[Grant]:
    return [parse(line) for line in dry_run()]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def principals_with(grants: list[Grant], operation: str, resource: str, name: str) -> set[str]:
    return {g.principal for g in grants if operation in g.operations and g.matches(resource, name)}


# -- the ACL script -------------------------------------------------------------------------------


def test_dry_run_prints_only_kafka_acls_commands_without_kafka() -> None:
    lines = dry_run(PATH="/usr/bin:/bin")  # no kafka-acls.sh anywhere: a dry run never calls it
    assert lines and all(shlex.split(line)[0].endswith("kafka-acls.sh") for line in lines)
    assert all("--bootstrap-server" in line and "--command-config" in line for line in lines)


def test_script_is_strict_bash() -> None:
    text = (DEPLOY / "kafka-acls.sh").read_text()
    assert text.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in text
    assert "only deciders and the reception workers write facts" in " ".join(text.split())


def test_every_topic_is_literal_and_from_the_catalogue(grants: list[Grant]) -> None:
    topics = {g.name for g in grants if g.resource == "topic"}
    assert topics == {t(c) for c in CATALOGUE}, "the script's topics must be the catalogue's"
    assert all(g.pattern == "literal" and "*" not in g.name for g in grants if g.resource == "topic")


def test_every_topic_is_written_only_by_the_principals_in_the_table(grants: list[Grant]) -> None:
    for context in CATALOGUE:
        expected = {p for p, (_, writes, _) in TABLE.items() if t(context) in writes}
        assert principals_with(grants, "Write", "topic", t(context)) == expected, context
        for op in ("All", "Alter", "Delete", "AlterConfigs", "Create"):
            assert not principals_with(grants, op, "topic", t(context)), (op, context)


def test_no_client_principal_writes_facts(grants: list[Grant]) -> None:
    for client in (CLIENT, GATEWAY, AUDITOR):
        assert client not in principals_with(grants, "Write", "topic", t("reception")), client
        for context in CATALOGUE:
            if not context.endswith(".commands") and (client, context) != (GATEWAY, "audit"):
                assert client not in principals_with(grants, "Write", "topic", t(context)), (client, context)


def test_access_commands_go_through_the_gateway_and_only_it_writes_the_audit(grants: list[Grant]) -> None:
    # Researchers and DAC members act through the gateway, which verifies their token first.
    assert principals_with(grants, "Write", "topic", t("access.commands")) == {GATEWAY, user("access-timer")}
    assert principals_with(grants, "Write", "topic", t("access")) == {user("access-decider")}
    # ... and the scheduler, whose admission of a task is a controlled read of its inputs.
    assert principals_with(grants, "Write", "topic", t("audit")) == {GATEWAY, user("scheduler")}
    # The enforcement point's decisions are written, never read back, altered or deleted by the gateway.
    assert GATEWAY not in principals_with(grants, "Read", "topic", t("audit"))
    assert principals_with(grants, "Read", "topic", t("audit")) == {AUDITOR}


def test_grants_are_exactly_the_table(grants: list[Grant]) -> None:
    assert {g.principal for g in grants} == set(TABLE)
    for principal, (reads, writes, groups) in TABLE.items():
        mine = [g for g in grants if g.principal == principal]
        assert {g.name for g in mine if g.resource == "topic" and "Read" in g.operations} == reads, principal
        assert {g.name for g in mine if g.resource == "topic" and "Write" in g.operations} == writes, principal
        assert all("Describe" in g.operations for g in mine if g.resource == "topic"), principal
        assert {(g.name, g.pattern) for g in mine if g.resource == "group" and "Read" in g.operations} == groups
    # No cluster rights: IdempotentWrite is implied by Write on a topic since Kafka 2.8 (KIP-679).
    assert not [g for g in grants if g.resource in ("cluster", "transactional-id")]
    auditor_groups = [g for g in grants if g.principal == AUDITOR and g.resource == "group"]
    assert [(g.name, g.pattern, set(g.operations)) for g in auditor_groups] == [("genomebus-", "prefixed", {"Describe"})]


def test_grants_cover_what_the_workers_code_consumes_and_produces(grants: list[Grant]) -> None:
    settings = Settings()
    built = faststream_workers(settings)
    for name, worker in built.items():
        who = user(name)
        for topic in worker._subscribers:
            assert who in principals_with(grants, "Read", "topic", topic), (name, topic)
        for topic in {p.topic for p in worker.outputs}:
            assert who in principals_with(grants, "Write", "topic", topic), (name, topic)
        if worker._subscribers:  # a worker that consumes nothing (a timer) joins no group and dead-letters nothing
            assert who in principals_with(grants, "Write", "topic", worker.dead_letters.topic), name
            assert who in principals_with(grants, "Read", "group", worker.group_id), (name, worker.group_id)
    # The projector keeps its own aiokafka loop: a group per read model, on the read model's topics.
    assert "projector" not in built
    for model in READ_MODELS.values():
        for topic in model.topics(settings):
            assert user("projector") in principals_with(grants, "Read", "topic", topic), (model.name, topic)
        group = f"genomebus-projection-{model.name}"
        assert user("projector") in principals_with(grants, "Read", "group", group), group


def test_principals_can_be_renamed_and_the_prefix_changed() -> None:
    lines = dry_run(GENOMEBUS_PRINCIPAL_QC="User:CN=genomebus-qc,O=Example Org", GENOMEBUS_TOPIC_PREFIX="fi.")
    renamed = [parse(line) for line in lines]
    assert any(g.principal == "User:CN=genomebus-qc,O=Example Org" for g in renamed)
    assert user("qc") not in {g.principal for g in renamed}
    assert {g.name for g in renamed if g.resource == "topic"} == {"fi." + c for c in CATALOGUE}


# -- compose and settings ---------------------------------------------------------------------------


def test_compose_parses_and_every_worker_has_a_service_and_its_own_principal(compose: dict,
                                                                               grants: list[Grant]) -> None:
    services = compose["services"]
    by_command = {tuple(s["command"]): n for n, s in services.items() if isinstance(s.get("command"), list)}
    jaas = services["kafka"]["environment"]["KAFKA_LISTENER_NAME_CLIENTS_PLAIN_SASL_JAAS_CONFIG"]
    users_env = (DEPLOY / "kafka-users.env.example").read_text()
    for name in WORKER_MODULES:
        assert user(name) in {g.principal for g in grants}, name
        service = services[by_command[("worker", name)]]
        env = service["environment"]
        assert env["GENOMEBUS_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert env["GENOMEBUS_KAFKA_SASL_USERNAME"] == f"genomebus-{name}", name
        var = "KAFKA_PASSWORD_" + name.upper().replace("-", "_")
        assert f"${{{var}:?" in env["GENOMEBUS_KAFKA_SASL_PASSWORD"], name
        assert f'user_genomebus-{name}="${{{var}:?' in jaas, name
        assert re.search(rf"^{var}=REPLACE_ME$", users_env, re.M), var
        assert service["image"] == services["gateway"]["image"]
    usernames = [s["environment"]["GENOMEBUS_KAFKA_SASL_USERNAME"] for s in services.values()
                 if "GENOMEBUS_KAFKA_SASL_USERNAME" in (s.get("environment") or {})]
    assert len(usernames) == len(set(usernames)), "every service its own principal"


def test_compose_starts_workers_after_topics_acls_and_migrations(compose: dict) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["migrate"]
    assert "kafka-acls.sh" in services["kafka-acls"]["command"][0]
    assert services["init"]["environment"]["GENOMEBUS_KAFKA_SASL_USERNAME"] == "genomebus-admin"
    assert "User:genomebus-admin" in services["kafka"]["environment"]["KAFKA_SUPER_USERS"]
    assert services["kafka"]["environment"]["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    for name, service in services.items():
        if service.get("command") in (["gateway", "--host", "0.0.0.0", "--port", "8080"],) or \
                (isinstance(service.get("command"), list) and service["command"][:1] == ["worker"]):
            deps = service["depends_on"]
            for step in ("init", "kafka-acls", "migrate"):
                assert deps[step] == {"condition": "service_completed_successfully"}, (name, step)


def test_env_example_names_every_setting() -> None:
    text = (DEPLOY / "genomebus.env.example").read_text()
    not_in_file = {"data_dir", "gateway_host", "gateway_port"}  # production reads no data dir; compose sets the rest
    missing = [name for name in Settings.model_fields
               if name not in not_in_file and f"GENOMEBUS_{name.upper()}" not in text]
    assert not missing, missing


def test_compose_mounts_the_visa_keys_in_the_gateway_only(compose: dict) -> None:
    services = compose["services"]
    target = services["gateway"]["environment"]["GENOMEBUS_VISA_KEYS_DIR"]
    assert f"./secrets/visa:{target}:ro" in services["gateway"]["volumes"]
    assert "${GENOMEBUS_TRUSTED_ISSUERS:?" in services["gateway"]["environment"]["GENOMEBUS_TRUSTED_ISSUERS"]
    elsewhere = [name for name, service in services.items() if name != "gateway"
                 and any("secrets/visa" in str(volume) for volume in service.get("volumes") or [])]
    assert not elsewhere, "the visa signing keys are the gateway's secret"
    # Every process needs the path (the production profile refuses to start without it), not the keys.
    assert re.search(rf"^GENOMEBUS_VISA_KEYS_DIR={re.escape(target)}$",
                     (DEPLOY / "genomebus.env.example").read_text(), re.M)


def test_compose_mounts_the_archive_key_read_only_where_it_decrypts_and_nowhere_else(compose: dict) -> None:
    services = compose["services"]
    env_example = (DEPLOY / "genomebus.env.example").read_text()
    secret = re.search(r"^GENOMEBUS_ARCHIVE_SECRET_KEY_PATH=(\S+)$", env_example, re.M)
    public = re.search(r"^GENOMEBUS_ARCHIVE_PUBLIC_KEY_PATH=(\S+)$", env_example, re.M)
    assert secret and public
    target = str(Path(secret.group(1)).parent)
    assert str(Path(public.group(1)).parent) == target
    holders = {name for name, service in services.items()
               if any("secrets/archive" in str(volume) for volume in service.get("volumes") or [])}
    # The archive worker encrypts and verifies; the gateway decrypts to serve DRS and htsget; the indexer
    # decrypts the variant files it loads into the discovery index; the executor decrypts a task's inputs
    # as it stages them (and encrypts its outputs for the quarantine); the airlock decrypts quarantined
    # outputs to check them.
    assert holders == {"archive", "gateway", "indexer", "executor", "airlock"}
    for name in holders:
        assert f"./secrets/archive:{target}:ro" in services[name]["volumes"], name
        assert "./secrets/kafka/ca.crt:/etc/genomebus/kafka-ca.crt:ro" in services[name]["volumes"], name
    assert services["archive"]["command"] == ["worker", "archive"]
    assert services["gateway"]["command"][0] == "gateway"


def test_the_deploy_notes_give_the_gateway_archive_reads_only() -> None:
    principals = (DEPLOY / "principals.md").read_text()
    [gateway_row] = [line for line in principals.splitlines() if line.startswith("| `User:genomebus-gateway`")]
    assert gateway_row.rstrip(" |").endswith("archive bucket: read (GetObject) only; nothing on the inbox")
    readme = " ".join((DEPLOY / "README.md").read_text().split())
    assert "The gateway's S3 key should read the archive bucket and do nothing else" in readme
