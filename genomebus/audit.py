"""The auditor's view: the events of one dataset, file or command, read straight from the log.

Every id a user is shown is accepted. A dataset id or a file id (UUID) is the key
of its aggregate's events, with the outcomes of the commands among them (a file
submitted to a dataset is its own aggregate: its ``file.uploaded`` is shown with the
dataset's ``file.submit_requested``). A file accession is not a key: it is resolved to
the file through the log's own ``file.uploaded`` (where the reception decider gives it)
or ``file.archived`` event (auditors read the log, not the read models). A command id
(or any event id) names one event: its trail is that event and the events it caused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiokafka.structs import ConsumerRecord, TopicPartition

from genomebus.infra import kafka
from genomebus.infra.settings import Settings
from genomebus.schemas.envelope import EventDecodeError, decode
from genomebus.schemas.topics import CATALOGUE, DEAD_LETTER


@dataclass(frozen=True)
class Trail:
    """What ``asked`` named on the log: ``kind`` is ``aggregate``, ``accession``, ``command``, ``event`` or
    ``unknown``."""

    asked: str
    kind: str
    subject: str
    events: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> str:
        if self.kind == "accession":
            return f"{self.asked} (file {self.subject})"
        if self.kind == "command":
            return f"command {self.asked} (on {self.subject}) and its outcome"
        if self.kind == "event":
            return f"event {self.asked} (on {self.subject}) and what it caused"
        return self.asked


async def history(settings: Settings, subject: str) -> list[dict[str, Any]]:
    """The events ``subject`` names (dataset id, file id, file accession or command id), in log order."""
    return (await trail(settings, subject)).events


async def trail(settings: Settings, asked: str) -> Trail:
    """Resolve ``asked`` on the log and return its events, ordered by time then log position."""
    topics = [settings.topic(c) for c in CATALOGUE if c != DEAD_LETTER]
    until = await kafka.end_offsets(settings, topics)  # both passes read the same log
    needle = asked.encode()
    keyed: list[dict[str, Any]] = []
    mentions: list[dict[str, Any]] = []
    async for record in kafka.read_log(settings, topics, until=until):
        if record.key == needle:
            keyed.append(_entry(record))
        elif needle in (record.value or b""):  # cheap before decoding: only events that carry the id
            mentions.append(_entry(record))
    if keyed:
        commands = {e["id"] for e in keyed if e["topic"].endswith(".commands")}
        outcomes = [e for e in mentions if e["causation_id"] in commands]
        return Trail(asked, "aggregate", asked, _ordered(keyed + outcomes))
    for event in mentions:
        if event["type"] in ("file.uploaded", "file.archived") and (event["data"] or {}).get("accession") == asked:
            file_id = str(event["data"]["file_id"])
            return Trail(asked, "accession", file_id, await _keyed(settings, topics, until, file_id))
    command = next((e for e in mentions if e["id"] == asked), None)
    if command is not None:
        answers = [e for e in mentions if e["causation_id"] == asked]
        kind = "command" if command["topic"].endswith(".commands") else "event"
        return Trail(asked, kind, command["key"], _ordered([command, *answers]))
    return Trail(asked, "unknown", asked)


async def _keyed(settings: Settings, topics: list[str], until: dict[TopicPartition, int],
                 subject: str) -> list[dict[str, Any]]:
    key = subject.encode()
    return _ordered([_entry(r) async for r in kafka.read_log(settings, topics, until=until) if r.key == key])


def _ordered(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(events, key=lambda e: (e["time"], e["topic"], e["offset"]))


def _entry(record: ConsumerRecord[bytes, bytes]) -> dict[str, Any]:
    position = {"topic": record.topic, "partition": record.partition, "offset": record.offset,
                "key": (record.key or b"").decode(errors="replace")}
    try:
        event = decode(record.value or b"")
    except EventDecodeError as exc:
        return {"time": "", "type": f"<undecodable: {exc.reason}>", "actor": "", "id": "", "causation_id": None,
                **position, "data": None}
    return {
        "time": event.time.isoformat(), "type": event.type, "actor": event.actor, "id": str(event.id),
        "causation_id": str(event.causation_id) if event.causation_id else None,
        "correlation_id": str(event.correlation_id), **position, "data": event.data.model_dump(mode="json"),
    }


# -- a researcher's journey ------------------------------------------------------------------------------

LINK_FIELDS = ("application_id", "task_id", "run_id")
"""What ties the events of one journey that other people or workers caused (a DAC's decision on the
application, the executor's and the airlock's events on the task) to the researcher's own requests."""


def journey_step(event: dict[str, Any]) -> str:
    """Which step of discover → apply → approve → run → check → release → download an event is."""
    kind, data = event["type"], event.get("data") or {}
    if kind.startswith("data.access"):
        resource = str(data.get("resource", ""))
        if "/beacon/" in resource:
            return "discover"
        if str(data.get("object_id") or "").startswith("output-"):
            return "download"
        return "run" if data.get("credential") == "task" else "read"
    if kind.startswith("access."):
        return "approve" if kind in ("access.decide_requested", "access.decided", "access.vetoed") else "apply"
    if kind in ("output.checked", "output.approve_requested", "output.approved", "output.reject_requested",
                "output.rejected"):
        return "check"
    if kind == "output.released":
        return "release"
    if kind.startswith(("task.", "workflow.", "result.")):
        return "run"
    return kind.split(".", 1)[0]


async def journey(settings: Settings, correlation: str) -> list[dict[str, Any]]:
    """Every event of the journey whose correlation id (the W3C trace id of the researcher's requests) is
    ``correlation``, with the events linked to it by application, task or run, in time order."""
    topics = [settings.topic(c) for c in CATALOGUE if c != DEAD_LETTER]
    until = await kafka.end_offsets(settings, topics)
    entries = [_entry(r) async for r in kafka.read_log(settings, topics, until=until)]
    chosen = {e["id"]: e for e in entries if e.get("correlation_id") == correlation}
    links: set[str] = set()
    while True:
        for e in list(chosen.values()):
            data = e.get("data") or {}
            links.update(str(data[f]) for f in LINK_FIELDS if data.get(f))
        more = {e["id"]: e for e in entries if e["id"] not in chosen and (
            e["key"] in links or any(str((e.get("data") or {}).get(f)) in links for f in LINK_FIELDS)
            or e.get("causation_id") in chosen)}
        if not more:
            break
        chosen.update(more)
    return _ordered([{**e, "step": journey_step(e), "who": _who(e)} for e in chosen.values()])


def _who(event: dict[str, Any]) -> str:
    """The actor, and for the enforcement point's decisions the user they were about."""
    user = (event.get("data") or {}).get("user_id") if event["type"].startswith("data.access") else None
    return f"{event['actor']} ({user})" if user and user != event["actor"] else event["actor"]
