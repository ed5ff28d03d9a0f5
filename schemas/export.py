"""The event contract as documents, for teams that do not read Python.

``export`` writes, from the models and the topic catalogue and nothing else:

- ``<type>.schema.json``: JSON Schema (draft 2020-12) of each event's full envelope;
- ``deadletter.schema.json``: the body of a dead-letter message;
- ``asyncapi.json``: the AsyncAPI 3.0.0 document it is given. That document is generated from
  the workers' faststream applications by ``genomebus.contract`` (this layer cannot see the
  workers); ``pin_envelope`` and the header schemas below are what it adds to faststream's output.

Keys are sorted and the order of everything else is stable, so re-exporting an
unchanged contract gives identical bytes and a diff shows only real changes.
"""

from __future__ import annotations

import json
from pathlib import Path
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol

from genomebus.schemas.base import EventModel
from genomebus.schemas.deadletter import DeadLetter
from genomebus.schemas.envelope import Envelope
from genomebus.schemas.topics import DEAD_LETTER, event_types


class Settings(Protocol):
    """What the export needs to know of a node's settings (``genomebus.infra.settings.Settings`` has it)."""

    source: str
    topic_partitions: int
    topic_replication_factor: int

    def topic(self, context: str) -> str: ...


def contract_version() -> str:
    """The contract is versioned with the node's distribution."""
    try:
        return version("genomebus")
    except PackageNotFoundError:
        return "0+unknown"

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ASYNCAPI_VERSION = "3.0.0"
EVENT_CONTENT_TYPE = "application/cloudevents+json"
DEAD_LETTER_CONTENT_TYPE = "application/json"
DEAD_LETTER_FILE = "deadletter.schema.json"
ASYNCAPI_FILE = "asyncapi.json"


def export(directory: Path, settings: Settings, asyncapi: dict[str, Any] | None = None) -> list[Path]:
    """Write every contract document into ``directory``; return the paths written, in a stable order."""
    documents = {f"{event_type}.schema.json": event_schema(cls) for event_type, cls in _events()}
    documents[DEAD_LETTER_FILE] = dead_letter_schema()
    if asyncapi is not None:
        documents[ASYNCAPI_FILE] = asyncapi
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, document in documents.items():
        path = directory / name
        path.write_bytes(dump(document))
        written.append(path)
    return written


def schema_id(name: str, version: int | None = None) -> str:
    return f"urn:genomebus:schema:{name}" + (f":v{version}" if version is not None else "")


def event_schema(cls: type[EventModel]) -> dict[str, Any]:
    """The standalone JSON Schema of ``Envelope[cls]``."""
    schema = Envelope[cls].model_json_schema()  # type: ignore[valid-type]
    pin_envelope(schema, cls)
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": schema_id(type_of(cls), cls.schema_version), **schema}


def dead_letter_schema() -> dict[str, Any]:
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": schema_id(DEAD_LETTER), **DeadLetter.model_json_schema()}


# -- parts -----------------------------------------------------------------------------------------


def _events() -> list[tuple[str, type[EventModel]]]:
    return sorted(event_types().items())


def type_of(cls: type[EventModel]) -> str:
    return cls.model_fields["type"].default


def pin_envelope(schema: dict[str, Any], cls: type[EventModel]) -> None:
    """State what the envelope's validator enforces: its type and version are the payload's."""
    event_type = type_of(cls)
    properties = schema["properties"]
    properties["type"] = {**properties["type"], "const": event_type}
    properties["schema_version"] = {**properties["schema_version"], "const": cls.schema_version}
    schema["title"] = event_type
    if cls.__doc__:
        schema["description"] = cls.__doc__.strip()


def event_headers_schema(event_type: str) -> dict[str, Any]:
    """The Kafka headers ``infra.kafka.Publisher`` sets; others (e.g. ``baggage``) may follow."""
    return {
        "type": "object",
        "required": ["content-type", "ce_id", "ce_type", "correlation_id"],
        "properties": {
            "content-type": {"type": "string", "const": EVENT_CONTENT_TYPE},
            "ce_id": {"type": "string", "format": "uuid", "description": "The envelope's id"},
            "ce_type": {"type": "string", "const": event_type},
            "correlation_id": {"type": "string", "format": "uuid", "description": "The envelope's correlation_id"},
            "traceparent": {"type": "string", "description": "W3C Trace Context of the publishing span"},
            "tracestate": {"type": "string", "description": "W3C Trace Context vendor state"},
        },
    }


def dead_letter_headers_schema() -> dict[str, Any]:
    """The Kafka headers of a dead-letter message."""
    return {
        "type": "object",
        "required": ["dead_letter_reason", "consumer"],
        "properties": {
            "dead_letter_reason": {"type": "string", "description": "Same as the body's reason"},
            "consumer": {"type": "string", "description": "Same as the body's consumer"},
        },
    }


def dump(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
