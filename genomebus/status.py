"""What `genomebus status` reports: health, addresses, topics, groups, projection positions, dead letters."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

from genomebus.infra import health, kafka
from genomebus.infra.settings import Settings
from genomebus.infra.stack import pid_alive, read_state
from genomebus.schemas.topics import DEAD_LETTER


async def collect(settings: Settings) -> dict[str, Any]:
    state = read_state(settings.data_dir.resolve()) if settings.profile == "local" else {}
    comps = state.get("components", {})
    report: dict[str, Any] = {
        "node_id": settings.node_id,
        "state": state.get("status", "not started") if state else "external",
        "gateway_url": state.get("gateway_url") or settings.gateway_public_url,
        "components": {},
    }
    names = ["seaweedfs", "postgres", "kafka", "gateway", *[n for n, c in comps.items() if c.get("kind") == "worker"]]
    addresses = {
        "seaweedfs": comps.get("s3", {}).get("url"),
        "postgres": _without_password(comps.get("postgres", {}).get("dsn")),
        "kafka": comps.get("kafka", {}).get("bootstrap_servers"),
        "gateway": comps.get("gateway", {}).get("url"),
    }
    checks = await asyncio.gather(*(health.check(n, settings) for n in names))
    for name, (ok, detail) in zip(names, checks, strict=True):
        pid = comps.get(name, {}).get("pid")
        if comps.get(name, {}).get("kind") == "worker":
            alive = pid_alive(pid)
            ok, detail = alive, f"restarts: {comps[name].get('restarts', 0)}" + ("" if alive else "; not running")
        elif not ok:
            detail = plain_failure(detail)
        report["components"][name] = {"healthy": ok, "address": addresses.get(name), "pid": pid, "detail": detail}
    report["healthy"] = all(c["healthy"] for c in report["components"].values())
    if report["components"]["kafka"]["healthy"]:
        report.update(await _log_figures(settings, report["components"]["postgres"]["healthy"]))
    return report


FAILURES = (  # the start of a probe's "ExceptionType: message" → what a user is told
    ("SettingsError", "not configured (no address in the settings or the stack's state)"),
    ("TimeoutError", "no answer within 5 s"),
    ("HTTPStatusError", "answers with an error; see `genomebus logs`"),
)


def plain_failure(detail: str) -> str:
    """A failed probe in words: never the raw exception text (that is in the component's log)."""
    for prefix, words in FAILURES:
        if detail.startswith(prefix):
            return words
    return "not answering"


def _without_password(dsn: str | None) -> str | None:
    if not dsn or "@" not in dsn:
        return dsn
    scheme, rest = dsn.split("://", 1)
    creds, host = rest.split("@", 1)
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"


async def _log_figures(settings: Settings, with_db: bool) -> dict[str, Any]:
    ends = await kafka.end_offsets(settings, kafka.topic_names(settings))
    topics: dict[str, int] = {}
    for tp, end in ends.items():
        topics[tp.topic] = topics.get(tp.topic, 0) + end
    figures: dict[str, Any] = {
        "topics": dict(sorted(topics.items())),
        "dead_letters": topics.get(settings.topic(DEAD_LETTER), 0),
        "dead_letters_by_reason": await dead_letters_by_reason(
            settings, {tp: end for tp, end in ends.items() if tp.topic == settings.topic(DEAD_LETTER)}),
        "consumer_groups": await kafka.consumer_groups(settings),
        "projections": {},
    }
    if with_db:
        figures["projections"] = await _projection_positions(settings, ends)
    return figures


RETRIES_EXHAUSTED = "retries_exhausted"


async def dead_letters_by_reason(settings: Settings, until: dict[Any, int]) -> dict[str, int]:
    """Dead letters counted per reason code; ``retries_exhausted`` (a fault that may have healed) comes first."""
    counts: Counter[str] = Counter()
    async for record in kafka.read_log(settings, [settings.topic(DEAD_LETTER)], until=until):
        counts[_reason(record)] += 1
    return order_reasons(counts)


def order_reasons(counts: Counter[str]) -> dict[str, int]:
    ordered = sorted(counts.items(), key=lambda item: (item[0] != RETRIES_EXHAUSTED, -item[1], item[0]))
    return dict(ordered)


def _reason(record: Any) -> str:
    header = dict(record.headers or ()).get("dead_letter_reason")
    if header:
        return header.decode(errors="replace")
    try:
        return str(json.loads(record.value)["reason"])
    except (ValueError, KeyError, TypeError):
        return "unreadable"


async def _projection_positions(settings: Settings, ends: dict[Any, int]) -> dict[str, Any]:
    import asyncpg

    from genomebus.infra.readmodels import READ_MODELS as PROJECTIONS
    from genomebus.infra.projection import stored_positions

    result: dict[str, Any] = {}
    conn = await asyncpg.connect(settings.dsn)
    try:
        for name, projection in PROJECTIONS.items():
            try:
                positions = await stored_positions(conn, projection.live_schema())
            except asyncpg.UndefinedTableError:
                positions = {}
            topics = set(projection.topics(settings))
            end = sum(v for tp, v in ends.items() if tp.topic in topics)
            position = sum(v for tp, v in positions.items() if tp.topic in topics)
            result[name] = {"position": position, "end": end, "lag": max(end - position, 0),
                            "partitions": {f"{tp.topic}[{tp.partition}]": v for tp, v in sorted(positions.items())}}
    finally:
        await conn.close()
    return result
