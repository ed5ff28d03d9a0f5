"""The exported contract: a JSON Schema per event and the dead-letter body (AsyncAPI: test_contract.py).

``jsonschema`` is not a dependency, so the schemas are checked structurally
against real encoded messages rather than run through a validator.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from typer.testing import CliRunner

from genomebus.cli import app
from genomebus.infra.kafka import dead_letter
from genomebus.infra.settings import Settings
from genomebus.schemas.envelope import encode, new_envelope
from genomebus.contract import export
from genomebus.schemas.reception import DatasetRegistered
from genomebus.schemas.topics import event_types

EVENT_TYPES = sorted(event_types())


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("GENOMEBUS_"):
            monkeypatch.delenv(name)


@pytest.fixture
def settings() -> Settings:
    return Settings(topic_prefix="test.", node_id="NO")


@pytest.fixture
def exported(tmp_path: Path, settings: Settings) -> Path:
    export(tmp_path / "contract", settings)
    return tmp_path / "contract"


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def resolve(document: dict[str, Any], ref: str) -> Any:
    """Follow a local JSON pointer such as ``#/components/schemas/X``."""
    assert ref.startswith("#/"), f"not a local reference: {ref}"
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def refs_in(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in refs_in(value)]
    if isinstance(node, list):
        return [r for item in node for r in refs_in(item)]
    return []


def assert_matches(schema: dict[str, Any], instance: dict[str, Any], root: dict[str, Any]) -> None:
    """The checks of an object schema that matter here: required keys present, no undeclared keys, consts."""
    if "$ref" in schema:
        schema = resolve(root, schema["$ref"])
    assert schema["type"] == "object"
    assert set(schema["required"]) <= set(instance), f"missing {set(schema['required']) - set(instance)}"
    if schema.get("additionalProperties") is False:
        assert set(instance) <= set(schema["properties"]), f"undeclared {set(instance) - set(schema['properties'])}"
    for key, value in instance.items():
        prop = schema["properties"].get(key, {})
        if "const" in prop:
            assert value == prop["const"], f"{key}: {value!r} is not {prop['const']!r}"


def a_registered_envelope() -> bytes:
    data = DatasetRegistered(dataset_id="GDI-NO-DATASET-7", title="Norwegian trios", data_use=("DUO:0000042",))
    return encode(new_envelope(data, source="urn:genomebus:node:NO", actor="steward-1"))


# -- JSON Schema per event -------------------------------------------------------------------------


def test_export_returns_every_file_it_wrote(tmp_path: Path, settings: Settings) -> None:
    written = export(tmp_path / "new" / "dir", settings)

    assert sorted(p.name for p in written) == sorted(
        [f"{t}.schema.json" for t in EVENT_TYPES] + ["deadletter.schema.json", "asyncapi.json"]
    )
    assert all(p.is_file() for p in written)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_event_type_has_a_draft_2020_12_schema_of_its_envelope(exported: Path, event_type: str) -> None:
    schema = load(exported / f"{event_type}.schema.json")

    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].startswith("urn:genomebus:schema:")
    assert schema["title"] == event_type
    assert {"id", "type", "source", "subject", "time", "data"} <= set(schema["required"])
    assert schema["properties"]["type"]["const"] == event_type
    payload = resolve(schema, schema["properties"]["data"]["$ref"])
    assert payload["properties"]["type"]["const"] == event_type
    assert all(ref.startswith("#/$defs/") for ref in refs_in(schema))


def test_the_event_schema_describes_a_real_encoded_envelope(exported: Path) -> None:
    envelope = json.loads(a_registered_envelope())
    schema = load(exported / "dataset.registered.schema.json")

    assert_matches(schema, envelope, schema)
    assert_matches(schema["properties"]["data"], envelope["data"], schema)


def test_the_event_schema_rejects_what_decode_rejects(exported: Path) -> None:
    schema = load(exported / "dataset.registered.schema.json")
    envelope = json.loads(a_registered_envelope())

    with pytest.raises(AssertionError, match="undeclared"):
        assert_matches(schema, {**envelope, "priority": "high"}, schema)
    with pytest.raises(AssertionError, match="is not"):
        assert_matches(schema, {**envelope, "type": "dataset.released"}, schema)


def test_the_dead_letter_schema_describes_what_the_dead_letter_writer_writes(exported: Path) -> None:
    record = ConsumerRecord(topic="test.reception", partition=2, offset=41, timestamp=0, timestamp_type=0,
                            key=b"GDI-NO-DATASET-7", value=b"\xff not json", checksum=None, serialized_key_size=16,
                            serialized_value_size=10, headers=[("ce_type", b"dataset.registered")])
    body = json.loads(dead_letter(record, "projector:datasets", "not_json", ValueError("bad bytes")))
    schema = load(exported / "deadletter.schema.json")

    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(body) == set(schema["properties"]) == set(schema["required"])
    assert_matches(schema, body, schema)
    assert body["headers"] == {"ce_type": "dataset.registered"}
    assert body["error"] == "ValueError: bad bytes"


# -- determinism and the CLI -----------------------------------------------------------------------


def test_exporting_twice_gives_identical_bytes(tmp_path: Path, settings: Settings) -> None:
    first = {p.name: p.read_bytes() for p in export(tmp_path / "first", settings)}
    second = {p.name: p.read_bytes() for p in export(tmp_path / "second", settings)}

    assert first == second


def test_genomebus_schemas_export_writes_the_contract(tmp_path: Path) -> None:
    target = tmp_path / "contract"

    result = CliRunner().invoke(app, ["schemas", "export", str(target)])

    assert result.exit_code == 0, result.output
    assert f"wrote {len(EVENT_TYPES) + 2} files" in result.output
    assert sorted(p.name for p in target.iterdir()) == sorted(
        [f"{t}.schema.json" for t in EVENT_TYPES] + ["asyncapi.json", "deadletter.schema.json"]
    )
    assert load(target / "asyncapi.json")["channels"]["qc:genomebus.reception"]["address"] == "genomebus.reception"
