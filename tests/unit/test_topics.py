"""The topic catalogue: which topic each event lives on, and what each topic accepts."""

from __future__ import annotations

from collections import Counter

import pytest
from pydantic import ValidationError

from genomebus.schemas.reception import DatasetRegistered
from genomebus.schemas.topics import CATALOGUE, DEAD_LETTER, event_class, event_types, topic_for

REGISTERED = {
    "type": "dataset.registered",
    "dataset_id": "GDI-FI-DATASET-001",
    "title": "Finnish rare disease exomes",
    "data_use": ["DUO:0000042"],
}


def test_every_event_type_is_in_exactly_one_topic() -> None:
    placements = Counter(cls.model_fields["type"].default for topic in CATALOGUE.values() for cls in topic.events)

    assert placements, "the catalogue declares no events"
    assert set(placements) == set(event_types())
    assert {t: n for t, n in placements.items() if n != 1} == {}


@pytest.mark.parametrize(("event_type", "cls"), sorted(event_types().items()))
def test_event_context_matches_its_topic(event_type: str, cls: type) -> None:
    topic = topic_for(cls)

    assert cls in topic.events
    assert topic.context == cls.context
    assert CATALOGUE[cls.context] is topic
    assert event_class(event_type) is cls


def test_topic_for_an_event_instance() -> None:
    event = DatasetRegistered.model_validate(REGISTERED)

    assert topic_for(event).context == "reception"


def test_event_class_answers_none_for_unknown_or_non_string_types() -> None:
    assert event_class("dataset.unheard_of") is None
    assert event_class(None) is None
    assert event_class(["dataset.registered"]) is None


def test_payload_adapter_validates_a_dataset_registered_dict() -> None:
    adapter = CATALOGUE["reception"].payload_adapter()

    event = adapter.validate_python(REGISTERED)

    assert isinstance(event, DatasetRegistered)
    assert event.data_use == ("DUO:0000042",)


def test_payload_adapter_refuses_a_payload_the_topic_does_not_carry() -> None:
    adapter = CATALOGUE["reception"].payload_adapter()

    with pytest.raises(ValidationError):
        adapter.validate_python({**REGISTERED, "type": "visa.issued"})


def test_payload_union_of_a_topic_without_events_is_none() -> None:
    assert CATALOGUE[DEAD_LETTER].payload_union() is None


def test_the_dead_letter_topic_exists_and_carries_no_events() -> None:
    assert DEAD_LETTER in CATALOGUE
    assert CATALOGUE[DEAD_LETTER].events == ()
