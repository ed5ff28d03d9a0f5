"""The auditor's view: one aggregate's events read straight from the log."""

from __future__ import annotations

from typing import Any

from genomebus.infra import kafka
from genomebus.infra.settings import Settings
from genomebus.schemas.envelope import EventDecodeError, decode
from genomebus.schemas.topics import CATALOGUE, DEAD_LETTER


async def history(settings: Settings, subject: str) -> list[dict[str, Any]]:
    """Every event keyed ``subject`` on every context topic, ordered by time then log position."""
    key = subject.encode()
    topics = [settings.topic(c) for c in CATALOGUE if c != DEAD_LETTER]
    found: list[dict[str, Any]] = []
    async for record in kafka.read_log(settings, topics):
        if record.key != key:
            continue
        try:
            event = decode(record.value or b"")
        except EventDecodeError as exc:
            found.append({"time": "", "type": f"<undecodable: {exc.reason}>", "actor": "", "id": "",
                          "causation_id": None, "topic": record.topic, "partition": record.partition,
                          "offset": record.offset, "data": None})
            continue
        found.append({
            "time": event.time.isoformat(), "type": event.type, "actor": event.actor, "id": str(event.id),
            "causation_id": str(event.causation_id) if event.causation_id else None,
            "correlation_id": str(event.correlation_id), "topic": record.topic, "partition": record.partition,
            "offset": record.offset, "data": event.data.model_dump(mode="json"),
        })
    found.sort(key=lambda e: (e["time"], e["topic"], e["offset"]))
    return found
