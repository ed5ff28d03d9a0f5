"""Dataset metadata files: every bad field named, references checked, flags over file values."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from genomebus.cli import app
from genomebus.producers.datasets import InvalidDataset
from genomebus.producers.metadata import check_references, describe_with_metadata, load_metadata

EXAMPLE = Path(__file__).resolve().parents[2] / "producers" / "examples" / "GDI-FI-DATASET-001.json"


@pytest.fixture
def example() -> dict[str, Any]:
    return load_metadata(EXAMPLE)


def errors_of(fields: dict[str, Any], **overrides: Any) -> list[str]:
    with pytest.raises(InvalidDataset) as caught:
        describe_with_metadata(fields, **overrides)
    return caught.value.errors


def changed(fields: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``fields`` with the dotted ``path`` (list indexes as numbers) set to ``value``."""
    fields = copy.deepcopy(fields)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    target: Any = fields
    for p in parents:
        target = target[p]
    target[last] = value
    return fields


def test_the_example_describes_a_cohort_with_its_individuals_and_samples(example):
    dataset = describe_with_metadata(example)
    assert dataset.dataset_id == "GDI-FI-DATASET-001"
    assert len(dataset.individuals) == len(dataset.biosamples) == 3
    assert check_references(dataset) == []
    phenotypes = {t.id: t.label for i in dataset.individuals for t in i.phenotypes}
    assert phenotypes["HP:0001250"] == "Seizure"
    assert {b.sample_type.id for b in dataset.biosamples if b.sample_type} <= {"UBERON:0000178", "UBERON:0001836"}


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("dataset_id", "FI-DATASET-1", "dataset_id: 'FI-DATASET-1' is not a 1+MG dataset id"),
        ("title", "", "title: String should have at least 1 character"),
        ("description", 7, "description: Input should be a valid string"),
        ("data_use", [], "data_use: at least one DUO data-use term is needed"),
        ("data_use", ["DUO:42"], "data_use.0: 'DUO:42' is not a DUO term"),
        ("keywords", "WGS", "keywords: Input should be a valid tuple"),
        ("publisher", ["THL"], "publisher: Input should be a valid string"),
        ("landing_page", "example.org/x", "landing_page: Input should be a valid URL"),
        ("access_rights", "open", "access_rights: Input should be 'controlled', 'restricted' or 'public'"),
        ("individuals", {"id": "x"}, "individuals: Input should be a valid tuple"),
        ("individuals.0.id", "FI EPM1 0001", "individuals.0.id: String should match pattern"),
        ("individuals.0.sex", "F", "individuals.0.sex: Input should be 'female', 'male', 'other' or 'unknown'"),
        ("individuals.0.phenotypes.0.id", "HP0001336", "individuals.0.phenotypes.0.id: String should match pattern"),
        ("individuals.1.phenotypes.1.label", 1250, "individuals.1.phenotypes.1.label: Input should be a valid string"),
        ("individuals.1.diseases.0", "OMIM:254800", "individuals.1.diseases.0: Input should be a valid dictionary"),
        ("individuals.0.name", "Matti Meikäläinen", "individuals.0.name: Extra inputs are not permitted"),
        ("biosamples.0.id", "", "biosamples.0.id: String should have at least 1 character"),
        ("biosamples.1.individual_id", None, "biosamples.1.individual_id: Input should be a valid string"),
        ("biosamples.2.sample_type.id", "saliva", "biosamples.2.sample_type.id: String should match pattern"),
        ("biosamples.0.collected", 2019, "biosamples.0.collected: Input should be a valid string"),
        ("colour", "blue", "colour: Extra inputs are not permitted"),
    ],
)
def test_each_invalid_field_is_named(example, path, value, expected):
    errors = errors_of(changed(example, path, value))
    assert any(line.startswith(expected) for line in errors), errors


def test_a_missing_required_field_is_named(example):
    del example["data_use"]
    assert errors_of(example) == ["data_use: required"]


def test_every_problem_is_reported_at_once(example):
    bad = changed(changed(example, "title", ""), "individuals.2.sex", "M")
    assert [line.split(":")[0] for line in errors_of(bad)] == ["title", "individuals.2.sex"]


def test_values_given_beside_the_file_override_it_and_absent_ones_do_not(example):
    dataset = describe_with_metadata(example, dataset_id="GDI-FI-DATASET-777", title="Renamed", description=None,
                                     data_use=("DUO:0000042",), keywords=None)
    assert (dataset.dataset_id, dataset.title, dataset.data_use) == ("GDI-FI-DATASET-777", "Renamed", ("DUO:0000042",))
    assert dataset.description == example["description"]
    assert dataset.keywords == tuple(example["keywords"])
    assert errors_of(example, title="") == ["title: String should have at least 1 character"]


def test_flags_alone_still_describe_a_dataset():
    dataset = describe_with_metadata({}, dataset_id="GDI-FI-DATASET-002", title="t", data_use=("DUO:0000042",))
    assert dataset.individuals == dataset.biosamples == ()


# -- references --------------------------------------------------------------------------------------


def test_a_biosample_of_an_unknown_individual_is_refused(example):
    bad = changed(example, "biosamples.1.individual_id", "FI-EPM1-0009")
    assert errors_of(bad) == ["biosamples.1.individual_id: 'FI-EPM1-0009' names no individual in this dataset"]


def test_ids_are_unique_among_individuals_and_among_biosamples(example):
    bad = changed(changed(example, "individuals.2.id", "FI-EPM1-0001"), "biosamples.2.id", "FI-EPM1-0001-B01")
    assert errors_of(bad) == [
        "individuals.2.id: 'FI-EPM1-0001' is already the id of individuals.0",
        "biosamples.2.id: 'FI-EPM1-0001-B01' is already the id of biosamples.0",
        "biosamples.2.individual_id: 'FI-EPM1-0003' names no individual in this dataset",
    ]


def test_an_individual_and_a_biosample_may_share_an_id(example):
    """They are different kinds of thing; only a clash within a kind is ambiguous."""
    fields = changed(example, "biosamples.0.id", "FI-EPM1-0001")
    assert check_references(describe_with_metadata(fields)) == []


def test_biosamples_without_individuals_are_all_unknown():
    problems = errors_of({"dataset_id": "GDI-FI-DATASET-003", "title": "t", "data_use": ["DUO:0000042"],
                          "biosamples": [{"id": "S1", "individual_id": "P1"}, {"id": "S2", "individual_id": "P2"}]})
    assert [p.split(":")[0] for p in problems] == ["biosamples.0.individual_id", "biosamples.1.individual_id"]


# -- the file --------------------------------------------------------------------------------------------


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(InvalidDataset, match="no such file"):
        load_metadata(tmp_path / "nope.json")


def test_a_file_that_is_not_json_says_where(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "title": "x",\n  oops\n}')
    with pytest.raises(InvalidDataset) as caught:
        load_metadata(path)
    assert caught.value.errors == [f"metadata: {path}: not JSON: Expecting property name enclosed in double quotes "
                                   f"at line 3 column 3"]


def test_a_json_array_is_not_a_dataset(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[]")
    with pytest.raises(InvalidDataset, match="expected a JSON object, got list"):
        load_metadata(path)


# -- the command: refusals happen before any connection ------------------------------------------


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("GENOMEBUS_DATA_DIR", str(tmp_path / "no-node"))  # no stack: a refusal must not need one
    return CliRunner()


def test_register_prints_each_invalid_field_and_exits_2(runner, example, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(changed(changed(example, "individuals.0.sex", "F"), "title", "")))
    result = runner.invoke(app, ["dataset", "register", "--metadata", str(path)])
    assert result.exit_code == 2, result.output
    stderr = " ".join(result.stderr.split())  # unwrap the terminal's line breaks
    assert "error: title: String should have at least 1 character" in stderr
    assert "error: individuals.0.sex: Input should be 'female', 'male', 'other' or 'unknown'" in stderr


def test_register_checks_references_too(runner, example, tmp_path):
    path = tmp_path / "dangling.json"
    path.write_text(json.dumps(changed(example, "biosamples.0.individual_id", "nobody")))
    result = runner.invoke(app, ["dataset", "register", "--metadata", str(path)])
    assert result.exit_code == 2, result.output
    assert "error: biosamples.0.individual_id: 'nobody' names no individual" in " ".join(result.stderr.split())


def test_register_without_metadata_or_flags_names_what_is_required(runner):
    result = runner.invoke(app, ["dataset", "register"])
    assert result.exit_code == 2
    for field in ("dataset_id", "title", "data_use"):
        assert f"error: {field}: required" in result.stderr


def test_a_duo_code_of_the_right_form_that_duo_does_not_have_is_refused_before_sending() -> None:
    from genomebus.producers.datasets import InvalidDataset, build_command
    from genomebus.schemas.reception import DatasetRegisterRequested

    with pytest.raises(InvalidDataset) as refused:
        build_command(DatasetRegisterRequested, dataset_id="GDI-FI-DATASET-1", title="t",
                      data_use=("DUO:0000042", "DUO:0000999"))
    assert refused.value.errors == ["data_use.1: 'DUO:0000999' is not a term of DUO 2021-02-23"]
