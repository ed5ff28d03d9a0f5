"""The topic catalogue: one topic per bounded context, plus the dead-letter topic.

Every message is keyed by its envelope's ``subject`` (the aggregate id), so one
aggregate's events stay ordered in one partition. A topic's payloads form a
discriminated union on ``type``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter

from genomebus.schemas.access import ACCESS_COMMANDS, ACCESS_FACTS
from genomebus.schemas.audit import AUDIT_EVENTS
from genomebus.schemas.base import EventModel
from genomebus.schemas.discovery import DISCOVERY_EVENTS
from genomebus.schemas.processing import PROCESSING_COMMANDS, PROCESSING_FACTS
from genomebus.schemas.reception import (
    RECEPTION_COMMANDS,
    CommandRejected,
    DatasetRegistered,
    DatasetUpdated,
    DatasetReleased,
    DatasetWithdrawn,
    FileArchived,
    FileQcFailed,
    FileQcPassed,
    FileUploaded,
)


@dataclass(frozen=True)
class Topic:
    context: str
    description: str
    events: tuple[type[EventModel], ...] = field(default=())
    retention: str = "forever"

    def payload_union(self) -> Any:
        """The discriminated union of this topic's payloads (a single model when there is one)."""
        if not self.events:
            return None
        if len(self.events) == 1:
            return self.events[0]
        return Annotated[Union[self.events], Field(discriminator="type")]  # noqa: UP007

    def payload_adapter(self) -> TypeAdapter[Any]:
        return TypeAdapter(self.payload_union())


DEAD_LETTER = "deadletter"

CATALOGUE: dict[str, Topic] = {
    t.context: t
    for t in (
        Topic("reception", "Data Reception: datasets described, files uploaded, checked, archived, released",
              (DatasetRegistered, FileUploaded, FileQcPassed, FileQcFailed, FileArchived, DatasetReleased,
               DatasetWithdrawn, DatasetUpdated, CommandRejected)),
        Topic("reception.commands", "Data Reception commands: register, update, release, withdraw a dataset; "
              "submit a file. Decided by the reception decider, which publishes the facts or a rejection",
              RECEPTION_COMMANDS),
        Topic("access", "Data Access Management: applications, their DUO check, DAC decisions, vetoes, grants "
              "revoked, expired and closed", ACCESS_FACTS),
        Topic("access.commands", "Data Access Management commands: apply, submit, decide, veto, revoke, expire, "
              "close. Decided by the access decider, which publishes the facts or a rejection", ACCESS_COMMANDS),
        Topic("discovery", "Data Discovery: released datasets indexed for Beacon and the catalogue, and unindexed "
              "when withdrawn. Decided by the indexer", DISCOVERY_EVENTS),
        Topic("processing", "Processing: tools registered and approved, tasks admitted and run in the sandbox, "
              "outputs checked, reviewed and released by the airlock", PROCESSING_FACTS),
        Topic("processing.commands", "Processing commands: register, approve, withdraw a tool version; ask for or "
              "cancel a task; approve or reject an output. Decided by the tool registry, the scheduler and the "
              "airlock", PROCESSING_COMMANDS),
        Topic("audit", "Every decision of the enforcement point: data accessed or access denied", AUDIT_EVENTS),
        Topic(DEAD_LETTER, "Messages a worker could not process: the error and the original bytes"),
    )
}

_BY_TYPE: dict[str, type[EventModel]] = {}
for _topic in CATALOGUE.values():
    for _cls in _topic.events:
        _type = _cls.model_fields["type"].default
        if _type in _BY_TYPE:
            raise RuntimeError(f"event type {_type} is declared twice")
        if _cls.context != _topic.context:
            raise RuntimeError(f"{_cls.__name__} says context {_cls.context} but is catalogued in {_topic.context}")
        _BY_TYPE[_type] = _cls


def event_class(event_type: object) -> type[EventModel] | None:
    return _BY_TYPE.get(event_type) if isinstance(event_type, str) else None


def event_types() -> dict[str, type[EventModel]]:
    return dict(_BY_TYPE)


def topic_for(event: EventModel | type[EventModel]) -> Topic:
    return CATALOGUE[event.context]
