"""Upcasting: old events on the log are read in the current shape, or refused with a reason."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import pytest

from genomebus.schemas.base import EventModel
from genomebus.schemas.envelope import EventDecodeError, decode
from genomebus.schemas.upcasting import Raw, UpcastError, Upcasters


class SampleSequenced(EventModel):
    """Test-only event at version 3; never catalogued.

    v1 had ``sample``; v2 renamed it ``sample_id``; v3 added ``platform``.
    """

    context = "test"
    schema_version = 3
    type: Literal["sample.sequenced"] = "sample.sequenced"
    sample_id: str
    platform: str


def sample_upcasters() -> Upcasters:
    upcasters = Upcasters()

    @upcasters.register("sample.sequenced", 1)
    def rename_sample(data: Raw) -> Raw:
        data["sample_id"] = data.pop("sample")
        return data

    @upcasters.register("sample.sequenced", 2)
    def add_platform(data: Raw) -> Raw:
        return {**data, "platform": "unknown"}

    return upcasters


def stored(version: Any, data: Raw) -> Raw:
    return {"type": "sample.sequenced", "schema_version": version, "data": data}


def test_a_v1_event_is_lifted_through_every_step_to_the_current_version() -> None:
    original = stored(1, {"type": "sample.sequenced", "sample": "S-1"})

    lifted = sample_upcasters().upcast(original, SampleSequenced.schema_version)

    assert lifted["schema_version"] == 3
    event = SampleSequenced.model_validate(lifted["data"])
    assert (event.sample_id, event.platform) == ("S-1", "unknown")
    assert original["data"] == {"type": "sample.sequenced", "sample": "S-1"}, "the stored event must not change"


def test_a_v2_event_takes_only_the_remaining_step() -> None:
    lifted = sample_upcasters().upcast(stored(2, {"type": "sample.sequenced", "sample_id": "S-2"}), 3)

    assert lifted["data"] == {"type": "sample.sequenced", "sample_id": "S-2", "platform": "unknown"}


def test_a_current_event_passes_unchanged() -> None:
    data = {"type": "sample.sequenced", "sample_id": "S-3", "platform": "illumina"}

    assert Upcasters().upcast(stored(3, data), 3) == stored(3, data)


def test_a_missing_step_is_an_error() -> None:
    upcasters = Upcasters()
    upcasters.register("sample.sequenced", 1)(lambda data: {**data, "sample_id": data["sample"]})

    with pytest.raises(UpcastError, match="no upcaster for sample.sequenced from v2"):
        upcasters.upcast(stored(1, {"sample": "S-1"}), 3)


def test_an_event_newer_than_the_reader_is_an_error() -> None:
    with pytest.raises(UpcastError, match="newer than this reader"):
        sample_upcasters().upcast(stored(4, {"sample_id": "S-4"}), 3)


def test_registering_the_same_step_twice_is_an_error() -> None:
    upcasters = sample_upcasters()

    with pytest.raises(ValueError, match="already registered"):
        upcasters.register("sample.sequenced", 1)(lambda data: data)


@pytest.mark.parametrize("version", ["1", 1.0, None, True, 0, -1])
def test_a_version_that_is_not_a_positive_integer_is_an_error(version: Any) -> None:
    with pytest.raises(UpcastError, match="positive integer"):
        sample_upcasters().upcast(stored(version, {"sample": "S-1"}), 3)


# -- decode uses the registry it is given ----------------------------------------------------------


def registered_envelope(**changes: Any) -> bytes:
    event_id = uuid.uuid4()
    envelope = {
        "id": str(event_id), "type": "dataset.registered", "source": "urn:genomebus:node:FI",
        "subject": "GDI-FI-DATASET-001", "time": datetime(2025, 1, 1, tzinfo=UTC).isoformat(), "actor": "steward-1",
        "correlation_id": str(event_id), "schema_version": 1,
        "data": {"type": "dataset.registered", "dataset_id": "GDI-FI-DATASET-001", "title": "Exomes",
                 "data_use": ["DUO:0000042"]},
    }
    return json.dumps({**envelope, **changes}).encode()


def test_decode_refuses_a_version_newer_than_the_model() -> None:
    with pytest.raises(EventDecodeError) as caught:
        decode(registered_envelope(schema_version=2), upcasters=Upcasters())

    assert caught.value.reason == "unsupported_version"


class RecordingUpcasters(Upcasters):
    """Upcasters that note what they were asked to lift."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[Any, int]] = []

    def upcast(self, envelope: Raw, current_version: int) -> Raw:
        self.seen.append((envelope.get("type"), current_version))
        return super().upcast(envelope, current_version)


class RefusingUpcasters(Upcasters):
    def upcast(self, envelope: Raw, current_version: int) -> Raw:
        raise UpcastError("this registry reads nothing")


def test_decode_uses_the_registry_it_is_given() -> None:
    recording = RecordingUpcasters()

    event = decode(registered_envelope(), upcasters=recording)

    assert event.type == "dataset.registered"
    assert recording.seen == [("dataset.registered", 1)]
    with pytest.raises(EventDecodeError, match="this registry reads nothing") as caught:
        decode(registered_envelope(), upcasters=RefusingUpcasters())
    assert caught.value.reason == "unsupported_version"
