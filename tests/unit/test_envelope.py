"""The envelope: the only way events become bytes and back."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from genomebus.schemas.envelope import Envelope, EventDecodeError, decode, derived_id, encode, new_envelope
from genomebus.schemas.reception import DatasetRegistered

SOURCE = "urn:genomebus:node:FI"


def a_dataset(**overrides: Any) -> DatasetRegistered:
    fields: dict[str, Any] = {
        "dataset_id": "GDI-FI-DATASET-001",
        "title": "Finnish rare disease exomes",
        "data_use": ("DUO:0000042",),
        "keywords": ("exome", "rare disease"),
        "landing_page": "https://example.org/datasets/1",
    }
    return DatasetRegistered(**{**fields, **overrides})


def an_envelope(**overrides: Any) -> Envelope[DatasetRegistered]:
    return new_envelope(a_dataset(), source=SOURCE, actor="steward-1", **overrides)


def raw(envelope: Envelope[Any], **changes: Any) -> bytes:
    """``envelope`` encoded, with top-level keys replaced (``None`` removes the key)."""
    obj = json.loads(encode(envelope))
    for key, value in changes.items():
        if value is None:
            obj.pop(key, None)
        else:
            obj[key] = value
    return json.dumps(obj).encode()


def test_encode_decode_round_trip() -> None:
    sent = an_envelope()

    received = decode(encode(sent))

    assert received == sent
    assert isinstance(received.data, DatasetRegistered)
    assert str(received.data.landing_page) == "https://example.org/datasets/1"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{not json", "not_json"),
        (b"\xff\xfe\x00", "not_json"),
        (b'["dataset.registered"]', "not_an_object"),
        (b'"dataset.registered"', "not_an_object"),
        (b'{"type": "dataset.unheard_of", "schema_version": 1, "data": {}}', "unknown_type"),
        (b'{"schema_version": 1, "data": {}}', "unknown_type"),
    ],
)
def test_decode_rejects_bytes_that_are_not_a_catalogued_event(value: bytes, reason: str) -> None:
    with pytest.raises(EventDecodeError) as caught:
        decode(value)

    assert caught.value.reason == reason


@pytest.mark.parametrize("version", [0, 2, "1", True, None], ids=["zero", "newer", "string", "bool", "missing"])
def test_decode_rejects_a_version_it_cannot_read(version: Any) -> None:
    with pytest.raises(EventDecodeError) as caught:
        decode(raw(an_envelope(), schema_version=version))

    assert caught.value.reason == "unsupported_version"


def test_decode_reports_an_invalid_event_with_the_failing_field() -> None:
    envelope = json.loads(encode(an_envelope()))
    envelope["data"]["dataset_id"] = "not-a-pid"

    with pytest.raises(EventDecodeError) as caught:
        decode(json.dumps(envelope).encode())

    assert caught.value.reason == "invalid_event"
    assert "data.dataset_id" in caught.value.message


def test_decode_rejects_an_envelope_missing_its_actor() -> None:
    with pytest.raises(EventDecodeError) as caught:
        decode(raw(an_envelope(), actor=None))

    assert caught.value.reason == "invalid_event"
    assert "actor" in caught.value.message


def test_envelope_type_must_match_the_payload_type() -> None:
    good = an_envelope()

    with pytest.raises(ValidationError, match="differs from data type"):
        Envelope[DatasetRegistered](**{**good.model_dump(), "type": "dataset.released"})


def test_decode_rejects_a_payload_of_another_type_than_the_envelope() -> None:
    envelope = json.loads(encode(an_envelope()))
    envelope["data"]["type"] = "dataset.released"

    with pytest.raises(EventDecodeError) as caught:
        decode(json.dumps(envelope).encode())

    assert caught.value.reason == "invalid_event"


def test_envelope_schema_version_must_be_the_models() -> None:
    good = an_envelope()

    with pytest.raises(ValidationError, match="schema_version 2 is not the model's 1"):
        Envelope[DatasetRegistered](**{**good.model_dump(), "schema_version": 2})


def test_derived_id_is_deterministic_and_distinct_per_purpose_and_cause() -> None:
    cause, other_cause = uuid.uuid4(), uuid.uuid4()

    assert derived_id(cause, "dataset.released") == derived_id(cause, "dataset.released")
    assert derived_id(cause, "dataset.released") != derived_id(cause, "file.received")
    assert derived_id(cause, "dataset.released") != derived_id(other_cause, "dataset.released")


def test_a_derived_event_inherits_correlation_and_records_its_cause() -> None:
    cause = an_envelope()

    effect = new_envelope(a_dataset(dataset_id="GDI-FI-DATASET-002"), source=SOURCE, actor="worker", cause=cause)
    redelivered = new_envelope(a_dataset(dataset_id="GDI-FI-DATASET-002"), source=SOURCE, actor="worker", cause=cause)

    assert effect.correlation_id == cause.correlation_id
    assert effect.causation_id == cause.id
    assert effect.id == derived_id(cause.id, "dataset.registered")
    assert redelivered.id == effect.id


def test_a_first_event_starts_its_own_correlation() -> None:
    envelope = an_envelope()

    assert envelope.correlation_id == envelope.id
    assert envelope.causation_id is None


def test_subject_defaults_to_the_dataset_id() -> None:
    assert an_envelope().subject == "GDI-FI-DATASET-001"
    assert an_envelope(subject="GDI-FI-DATASET-009").subject == "GDI-FI-DATASET-009"


def test_envelope_and_payload_are_frozen() -> None:
    envelope = an_envelope()

    with pytest.raises(ValidationError, match="frozen"):
        envelope.actor = "someone-else"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        envelope.data.title = "rewritten"  # type: ignore[misc]


def test_unknown_fields_are_rejected_in_envelope_and_payload() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        a_dataset(owner="someone")
    with pytest.raises(EventDecodeError) as caught:
        decode(raw(an_envelope(), priority="high"))
    assert caught.value.reason == "invalid_event"
    assert "priority" in caught.value.message


def test_naive_time_is_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        an_envelope(time=datetime(2025, 1, 1, 12, 0))  # noqa: DTZ001 - the point of the test

    assert an_envelope(time=datetime(2025, 1, 1, 12, 0, tzinfo=UTC)).time.tzinfo is not None


@pytest.mark.parametrize("dataset_id", ["FI-DATASET-001", "GDI-fi-DATASET-001", "GDI-FIN-DATASET-001",
                                        "XYZ-FI-DATASET-001", "GDI-FI-DATASET-", "GDI-FI-DATASET-001 "])
def test_bad_1mg_pid_is_rejected(dataset_id: str) -> None:
    with pytest.raises(ValidationError, match="dataset_id"):
        a_dataset(dataset_id=dataset_id)


@pytest.mark.parametrize("code", ["DUO:42", "duo:0000042", "DUO_0000042", "DUO:00000420", "MONDO:0000042"])
def test_bad_duo_code_is_rejected(code: str) -> None:
    with pytest.raises(ValidationError, match="data_use"):
        a_dataset(data_use=(code,))


def test_a_dataset_needs_at_least_one_data_use_term() -> None:
    with pytest.raises(ValidationError, match="data_use"):
        a_dataset(data_use=())
