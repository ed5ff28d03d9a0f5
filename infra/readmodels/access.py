"""The ``access`` read model: applications, each dataset's decision in them, grants, vetoes, history.

Owned here: the tables, the version and every query others run on them. The projector folds the
access facts (and the access commands, for their outcomes) into it; the gateway, its enforcement
point and the access decider and timer read it through the functions below, never by naming its
tables.

A grant is a row of ``application_datasets`` that an approval gave a ``grant_id``; it is held by
the application's applicant and is *active* while its state is ``approved``, its ``expires_at``
is in the future and no veto names that user and dataset (``vetoes``: a veto always wins, even
over an approval projected after it). States:

- application: ``draft`` → ``submitted`` (a dataset pending) → ``returned`` (none pending, one
  returned: the applicant may resubmit) or ``decided`` (none pending or returned); ``closed``.
- dataset in an application: ``draft`` → ``pending`` → ``approved`` | ``rejected`` | ``returned``
  (→ ``pending`` again on resubmission); ``approved`` → ``revoked`` | ``expired``; any → ``vetoed``;
  ``draft``, ``pending``, ``returned``, ``approved`` → ``closed`` with the application.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from genomebus.infra.projection import Projection, Record
from genomebus.infra.readmodels.history import HISTORY_COLUMNS, HistoryEntry, history, record_history
from genomebus.schemas.access import (
    ACCESS_COMMANDS,
    ACCESS_FACTS,
    AccessChecked,
    AccessClosed,
    AccessCommandRejected,
    AccessDecided,
    AccessExpired,
    AccessRequested,
    AccessRevoked,
    AccessSubmitted,
    AccessVetoed,
)
from genomebus.schemas.envelope import Envelope

FACT_TYPES = frozenset(c.model_fields["type"].default for c in ACCESS_FACTS)
COMMAND_TYPES = frozenset(c.model_fields["type"].default for c in ACCESS_COMMANDS)
FOLLOWED_BY = {"access.submitted": "access.checked"}
"""A command whose outcome is two facts is decided, for its waiting client, once the second is applied."""

# Where a dataset may still become ``closed`` with its application; the others have ended already.
_OPEN = ("draft", "pending", "returned", "approved")


class AccessProjection(Projection):
    """Applications, each dataset's decision in them (grants), vetoes, history, and access commands' outcomes.

    It folds the commands and their outcomes too (``commands``), in the same transaction as the
    application's rows, so that a client that sees its command decided also sees the application
    as the decision left it.
    """

    name = "access"
    version = 1
    contexts = ("access", "access.commands")
    tables = {
        "applications": (
            "application_id uuid PRIMARY KEY, applicant text NOT NULL, project_title text NOT NULL, "
            "purpose text NOT NULL, research_use jsonb NOT NULL, collaborators text[] NOT NULL, "
            "state text NOT NULL, round integer NOT NULL, created_at timestamptz NOT NULL, "
            "updated_at timestamptz NOT NULL, closed_reason text"
        ),
        "application_datasets": (
            "application_id uuid NOT NULL, dataset_id text NOT NULL, dac_id text NOT NULL, state text NOT NULL, "
            "grant_id uuid UNIQUE, expires_at timestamptz, decided_at timestamptz, decided_by text, reason text, "
            "verdict text, findings jsonb, updated_at timestamptz NOT NULL, PRIMARY KEY (application_id, dataset_id)"
        ),
        "vetoes": (
            "event_id uuid PRIMARY KEY, dataset_id text NOT NULL, user_id text NOT NULL, application_id uuid, "
            "reason text NOT NULL, time timestamptz NOT NULL, actor text NOT NULL"
        ),
        "access_events": HISTORY_COLUMNS.format(subject="subject text"),
        "commands": (
            "command_id uuid PRIMARY KEY, type text, aggregate_id text, actor text, requested_at timestamptz, "
            "status text NOT NULL, outcome_event_id uuid, outcome_type text, reasons jsonb, state text, "
            "decided_at timestamptz"
        ),
    }
    indexes = (
        "CREATE INDEX IF NOT EXISTS applications_by_applicant ON {schema}.applications (applicant)",
        "CREATE INDEX IF NOT EXISTS application_datasets_by_dataset ON {schema}.application_datasets (dataset_id)",
        "CREATE INDEX IF NOT EXISTS application_datasets_by_dac ON {schema}.application_datasets (dac_id)",
        "CREATE INDEX IF NOT EXISTS grants_due ON {schema}.application_datasets (expires_at) "
        "WHERE state = 'approved'",
        "CREATE INDEX IF NOT EXISTS vetoes_by_user ON {schema}.vetoes (dataset_id, user_id)",
        "CREATE INDEX IF NOT EXISTS access_events_by_subject ON {schema}.access_events (subject, time)",
        "CREATE INDEX IF NOT EXISTS commands_by_aggregate ON {schema}.commands (aggregate_id, requested_at)",
    )

    async def apply(self, conn: asyncpg.Connection, schema: str, event: Envelope[Any], record: Record) -> None:
        await self.apply_many(conn, schema, [(event, record)])

    async def apply_many(self, conn: asyncpg.Connection, schema: str,
                         events: Sequence[tuple[Envelope[Any], Record]]) -> None:
        """Set-based for the history; then each fact seen for the first time, in log order.

        Access facts are few and each changes a handful of rows, so they are folded one by one:
        the rules (a veto wins, a grant only from a pending dataset, ...) read plainly that way.
        """
        await _fold_commands(conn, schema, [e for e, _ in events])
        facts = [(e, r) for e, r in events if e.type in FACT_TYPES]
        for event in await record_history(conn, schema, "access_events", "text", facts):
            await _fold(conn, schema, event)


async def _fold(conn: asyncpg.Connection, schema: str, event: Envelope[Any]) -> None:
    s = f'"{schema}"'
    match event.data:
        case AccessRequested() as d:
            created = await conn.fetchval(
                f"INSERT INTO {s}.applications (application_id, applicant, project_title, purpose, research_use, "
                "collaborators, state, round, created_at, updated_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6, "
                "'draft', 0, $7, $7) ON CONFLICT (application_id) DO NOTHING RETURNING true",
                d.application_id, d.applicant, d.project_title, d.purpose,
                json.dumps(d.research_use.model_dump(mode="json")), list(d.collaborators), event.time)
            if created:  # a second opening of the same id (never decided so) adds nothing
                await conn.execute(
                    f"INSERT INTO {s}.application_datasets (application_id, dataset_id, dac_id, state, updated_at) "
                    "SELECT $1, u.dataset_id, u.dac_id, 'draft', $4 FROM unnest($2::text[], $3::text[]) "
                    "AS u(dataset_id, dac_id) ON CONFLICT DO NOTHING",
                    d.application_id, [x.dataset_id for x in d.datasets], [x.dac_id for x in d.datasets], event.time)
        case AccessSubmitted() as d:
            submitted = await conn.fetchval(
                f"UPDATE {s}.applications SET project_title = $2, purpose = $3, research_use = $4::jsonb, "
                "collaborators = $5, round = $6, state = 'submitted', updated_at = $7 "
                "WHERE application_id = $1 AND state IN ('draft', 'returned') AND round < $6 RETURNING true",
                d.application_id, d.project_title, d.purpose, json.dumps(d.research_use.model_dump(mode="json")),
                list(d.collaborators), d.round, event.time)
            if submitted:  # a new round: the earlier round's decision and check no longer stand
                await conn.execute(
                    f"UPDATE {s}.application_datasets SET state = 'pending', verdict = NULL, findings = NULL, "
                    "reason = NULL, decided_at = NULL, decided_by = NULL, updated_at = $3 "
                    "WHERE application_id = $1 AND dataset_id = ANY($2::text[]) AND state IN ('draft', 'returned')",
                    d.application_id, list(d.pending), event.time)
                await _settle(conn, s, d.application_id, event.time)
        case AccessChecked() as d:
            await conn.execute(
                f"UPDATE {s}.application_datasets AS d SET verdict = v.verdict, findings = v.findings::jsonb "
                "FROM unnest($2::text[], $3::text[], $4::text[]) AS v(dataset_id, verdict, findings) "
                "WHERE d.application_id = $1 AND d.dataset_id = v.dataset_id AND d.state = 'pending' "
                f"AND EXISTS (SELECT 1 FROM {s}.applications a WHERE a.application_id = $1 AND a.round = $5)",
                d.application_id, [v.dataset_id for v in d.verdicts], [v.verdict for v in d.verdicts],
                [json.dumps([f.model_dump(mode="json") for f in v.findings]) for v in d.verdicts], d.round)
        case AccessDecided() as d:
            await conn.execute(
                f"UPDATE {s}.application_datasets SET state = $3, grant_id = $4, expires_at = $5, decided_at = $6, "
                "decided_by = $7, reason = $8, updated_at = $6 "
                "WHERE application_id = $1 AND dataset_id = $2 AND state = 'pending'",
                d.application_id, d.dataset_id, d.decision, d.grant_id if d.decision == "approved" else None,
                d.expires_at if d.decision == "approved" else None, event.time, event.actor, d.reason)
            await _settle(conn, s, d.application_id, event.time)
        case AccessVetoed() as d:
            await conn.execute(
                f"INSERT INTO {s}.vetoes (event_id, dataset_id, user_id, application_id, reason, time, actor) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING",
                event.id, d.dataset_id, d.user_id, d.application_id, d.reason, event.time, event.actor)
            if d.application_id is not None:  # a veto wins over whatever the dataset's state was
                await conn.execute(
                    f"UPDATE {s}.application_datasets SET state = 'vetoed', reason = $3, updated_at = $4 "
                    "WHERE application_id = $1 AND dataset_id = $2 AND state <> 'vetoed'",
                    d.application_id, d.dataset_id, d.reason, event.time)
                await _settle(conn, s, d.application_id, event.time)
        case AccessRevoked() as d:
            await conn.execute(
                f"UPDATE {s}.application_datasets SET state = 'revoked', reason = $3, updated_at = $4 "
                "WHERE application_id = $1 AND dataset_id = $2 AND state = 'approved'",
                d.application_id, d.dataset_id, d.reason, event.time)
        case AccessExpired() as d:
            await conn.execute(
                f"UPDATE {s}.application_datasets SET state = 'expired', updated_at = $3 "
                "WHERE application_id = $1 AND dataset_id = $2 AND state = 'approved'",
                d.application_id, d.dataset_id, event.time)
        case AccessClosed() as d:
            closed = await conn.fetchval(
                f"UPDATE {s}.applications SET state = 'closed', closed_reason = $2, updated_at = $3 "
                "WHERE application_id = $1 AND state <> 'closed' RETURNING true",
                d.application_id, d.reason, event.time)
            if closed:
                await conn.execute(
                    f"UPDATE {s}.application_datasets SET state = 'closed', updated_at = $2 "
                    "WHERE application_id = $1 AND state = ANY($3::text[])",
                    d.application_id, event.time, list(_OPEN))
        case AccessCommandRejected():
            pass  # on record in the history and in ``commands``; nothing changed


async def _settle(conn: asyncpg.Connection, s: str, application_id: UUID, time: datetime) -> None:
    """The application's state once its datasets changed: submitted while one is pending, then returned or decided."""
    await conn.execute(
        f"UPDATE {s}.applications AS a SET updated_at = $2, state = CASE "
        f"WHEN EXISTS (SELECT 1 FROM {s}.application_datasets d WHERE d.application_id = a.application_id "
        "AND d.state = 'pending') THEN 'submitted' "
        f"WHEN EXISTS (SELECT 1 FROM {s}.application_datasets d WHERE d.application_id = a.application_id "
        "AND d.state = 'returned') THEN 'returned' ELSE 'decided' END "
        "WHERE a.application_id = $1 AND a.state IN ('submitted', 'returned', 'decided')",
        application_id, time)


async def _fold_commands(conn: asyncpg.Connection, schema: str, events: Sequence[Envelope[Any]]) -> None:
    """Commands as requested (pending) and as decided; either may be projected first.

    A command answered by two facts (a submission: ``access.submitted`` then ``access.checked``, in
    that order on one partition) names the first as its outcome but is ``accepted`` only once the
    second is applied, so a client never sees it decided without the DUO check's verdicts.
    """
    s = f'"{schema}"'
    followers = set(FOLLOWED_BY.values())
    for event in events:
        if event.type in COMMAND_TYPES:
            await conn.execute(
                f"INSERT INTO {s}.commands (command_id, type, aggregate_id, actor, requested_at, status) "
                "VALUES ($1, $2, $3, $4, $5, 'pending') ON CONFLICT (command_id) DO UPDATE SET type = $2, "
                "aggregate_id = $3, actor = $4, requested_at = $5",
                event.id, event.type, event.subject, event.actor, event.time)
        elif event.causation_id is None or event.type not in FACT_TYPES:
            continue
        elif event.type in followers:
            await conn.execute(
                f"INSERT INTO {s}.commands (command_id, status) VALUES ($1, 'accepted') "
                "ON CONFLICT (command_id) DO UPDATE SET status = 'accepted'", event.causation_id)
        else:
            rejected = isinstance(event.data, AccessCommandRejected)
            status = "rejected" if rejected else "pending" if event.type in FOLLOWED_BY else "accepted"
            await conn.execute(
                f"INSERT INTO {s}.commands (command_id, status, outcome_event_id, outcome_type, reasons, state, "
                "decided_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7) ON CONFLICT (command_id) DO UPDATE "
                # a follower applied already (a redelivered first fact) keeps the command accepted
                f"SET status = CASE WHEN {s}.commands.status = 'accepted' AND $2 = 'pending' THEN 'accepted' "
                "ELSE $2 END, outcome_event_id = $3, outcome_type = $4, reasons = $5::jsonb, state = $6, "
                "decided_at = $7",
                event.causation_id, status, event.id, event.type,
                json.dumps([r.model_dump() for r in event.data.reasons]) if rejected else None,
                event.data.state if rejected else None, event.time)


# -- queries ----------------------------------------------------------------------------------------

SCHEMA = AccessProjection.live_schema()
_S = f'"{SCHEMA}"'
_APPLICATION = ("a.application_id AS id, a.applicant, a.project_title, a.purpose, a.research_use, a.collaborators, "
                "a.state, a.round, a.created_at, a.updated_at, a.closed_reason")
_DATASET = ("d.application_id, d.dataset_id, d.dac_id, d.state, d.grant_id, d.expires_at, d.decided_at, "
            "d.decided_by, d.reason, d.verdict, d.findings")
_GRANT = ("d.grant_id, d.application_id, d.dataset_id, a.applicant AS user_id, d.dac_id, d.state, d.decided_at, "
          "d.expires_at")
_NOT_VETOED = f"NOT EXISTS (SELECT 1 FROM {_S}.vetoes v WHERE v.dataset_id = d.dataset_id AND v.user_id = a.applicant)"
_ACTIVE = "d.state = 'approved' AND d.expires_at > {now} AND " + _NOT_VETOED

Conn = asyncpg.Connection | asyncpg.Pool


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _application(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    out.pop("total", None)
    out["research_use"] = _json(out["research_use"])
    out["collaborators"] = list(out["collaborators"])
    return out


def _dataset(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    out.pop("application_id", None)
    out["findings"] = _json(out["findings"]) or []
    return out


async def _datasets_of(conn: Conn, application_ids: Sequence[UUID]) -> dict[UUID, list[dict[str, Any]]]:
    rows = await conn.fetch(f"SELECT {_DATASET} FROM {_S}.application_datasets d "
                            "WHERE d.application_id = ANY($1::uuid[]) ORDER BY d.application_id, d.dataset_id",
                            list(application_ids))
    out: dict[UUID, list[dict[str, Any]]] = {i: [] for i in application_ids}
    for row in rows:
        out[row["application_id"]].append(_dataset(row))
    return out


async def get_application(conn: Conn, application_id: UUID) -> dict[str, Any] | None:
    """One application: ``id``, ``applicant``, its text, ``state``, ``round``, times, ``datasets`` and ``history``.

    Each of ``datasets``: ``dataset_id``, ``dac_id``, ``state``, ``grant_id`` (once approved),
    ``expires_at``, ``decided_at``, ``decided_by``, ``reason``, ``verdict`` and ``findings`` (the
    DUO check of the current round). ``history``: every fact about it, as ``HistoryEntry``.
    """
    row = await conn.fetchrow(f"SELECT {_APPLICATION} FROM {_S}.applications a WHERE a.application_id = $1",
                              application_id)
    if row is None:
        return None
    out = _application(row)
    out["datasets"] = (await _datasets_of(conn, [application_id]))[application_id]
    out["history"] = await access_history(conn, str(application_id))
    return out


async def list_applications(conn: Conn, *, applicant: str | None, dacs: Sequence[str] | None, everything: bool,
                            limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """A page of the applications someone may see (newest first, with ``datasets``), and how many in all.

    ``everything`` (a steward, an auditor): all of them. Otherwise those where ``applicant`` is the
    applicant or a collaborator, and those with a dataset decided by one of ``dacs``; nothing if
    neither is given.
    """
    where: list[str] = []
    args: list[Any] = [limit, offset]
    if not everything:
        if applicant:
            args.append(applicant)
            where.append(f"a.applicant = ${len(args)} OR ${len(args)} = ANY(a.collaborators)")
        if dacs:
            args.append(list(dacs))
            where.append(f"EXISTS (SELECT 1 FROM {_S}.application_datasets d WHERE d.application_id = "
                         f"a.application_id AND d.dac_id = ANY(${len(args)}::text[]))")
        if not where:
            return [], 0
    condition = " OR ".join(f"({w})" for w in where) or "true"
    rows = await conn.fetch(f"SELECT {_APPLICATION}, count(*) OVER () AS total FROM {_S}.applications a "
                            f"WHERE {condition} ORDER BY a.created_at DESC, a.application_id LIMIT $1 OFFSET $2",
                            *args)
    total = rows[0]["total"] if rows else 0
    applications = [_application(r) for r in rows]
    members = await _datasets_of(conn, [a["id"] for a in applications])
    for application in applications:
        application["datasets"] = members[application["id"]]
    return applications, total


async def application_state(conn: Conn, application_id: UUID) -> dict[str, Any] | None:
    """What the access decider decides against: the application (``get_application`` without history), and
    ``vetoed``, the datasets of it for which the applicant is vetoed (in this application or elsewhere)."""
    row = await conn.fetchrow(f"SELECT {_APPLICATION} FROM {_S}.applications a WHERE a.application_id = $1",
                              application_id)
    if row is None:
        return None
    out = _application(row)
    out["datasets"] = (await _datasets_of(conn, [application_id]))[application_id]
    out["vetoed"] = [r["dataset_id"] for r in await conn.fetch(
        f"SELECT DISTINCT v.dataset_id FROM {_S}.vetoes v JOIN {_S}.application_datasets d "
        "ON d.dataset_id = v.dataset_id AND d.application_id = $1 WHERE v.user_id = $2 ORDER BY v.dataset_id",
        application_id, out["applicant"])]
    return out


async def access_history(conn: Conn, subject: str) -> list[HistoryEntry]:
    """Every access fact about one application (its id) or one central veto (``veto_subject``), in order."""
    return await history(conn, SCHEMA, "access_events", "subject", subject)  # type: ignore[arg-type]


async def get_command(conn: Conn, command_id: UUID) -> dict[str, Any] | None:
    """An access command as requested and, once decided, its outcome (``status``: pending, accepted, rejected)."""
    row = await conn.fetchrow(f"SELECT * FROM {_S}.commands WHERE command_id = $1", command_id)
    if row is None:
        return None
    out = dict(row)
    out["reasons"] = _json(out["reasons"])
    return out


async def active_grant(conn: Conn, user_id: str, dataset_id: str, now: datetime) -> dict[str, Any] | None:
    """The user's grant for the dataset active at ``now``, or None.

    Active: approved, ``expires_at`` after ``now``, and no veto for that user and dataset. Keys:
    ``grant_id``, ``application_id``, ``dataset_id``, ``expires_at``, ``decided_at``, ``dac_id``; the
    one lasting longest if several applications granted it.
    """
    row = await conn.fetchrow(
        f"SELECT d.grant_id, d.application_id, d.dataset_id, d.expires_at, d.decided_at, d.dac_id "
        f"FROM {_S}.application_datasets d JOIN {_S}.applications a USING (application_id) "
        f"WHERE a.applicant = $1 AND d.dataset_id = $2 AND {_ACTIVE.format(now='$3')} "
        "ORDER BY d.expires_at DESC, d.grant_id LIMIT 1", user_id, dataset_id, now)
    return dict(row) if row else None


async def grants(conn: Conn, *, user_id: str | None = None, dataset_id: str | None = None, now: datetime,
                 active_only: bool = True) -> list[dict[str, Any]]:
    """Grants (datasets an approval gave a ``grant_id``) of a user, of a dataset, or of both.

    Keys: ``grant_id``, ``application_id``, ``dataset_id``, ``user_id``, ``dac_id``, ``state``
    (``approved``, ``revoked``, ``expired``, ``vetoed``, ``closed``), ``decided_at`` (the approval),
    ``expires_at`` and ``active`` (as ``active_grant`` means it, at ``now``). ``active_only``: only
    the active ones. Newest approval first.
    """
    where = ["d.grant_id IS NOT NULL"]
    args: list[Any] = [now]
    if user_id is not None:
        args.append(user_id)
        where.append(f"a.applicant = ${len(args)}")
    if dataset_id is not None:
        args.append(dataset_id)
        where.append(f"d.dataset_id = ${len(args)}")
    active = f"({_ACTIVE.format(now='$1')})"
    if active_only:
        where.append(active)
    rows = await conn.fetch(
        f"SELECT {_GRANT}, {active} AS active FROM {_S}.application_datasets d "
        f"JOIN {_S}.applications a USING (application_id) WHERE {' AND '.join(where)} "
        "ORDER BY d.decided_at DESC, d.grant_id", *args)
    return [dict(r) for r in rows]


async def is_vetoed(conn: Conn, user_id: str, dataset_id: str) -> bool:
    """Whether this node's steward vetoed the user's access to the dataset (in an application or not)."""
    return bool(await conn.fetchval(
        f"SELECT EXISTS (SELECT 1 FROM {_S}.vetoes WHERE user_id = $1 AND dataset_id = $2)", user_id, dataset_id))


async def due_grants(conn: Conn, now: datetime, limit: int = 100) -> list[dict[str, Any]]:
    """Approved grants whose ``expires_at`` is at or before ``now``, earliest first: what the access timer ends.

    Keys: ``grant_id``, ``application_id``, ``dataset_id``, ``expires_at``.
    """
    rows = await conn.fetch(
        f"SELECT grant_id, application_id, dataset_id, expires_at FROM {_S}.application_datasets "
        "WHERE state = 'approved' AND expires_at <= $1 ORDER BY expires_at, grant_id LIMIT $2", now, limit)
    return [dict(r) for r in rows]
