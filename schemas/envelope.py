"""The envelope every event travels in: CloudEvents 1.0 attributes plus causation.

``encode`` and ``decode`` are the only way events become bytes and back;
``decode`` upcasts old versions and validates against the current model, so a
consumer never sees a dict.
"""

from __future__ import annotations

import json
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from genomebus.schemas.base import EventModel
from genomebus.schemas.upcasting import UPCASTERS, UpcastError, Upcasters

E = TypeVar("E", bound=EventModel)

_DERIVED_NAMESPACE = uuid.UUID("6f1f6c1e-3c1a-5d57-9d7e-8d3c6a0b9e11")


class Envelope(BaseModel, Generic[E]):
    """CloudEvents 1.0 structured event with genomebus extensions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    specversion: Literal["1.0"] = "1.0"
    id: UUID
    type: str
    source: str = Field(min_length=1, description="URI of the node that published the event")
    subject: str = Field(min_length=1, description="Aggregate id; also the Kafka key")
    time: AwareDatetime
    datacontenttype: Literal["application/json"] = "application/json"
    actor: str = Field(min_length=1, description="Who caused the event: a user id or a worker name")
    correlation_id: UUID
    causation_id: UUID | None = None
    schema_version: int = Field(ge=1)
    data: E

    @model_validator(mode="after")
    def _type_matches_data(self) -> Envelope[E]:
        if self.type != self.data.type:  # type: ignore[attr-defined]
            raise ValueError(f"envelope type {self.type!r} differs from data type {self.data.type!r}")  # type: ignore[attr-defined]
        if self.schema_version != type(self.data).schema_version:
            raise ValueError(f"schema_version {self.schema_version} is not the model's {type(self.data).schema_version}")
        return self


class EventDecodeError(ValueError):
    """Bytes that are not a valid event; ``reason`` is a machine-readable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def derived_id(cause: UUID, purpose: str) -> UUID:
    """Deterministic id of an event derived from ``cause``, so a redelivery derives the same id."""
    return uuid.uuid5(_DERIVED_NAMESPACE, f"{cause}:{purpose}")


JOURNEY: ContextVar[UUID | None] = ContextVar("genomebus_journey", default=None)
"""The correlation id of what is being served now (the gateway sets it per request from the W3C trace id
the caller sent): an event with no cause and no correlation of its own joins that journey."""


def new_envelope(
    data: E,
    *,
    source: str,
    actor: str,
    subject: str | None = None,
    cause: Envelope[Any] | None = None,
    event_id: UUID | None = None,
    correlation_id: UUID | None = None,
    time: datetime | None = None,
) -> Envelope[E]:
    """Wrap ``data``; a derived event inherits the correlation of its cause and a deterministic id."""
    if cause is not None:
        event_id = event_id or derived_id(cause.id, data.type)  # type: ignore[attr-defined]
        correlation_id = correlation_id or cause.correlation_id
    event_id = event_id or uuid.uuid4()
    correlation_id = correlation_id or JOURNEY.get()
    return Envelope[type(data)](  # type: ignore[misc]
        id=event_id,
        type=data.type,  # type: ignore[attr-defined]
        source=source,
        subject=subject or default_subject(data),
        time=time or datetime.now(UTC),
        actor=actor,
        correlation_id=correlation_id or event_id,
        causation_id=cause.id if cause is not None else None,
        schema_version=type(data).schema_version,
        data=data,
    )


def default_subject(data: EventModel) -> str:
    """The aggregate id an event is about: its ``subject_field``, else its model's first ``*_id`` field."""
    if type(data).subject_field:
        return str(getattr(data, type(data).subject_field))
    for name in type(data).model_fields:
        if name.endswith("_id"):
            return str(getattr(data, name))
    raise ValueError(f"{type(data).__name__} has no *_id field; pass subject explicitly")


def encode(envelope: Envelope[Any]) -> bytes:
    return envelope.model_dump_json().encode()


def decode(raw: bytes, *, upcasters: Upcasters = UPCASTERS) -> Envelope[Any]:
    """Parse, upcast and validate one event; raise ``EventDecodeError`` with a reason code."""
    from genomebus.schemas.topics import event_class

    try:
        obj = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EventDecodeError("not_json", str(exc)) from exc
    if not isinstance(obj, dict):
        raise EventDecodeError("not_an_object", f"expected a JSON object, got {type(obj).__name__}")
    cls = event_class(obj.get("type"))
    if cls is None:
        raise EventDecodeError("unknown_type", f"no event type {obj.get('type')!r} in the catalogue")
    try:
        obj = upcasters.upcast(obj, cls.schema_version)
    except UpcastError as exc:
        raise EventDecodeError("unsupported_version", str(exc)) from exc
    try:
        return Envelope[cls].model_validate(obj)  # type: ignore[valid-type]
    except ValidationError as exc:
        raise EventDecodeError("invalid_event", _short(exc)) from exc


def _short(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors()[:10])
