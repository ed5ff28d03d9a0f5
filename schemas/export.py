"""The event contract as documents, for teams that do not read Python.

``export`` writes, from the models and the topic catalogue and nothing else:

- ``<type>.schema.json``: JSON Schema (draft 2020-12) of each event's full envelope;
- ``deadletter.schema.json``: the body of a dead-letter message;
- ``asyncapi.json``: an AsyncAPI 3.0.0 document of the whole bus.

Keys are sorted and the order of everything else is stable, so re-exporting an
unchanged contract gives identical bytes and a diff shows only real changes.
"""

from __future__ import annotations

import json
from pathlib import Path
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol

from pydantic.json_schema import models_json_schema

from genomebus.schemas.base import EventModel
from genomebus.schemas.deadletter import DeadLetter
from genomebus.schemas.envelope import Envelope
from genomebus.schemas.topics import CATALOGUE, DEAD_LETTER, event_types


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
KAFKA_BINDING_VERSION = "0.5.0"
EVENT_CONTENT_TYPE = "application/cloudevents+json"
DEAD_LETTER_CONTENT_TYPE = "application/json"
DEAD_LETTER_FILE = "deadletter.schema.json"
ASYNCAPI_FILE = "asyncapi.json"

_COMPONENT_SCHEMA = "#/components/schemas/{model}"


def export(directory: Path, settings: Settings) -> list[Path]:
    """Write every contract document into ``directory``; return the paths written, in a stable order."""
    documents = {f"{event_type}.schema.json": event_schema(cls) for event_type, cls in _events()}
    documents[DEAD_LETTER_FILE] = dead_letter_schema()
    documents[ASYNCAPI_FILE] = asyncapi(settings)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, document in documents.items():
        path = directory / name
        path.write_bytes(_dump(document))
        written.append(path)
    return written


def schema_id(name: str, version: int | None = None) -> str:
    return f"urn:genomebus:schema:{name}" + (f":v{version}" if version is not None else "")


def event_schema(cls: type[EventModel]) -> dict[str, Any]:
    """The standalone JSON Schema of ``Envelope[cls]``."""
    schema = Envelope[cls].model_json_schema()  # type: ignore[valid-type]
    _pin_envelope(schema, cls)
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": schema_id(_type_of(cls), cls.schema_version), **schema}


def dead_letter_schema() -> dict[str, Any]:
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": schema_id(DEAD_LETTER), **DeadLetter.model_json_schema()}


def asyncapi(settings: Settings) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of the bus: a channel per catalogued topic, a message per event."""
    VERSION = contract_version()  # noqa: N806

    events = _events()
    envelopes = [Envelope[cls] for _, cls in events]  # type: ignore[valid-type]
    refs, defs = models_json_schema([(model, "validation") for model in (*envelopes, DeadLetter)],
                                    ref_template=_COMPONENT_SCHEMA)
    schemas = defs["$defs"]
    for (_, cls), envelope in zip(events, envelopes, strict=True):
        _pin_envelope(schemas[_component_name(refs[(envelope, "validation")])], cls)

    messages = {
        event_type: _event_message(event_type, cls, refs[(envelope, "validation")])
        for (event_type, cls), envelope in zip(events, envelopes, strict=True)
    }
    messages[DEAD_LETTER] = _dead_letter_message(refs[(DeadLetter, "validation")])

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for context, topic in CATALOGUE.items():
        names = [DEAD_LETTER] if context == DEAD_LETTER else [_type_of(cls) for cls in topic.events]
        address = settings.topic(context)
        channels[context] = {
            "address": address,
            "description": topic.description,
            "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in names},
            "bindings": {"kafka": {"bindingVersion": KAFKA_BINDING_VERSION, "topic": address,
                                   "partitions": settings.topic_partitions,
                                   "replicas": settings.topic_replication_factor}},
        }
        if not names:
            continue  # a context whose events are not written yet: nothing to send or receive
        for action, who in (("send", "producers publish"), ("receive", "workers consume")):
            operations[f"{context}.{action}"] = {
                "action": action,
                "channel": {"$ref": f"#/channels/{context}"},
                "messages": [{"$ref": f"#/channels/{context}/messages/{name}"} for name in names],
                "summary": f"{who} on {address}",
            }

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": settings.source,
        "info": {
            "title": "genomebus event bus",
            "version": VERSION,
            "description": "The Kafka topics of a genomebus node, one per bounded context plus the dead-letter "
                           "topic. Every event is a CloudEvents 1.0 envelope keyed by its subject (the aggregate "
                           "id), so one aggregate's events stay ordered in one partition.",
        },
        "defaultContentType": EVENT_CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


# -- parts -----------------------------------------------------------------------------------------


def _events() -> list[tuple[str, type[EventModel]]]:
    return sorted(event_types().items())


def _type_of(cls: type[EventModel]) -> str:
    return cls.model_fields["type"].default


def _component_name(ref: dict[str, str]) -> str:
    return ref["$ref"].rsplit("/", 1)[1]


def _pin_envelope(schema: dict[str, Any], cls: type[EventModel]) -> None:
    """State what the envelope's validator enforces: its type and version are the payload's."""
    event_type = _type_of(cls)
    properties = schema["properties"]
    properties["type"] = {**properties["type"], "const": event_type}
    properties["schema_version"] = {**properties["schema_version"], "const": cls.schema_version}
    schema["title"] = event_type
    if cls.__doc__:
        schema["description"] = cls.__doc__.strip()


def _event_message(event_type: str, cls: type[EventModel], payload: dict[str, str]) -> dict[str, Any]:
    message: dict[str, Any] = {
        "name": event_type,
        "title": event_type,
        "contentType": EVENT_CONTENT_TYPE,
        "headers": _event_headers(event_type),
        "payload": payload,
        "correlationId": {"location": "$message.payload#/correlation_id",
                          "description": "Shared by every event of one request or workflow"},
        "bindings": {"kafka": {"bindingVersion": KAFKA_BINDING_VERSION,
                               "key": {"type": "string",
                                       "description": "The envelope's subject: the id of the aggregate"}}},
    }
    if cls.__doc__:
        message["summary"] = cls.__doc__.strip().splitlines()[0]
    return message


def _event_headers(event_type: str) -> dict[str, Any]:
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


def _dead_letter_message(payload: dict[str, str]) -> dict[str, Any]:
    return {
        "name": DEAD_LETTER,
        "title": "dead letter",
        "summary": "A message a worker could not process, with the error and the original bytes",
        "contentType": DEAD_LETTER_CONTENT_TYPE,
        "headers": {
            "type": "object",
            "required": ["dead_letter_reason", "consumer"],
            "properties": {
                "dead_letter_reason": {"type": "string", "description": "Same as the body's reason"},
                "consumer": {"type": "string", "description": "Same as the body's consumer"},
            },
        },
        "payload": payload,
        "bindings": {"kafka": {"bindingVersion": KAFKA_BINDING_VERSION,
                               "key": {"type": "string",
                                       "description": "The failed message's key, when it had one"}}},
    }


def _dump(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
