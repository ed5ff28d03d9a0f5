#!/usr/bin/env bash
# Kafka ACLs of a genomebus node: one principal per process role, each allowed exactly what it does.
#
# The model: clients (the CLI/SDK of data stewards and sequencing centres) may write command topics
# and the S3 inbox only; only deciders and the reception workers write facts. A command is a request
# ("dataset.release_requested"); a fact ("dataset.released") exists only once a decider or a worker
# has checked it, so nobody outside the node's own workers can put a fact on the log.
# Data Access Management: researchers and DAC members act through the gateway, which verifies their
# token before it publishes their command on genomebus.access.commands (clients cannot write it); the
# access timer adds expire commands (access.expire_requested); only the access decider writes genomebus.access. The audit topic
# holds the decisions of the gateway's enforcement point (data.accessed, data.access_denied) and the
# scheduler's for the inputs of tasks: only those two write it, and nobody may alter or delete it.
#
#   principal                          writes                                  reads (consumer group)
#   User:genomebus-client              genomebus.reception.commands,           -
#                                      genomebus.processing.commands (tools)
#   User:genomebus-gateway             every genomebus.*.commands topic,       -
#                                      genomebus.audit (its decisions)
#   User:genomebus-reception-decider   genomebus.reception, .deadletter        genomebus.reception.commands
#                                                                              (genomebus-reception-decider),
#                                                                              genomebus.reception (end offsets)
#   User:genomebus-qc                  genomebus.reception, .deadletter        genomebus.reception (genomebus-qc)
#   User:genomebus-archive             genomebus.reception, .deadletter        genomebus.reception (genomebus-archive)
#   User:genomebus-access-decider      genomebus.access, .deadletter           genomebus.access.commands
#                                                                              (genomebus-access-decider),
#                                                                              genomebus.access, genomebus.reception
#                                                                              (end offsets)
#   User:genomebus-access-timer        genomebus.access.commands (expire)      - (reads PostgreSQL)
#   User:genomebus-indexer             genomebus.discovery, .deadletter        genomebus.reception (genomebus-indexer)
#   User:genomebus-tool-registry       genomebus.processing, .deadletter       genomebus.processing.commands
#                                                                              (genomebus-tool-registry),
#                                                                              genomebus.processing (end offsets)
#   User:genomebus-executor            genomebus.processing, .deadletter       genomebus.processing (genomebus-executor)
#   User:genomebus-airlock             genomebus.processing, .deadletter       genomebus.processing, .processing.commands
#                                                                              (genomebus-airlock)
#   User:genomebus-scheduler           genomebus.processing, .audit,           genomebus.processing.commands
#                                      .deadletter                             (genomebus-scheduler); .processing,
#                                                                              .reception, .access (end offsets)
#   User:genomebus-projector           genomebus.deadletter                    genomebus.reception, .reception.commands,
#                                                                              .access, .access.commands
#                                                                              (genomebus-projection-*, prefixed)
#   User:genomebus-auditor             -                                       every topic (no group: `genomebus
#                                                                              audit` assigns partitions), Describe
#                                                                              on the genomebus-* groups (status)
#   admin (super.users)                creates topics (`init`), runs this script; gets no ACL here.
#
# Everything not granted is denied (the StandardAuthorizer denies by default unless
# allow.everyone.if.no.acl.found=true, which a genomebus broker must never set). Write implies
# Describe and Read implies Describe in Kafka; Describe is granted explicitly anyway, for readability.
#
# Idempotent producers (GENOMEBUS_KAFKA_ENABLE_IDEMPOTENCE=true): since Apache Kafka 2.8 (KIP-679) a
# producer with Write on any topic may call InitProducerId, and the cluster-level IdempotentWrite ACL
# is deprecated, so this script grants no cluster permission at all; our brokers are 3.9. Only a
# broker older than 2.8 would need `--operation IdempotentWrite --cluster` for every producing
# principal. genomebus uses no transactions, so no TransactionalId ACL is granted either.
#
# Usage:
#   kafka-acls.sh --bootstrap-server kafka:9093 --command-config admin.properties   # grant
#   kafka-acls.sh --dry-run                                                          # print the commands
#
# --command-config is the admin's client properties (security.protocol=SASL_SSL, sasl.mechanism,
# sasl.jaas.config, ssl.truststore.*). Granting is idempotent: an ACL that exists is left as is, so the
# script runs on every `up`. It only adds: revoke with `kafka-acls.sh --remove` (and check with
# `--list`) when a principal loses a permission.
#
# Environment: KAFKA_ACLS (the kafka-acls.sh to run; default: on PATH, else /opt/kafka/bin),
# GENOMEBUS_KAFKA_BOOTSTRAP_SERVERS (default of --bootstrap-server), GENOMEBUS_TOPIC_PREFIX (default
# genomebus.), GENOMEBUS_PRINCIPAL_<ROLE> to rename a principal (e.g. mutual TLS:
# GENOMEBUS_PRINCIPAL_QC='User:CN=genomebus-qc,O=Example'); roles CLIENT GATEWAY RECEPTION_DECIDER QC
# ARCHIVE ACCESS_DECIDER ACCESS_TIMER INDEXER PROJECTOR AUDITOR.
set -euo pipefail

usage() {
    sed -n '/^# Usage:/,/^# --command-config/p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

dry_run=false
bootstrap="${GENOMEBUS_KAFKA_BOOTSTRAP_SERVERS:-}"
command_config=""
while (($#)); do
    case "$1" in
        --dry-run) dry_run=true ;;
        --bootstrap-server) bootstrap="${2:?--bootstrap-server needs a value}"; shift ;;
        --bootstrap-server=*) bootstrap="${1#*=}" ;;
        --command-config) command_config="${2:?--command-config needs a file}"; shift ;;
        --command-config=*) command_config="${1#*=}" ;;
        -h | --help) usage ;;
        *) echo "kafka-acls.sh: unknown argument: $1" >&2; usage ;;
    esac
    shift
done

if $dry_run; then
    bootstrap="${bootstrap:-kafka:9093}"
    command_config="${command_config:-admin.properties}"
else
    [[ -n "$bootstrap" ]] || { echo "kafka-acls.sh: --bootstrap-server (or GENOMEBUS_KAFKA_BOOTSTRAP_SERVERS) is required" >&2; exit 2; }
    [[ -n "$command_config" ]] || { echo "kafka-acls.sh: --command-config (the admin's client properties) is required" >&2; exit 2; }
    [[ -r "$command_config" ]] || { echo "kafka-acls.sh: cannot read $command_config" >&2; exit 2; }
fi

if [[ -z "${KAFKA_ACLS:-}" ]]; then
    if command -v kafka-acls.sh >/dev/null 2>&1; then KAFKA_ACLS=kafka-acls.sh; else KAFKA_ACLS=/opt/kafka/bin/kafka-acls.sh; fi
fi
if ! $dry_run && ! command -v "$KAFKA_ACLS" >/dev/null 2>&1; then
    echo "kafka-acls.sh: Apache Kafka's kafka-acls.sh not found; set KAFKA_ACLS" >&2
    exit 2
fi

prefix="${GENOMEBUS_TOPIC_PREFIX:-genomebus.}"
# The topic catalogue (genomebus.schemas.topics.CATALOGUE); tests/unit/test_deploy.py keeps them equal.
contexts=(reception reception.commands access access.commands discovery processing processing.commands audit deadletter)
command_topics=()
for c in "${contexts[@]}"; do
    [[ "$c" == *.commands ]] && command_topics+=("$prefix$c")
done

principal() {  # principal ROLE: User:genomebus-<role>, unless GENOMEBUS_PRINCIPAL_<ROLE> renames it
    local var="GENOMEBUS_PRINCIPAL_$(tr 'a-z-' 'A-Z_' <<<"$1")"
    printf '%s' "${!var:-User:genomebus-$1}"
}

run() {
    local cmd=("$KAFKA_ACLS" --bootstrap-server "$bootstrap" --command-config "$command_config" --add "$@")
    if $dry_run; then
        printf '%q ' "${cmd[@]}" | sed 's/ $//'
        echo
    else
        "${cmd[@]}" >/dev/null
    fi
}

writes() {  # writes ROLE TOPIC...
    local who topic
    who="$(principal "$1")"; shift
    for topic in "$@"; do
        run --allow-principal "$who" --operation Write --operation Describe --topic "$topic"
    done
}

reads() {  # reads ROLE TOPIC...
    local who topic
    who="$(principal "$1")"; shift
    for topic in "$@"; do
        run --allow-principal "$who" --operation Read --operation Describe --topic "$topic"
    done
}

group() {  # group ROLE NAME literal|prefixed: join the consumer group and commit its offsets
    run --allow-principal "$(principal "$1")" --operation Read --group "$2" --resource-pattern-type "$3"
}

# Clients: commands only (their files go to the S3 inbox, their reads to the gateway).
writes client "${prefix}reception.commands" "${prefix}processing.commands"

# The gateway publishes commands on behalf of API callers (for access commands: after verifying the
# researcher's or DAC member's token) and is the enforcement point: it writes the audit topic (the scheduler too, for the inputs of tasks).
# It reads PostgreSQL, not Kafka.
writes gateway "${command_topics[@]}" "${prefix}audit"

# The reception decider turns commands into facts or rejections.
reads reception-decider "${prefix}reception.commands" "${prefix}reception"
group reception-decider genomebus-reception-decider literal
writes reception-decider "${prefix}reception" "${prefix}deadletter"

# The reception workers: QC and the archive react to facts with facts.
for role in qc archive; do
    reads "$role" "${prefix}reception"
    group "$role" "genomebus-$role" literal
    writes "$role" "${prefix}reception" "${prefix}deadletter"
done

# Data Access Management: the access decider turns access commands into facts or rejections; it reads
# the end offsets of genomebus.access and genomebus.reception (a fetch) to wait for the read models.
reads access-decider "${prefix}access.commands" "${prefix}access" "${prefix}reception"
group access-decider genomebus-access-decider literal
writes access-decider "${prefix}access" "${prefix}deadletter"

# The access timer finds grants past their end in PostgreSQL and asks for their expiry: commands only,
# no consumer group, no dead letters (it consumes nothing).
writes access-timer "${prefix}access.commands"

# Data Discovery: the indexer loads released datasets into the discovery index and says so on
# genomebus.discovery (dataset.indexed / index_failed / unindexed); it alone writes that topic.
reads indexer "${prefix}reception"
group indexer genomebus-indexer literal
writes indexer "${prefix}discovery" "${prefix}deadletter"

# Processing: the tool registry turns tool commands (from stewards' clients) into facts or rejections; it
# reads the end offsets of genomebus.processing (a fetch) to wait for the tools read model.
reads tool-registry "${prefix}processing.commands" "${prefix}processing"
group tool-registry genomebus-tool-registry literal
writes tool-registry "${prefix}processing" "${prefix}deadletter"

# The scheduler admits TES tasks; a task reading an archived object is a controlled access, so it
# writes its decision for each input on the audit topic, as the gateway's enforcement point does.
reads scheduler "${prefix}processing.commands" "${prefix}processing" "${prefix}reception" "${prefix}access"
group scheduler genomebus-scheduler literal
writes scheduler "${prefix}processing" "${prefix}audit" "${prefix}deadletter"

# The executor runs admitted tasks and says how they go (states, logs, result.ready).
reads executor "${prefix}processing"
group executor genomebus-executor literal
writes executor "${prefix}processing" "${prefix}deadletter"

# The airlock checks finished tasks' outputs, decides the checkers' approvals and rejects, releases.
reads airlock "${prefix}processing" "${prefix}processing.commands"
group airlock genomebus-airlock literal
writes airlock "${prefix}processing" "${prefix}deadletter"

# The projector folds facts (and commands, for the datasets and access read models) into PostgreSQL;
# one group per read model, so the prefix covers the read models to come.
reads projector "${prefix}reception" "${prefix}reception.commands" "${prefix}access" "${prefix}access.commands" \
    "${prefix}processing" "${prefix}processing.commands"
group projector genomebus-projection- prefixed
writes projector "${prefix}deadletter"

# Auditors read the whole log and see the consumer groups' positions; they write nothing.
for c in "${contexts[@]}"; do
    reads auditor "$prefix$c"
done
run --allow-principal "$(principal auditor)" --operation Describe --group genomebus- --resource-pattern-type prefixed

$dry_run || echo "kafka-acls.sh: ACLs granted on $bootstrap"
