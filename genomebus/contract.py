"""The node's AsyncAPI document, generated from the workers' faststream applications.

Each faststream worker (``consumers.WORKER_MODULES`` with a ``build(settings)``) declares what it
consumes (a subscriber per topic, its handlers typed by event) and what it produces (a publisher
per output event, and its dead letters). faststream turns those declarations into AsyncAPI 3.0;
``asyncapi`` merges every worker's document into one, named ``<worker>:<topic>`` (received) and
``<worker>:<event type>`` (sent), and adds what faststream does not know: the envelope's pinned
``type`` and ``schema_version`` (as in the exported JSON Schemas) and the Kafka headers every
event carries. The projector keeps its own aiokafka loop and is not in the document.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from faststream.specification import AsyncAPI

from genomebus.consumers import WORKER_MODULES
from genomebus.infra.settings import Settings
from genomebus.infra.worker import Worker
from genomebus.schemas import export as contract_export
from genomebus.schemas.topics import event_types

TITLE = "genomebus event bus"
DESCRIPTION = ("The Kafka topics of a genomebus node as its workers use them: what each worker consumes and "
               "produces. Every event is a CloudEvents 1.0 envelope keyed by its subject (the aggregate id), so "
               "one aggregate's events stay ordered in one partition.")


def workers(settings: Settings) -> dict[str, Worker]:
    """Every faststream worker of the node, built (not started: no resources, no connections)."""
    built = {}
    for name, module in WORKER_MODULES.items():
        build = getattr(importlib.import_module(module), "build", None)
        if build is not None:
            built[name] = build(settings)
    return built


def asyncapi(settings: Settings, names: list[str] | None = None) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the given workers (default: all), merged into one."""
    chosen = [w for n, w in workers(settings).items() if names is None or n in names]
    doc = AsyncAPI(*[w.broker for w in chosen], title=TITLE, version=contract_export.contract_version(),
                   description=DESCRIPTION, identifier=settings.source,
                   schema_version=contract_export.ASYNCAPI_VERSION).to_specification().to_jsonable()
    return _finish(doc)


def export(directory: Path, settings: Settings) -> list[Path]:
    """JSON Schema per event, the dead-letter body, and the generated AsyncAPI document."""
    return contract_export.export(directory, settings, asyncapi=asyncapi(settings))


def _finish(doc: dict[str, Any]) -> dict[str, Any]:
    doc.pop("servers", None)  # the contract is the same wherever a node's brokers are
    for channel in doc.get("channels", {}).values():
        channel.pop("servers", None)
    doc["defaultContentType"] = contract_export.EVENT_CONTENT_TYPE
    by_model = {cls.__name__: (event_type, cls) for event_type, cls in event_types().items()}
    schemas = doc.get("components", {}).get("schemas", {})
    for name, schema in schemas.items():
        if name.startswith("Envelope[") and (found := by_model.get(name[len("Envelope["):-1])):
            contract_export.pin_envelope(schema, found[1])
    for message in doc.get("components", {}).get("messages", {}).values():
        refs = [r["$ref"] for r in message["payload"].get("oneOf", [message["payload"]]) if "$ref" in r]
        names = [r.rsplit("/", 1)[1].replace("%5B", "[").replace("%5D", "]") for r in refs]
        types = [by_model[n[len("Envelope["):-1]][0] for n in names if n.startswith("Envelope[")
                 and n[len("Envelope["):-1] in by_model]
        if names == ["DeadLetter"]:
            message["contentType"] = contract_export.DEAD_LETTER_CONTENT_TYPE
            message["headers"] = contract_export.dead_letter_headers_schema()
        elif len(types) == 1:
            message["contentType"] = contract_export.EVENT_CONTENT_TYPE
            message["headers"] = contract_export.event_headers_schema(types[0])
        message["correlationId"] = {"location": "$message.header#/correlation_id",
                                    "description": "The envelope's correlation_id, shared by one workflow"}
    return doc
