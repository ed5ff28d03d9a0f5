"""The AsyncAPI document generated from the workers' faststream apps agrees with the exported JSON Schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from genomebus.contract import asyncapi, export
from genomebus.infra.settings import Settings
from tests.unit.test_export import refs_in, resolve


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings(topic_prefix="test.", node_id="NO")


@pytest.fixture(scope="module")
def doc(settings: Settings) -> dict[str, Any]:
    return asyncapi(settings)


def payload_refs(message: dict[str, Any]) -> list[str]:
    payload = message["payload"]
    return [p["$ref"] for p in payload.get("oneOf", [payload])]


def events_of(doc: dict[str, Any], worker: str, action: str) -> set[tuple[str, str]]:
    """(topic, event type) a worker receives or sends, read from the document alone."""
    found = set()
    for name, operation in doc["operations"].items():
        if not name.startswith(f"{worker}:") or operation["action"] != action:
            continue
        channel = resolve(doc, operation["channel"]["$ref"])
        for message_ref in operation["messages"]:
            message = resolve(doc, resolve(doc, message_ref["$ref"])["$ref"])
            for ref in payload_refs(message):
                schema = resolve(doc, ref.replace("%5B", "[").replace("%5D", "]"))
                kind = schema["properties"]["type"].get("const") if "type" in schema["properties"] else None
                found.add((channel["address"], kind or schema["title"]))
    return found


def test_every_message_payload_is_the_exported_schema_of_its_event(tmp_path: Path, settings: Settings,
                                                                  doc: dict[str, Any]) -> None:
    export(tmp_path, settings)
    checked = 0
    for message in doc["components"]["messages"].values():
        for ref in payload_refs(message):
            schema = resolve(doc, ref.replace("%5B", "[").replace("%5D", "]"))
            if schema.get("title") == "DeadLetter":
                exported = json.loads((tmp_path / "deadletter.schema.json").read_text())
                assert set(schema["required"]) == set(exported["required"])
                continue
            event_type = schema["properties"]["type"]["const"]
            exported = json.loads((tmp_path / f"{event_type}.schema.json").read_text())
            assert set(schema["required"]) == set(exported["required"])
            assert set(schema["properties"]) == set(exported["properties"])
            assert schema["properties"]["schema_version"]["const"] == exported["properties"]["schema_version"]["const"]
            data = resolve(doc, schema["properties"]["data"]["$ref"])
            exported_data = resolve(exported, exported["properties"]["data"]["$ref"])
            assert set(data["required"]) == set(exported_data["required"])
            assert set(data["properties"]) == set(exported_data["properties"])
            assert data["properties"]["type"]["const"] == event_type
            if len(payload_refs(message)) == 1:
                assert message["headers"]["properties"]["ce_type"]["const"] == event_type
            checked += 1
    assert checked >= 4


def test_qc_consumes_uploads_and_produces_verdicts(doc: dict[str, Any]) -> None:
    assert events_of(doc, "qc", "receive") == {("test.reception", "file.uploaded")}
    assert events_of(doc, "qc", "send") == {("test.reception", "file.qc_passed"), ("test.reception", "file.qc_failed"),
                                            ("test.deadletter", "DeadLetter")}


def test_archive_consumes_uploads_and_verdicts_and_produces_archived_files(doc: dict[str, Any]) -> None:
    assert events_of(doc, "archive", "receive") == {("test.reception", "file.uploaded"),
                                                    ("test.reception", "file.qc_passed")}
    assert events_of(doc, "archive", "send") == {("test.reception", "file.archived"),
                                                 ("test.deadletter", "DeadLetter")}


def test_the_document_is_asyncapi_3_without_addresses_and_its_references_resolve(doc: dict[str, Any]) -> None:
    assert doc["asyncapi"] == "3.0.0" and doc["info"]["title"] == "genomebus event bus"
    assert "servers" not in doc
    for ref in refs_in(doc):
        resolve(doc, ref.replace("%5B", "[").replace("%5D", "]"))
