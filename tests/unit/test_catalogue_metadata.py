"""Catalogue metadata at registration: the description's new fields, old events, the decider's warnings,
the gateway's and the SDK's view of them, and what `genomebus dataset register` prints."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from genomebus.cli import app
from genomebus.consumers.reception_decider import DatasetState, decide
from genomebus.infra.settings import Settings
from genomebus.producers.commands import CommandOutcome, wait_for_outcome
from genomebus.producers.datasets import describe_dataset, metadata_warnings
from genomebus.schemas.envelope import decode, encode, new_envelope
from genomebus.schemas.healthdcat import MANDATORY, PROFILE, missing_metadata
from genomebus.schemas.reception import (
    CATALOGUE_FIELDS,
    DatasetDescription,
    DatasetRegistered,
    DatasetRegisterRequested,
    DatasetUpdated,
    DatasetUpdateRequested,
    MetadataWarning,
)
from tests.unit.test_cli import running_node  # noqa: F401 - a fixture

DATASET = "GDI-FI-DATASET-001"
BARE = {"dataset_id": DATASET, "title": "Finnish trios", "data_use": ("DUO:0000042",)}
COMPLETE = {
    **BARE, "description": "Trios sequenced at FIMM", "publisher": "THL", "keywords": ("trio",),
    "creators": ({"name": "FIMM"},), "contact_point": {"name": "Helpdesk", "email": "help@example.org"},
    "hdab": {"name": "Findata"}, "applicable_legislation": ("http://data.europa.eu/eli/reg/2025/327/oj",),
    "themes": ("HEAL",), "health_categories": ("human_genomic",),
}


# -- the description -----------------------------------------------------------------------------------


def test_an_event_from_before_the_catalogue_still_decodes_with_empty_metadata():
    fact = new_envelope(DatasetRegistered(**BARE), source="urn:genomebus:node:FI", actor="steward-1")
    stored = json.loads(encode(fact))
    for name in (*CATALOGUE_FIELDS, "warnings"):
        del stored["data"][name]
    old = decode(json.dumps(stored).encode())
    assert isinstance(old.data, DatasetRegistered)
    assert old.data.warnings == () and old.data.creators == () and old.data.contact_point is None
    assert old.schema_version == fact.schema_version == 1


def test_the_catalogue_fields_are_the_descriptions_last_ones():
    names = list(DatasetDescription.model_fields)
    assert tuple(names[names.index("creators"):]) == CATALOGUE_FIELDS
    assert {p.field for p in PROFILE} <= set(names)


@pytest.mark.parametrize(("field", "value"), [
    ("contact_point", {"name": "Helpdesk", "email": "not an address"}),
    ("contact_point", {"name": " ", "email": "help@example.org"}),
    ("themes", ("HEALTH",)),
    ("health_categories", ("genomic",)),
    ("legal_basis", ("Consent",)),
    ("applicable_legislation", ("EHDS",)),
    ("creators", ({"name": ""},)),
])
def test_malformed_metadata_is_refused_before_anything_is_sent(field: str, value: Any):
    with pytest.raises(ValidationError):
        DatasetRegisterRequested(**{**BARE, field: value})


# -- the check and the decider -----------------------------------------------------------------------


def test_a_bare_registration_is_accepted_with_a_warning_per_missing_property():
    fact = decide(DatasetState(DATASET, None), DatasetRegisterRequested(**BARE), uuid.uuid4())
    assert isinstance(fact, DatasetRegistered)
    assert {w.property for w in fact.warnings if w.code == "metadata_incomplete"} == MANDATORY - {"dct:title"}
    assert {w.property for w in fact.warnings if w.code == "metadata_recommended"} == \
        {"dcat:contactPoint", "dcat:keyword", "healthdcatap:hdab"}
    contact = next(w for w in fact.warnings if w.field == "contact_point")
    assert contact.message.startswith("dcat:contactPoint (contact_point) is missing")


def test_a_complete_registration_has_no_warning():
    fact = decide(DatasetState(DATASET, None), DatasetRegisterRequested(**COMPLETE), uuid.uuid4())
    assert isinstance(fact, DatasetRegistered) and fact.warnings == ()
    assert fact.contact_point is not None and fact.contact_point.email == "help@example.org"


def test_an_update_warns_of_what_the_new_description_lacks():
    command = DatasetUpdateRequested(**{**COMPLETE, "creators": ()})
    fact = decide(DatasetState(DATASET, "released"), command, uuid.uuid4())
    assert isinstance(fact, DatasetUpdated)
    assert [(w.code, w.property, w.field) for w in fact.warnings] == [("metadata_incomplete", "dct:creator", "creators")]


def test_blank_text_counts_as_missing():
    blank = DatasetRegisterRequested(**{**COMPLETE, "description": "  ", "publisher": "", "title": " "})
    warned = {w.property for w in missing_metadata(blank)}
    assert warned == {"dct:description", "dct:publisher", "dct:title"}


def test_the_sdk_gives_the_same_warnings_before_sending():
    command = describe_dataset(**BARE)
    assert metadata_warnings(command) == missing_metadata(command)


# -- the outcome, as clients see it --------------------------------------------------------------------


def outcome_body(warnings: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "type": "dataset.register_requested", "status": "accepted",
            "outcome_type": "dataset.registered", "reasons": [], "warnings": warnings, "state": None}


async def test_the_sdk_returns_the_facts_warnings():
    warnings = [w.model_dump() for w in missing_metadata(DatasetDescription(**{k: v for k, v in BARE.items()
                                                                                if k != "dataset_id"}))]
    client = httpx.AsyncClient(base_url="http://gateway.test",
                               transport=httpx.MockTransport(lambda r: httpx.Response(200, json=outcome_body(warnings))))
    outcome = await wait_for_outcome(Settings(node_id="FI"), uuid.uuid4(), timeout=1, http=client)
    assert outcome.accepted
    assert [w.model_dump() for w in outcome.warnings] == warnings
    assert all(isinstance(w, MetadataWarning) for w in outcome.warnings)


def test_the_cli_prints_each_warning_and_what_to_do(running_node, monkeypatch):  # noqa: F811
    warnings = missing_metadata(DatasetDescription(**{k: v for k, v in BARE.items() if k != "dataset_id"}))

    async def accepted(settings: Any, dataset: Any, *, actor: str) -> CommandOutcome:
        return CommandOutcome(uuid.uuid4(), "dataset.register_requested", "accepted", "dataset.registered",
                              warnings=warnings)

    monkeypatch.setattr("genomebus.producers.datasets.register_dataset", accepted)
    result = CliRunner().invoke(app, ["dataset", "register", "--id", DATASET, "--title", "t", "--duo", "DUO:0000042",
                                      "--data-dir", str(running_node)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"dataset.registered {DATASET}"
    lines = result.stderr.splitlines()
    assert lines[:len(warnings)] == [f"warning: {w.message}" for w in warnings]
    assert "genomebus dataset update" in lines[-1] and len(lines) == len(warnings) + 1


def test_the_cli_says_nothing_more_for_a_complete_description(running_node, monkeypatch):  # noqa: F811
    async def accepted(settings: Any, dataset: Any, *, actor: str) -> CommandOutcome:
        return CommandOutcome(uuid.uuid4(), "dataset.update_requested", "accepted", "dataset.updated")

    monkeypatch.setattr("genomebus.producers.datasets.register_dataset", accepted)
    result = CliRunner().invoke(app, ["dataset", "update", "--id", DATASET, "--title", "t", "--duo", "DUO:0000042",
                                      "--data-dir", str(running_node)])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
