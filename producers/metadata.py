"""Dataset metadata files: the JSON a steward writes to describe a dataset, its individuals and biosamples.

``load_metadata`` reads the file into the fields of a dataset description;
``check_references`` finds what the schema cannot see field by field: a
biosample naming an individual that is not in the dataset, or an id used twice.
Both report one line per problem, in the ``path.to.field: message`` form the
CLI prints, and raise or return before anything is published.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from genomebus.producers.datasets import DescribeCommand, InvalidDataset, describe_dataset
from genomebus.schemas.reception import DatasetDescription, DatasetRegisterRequested


def load_metadata(path: Path | str) -> dict[str, Any]:
    """The JSON object in ``path``, or ``InvalidDataset`` saying why it cannot be one."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InvalidDataset([f"metadata: {path}: no such file"]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidDataset([f"metadata: {path}: cannot read: {exc}"]) from exc
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidDataset([f"metadata: {path}: not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"]) \
            from exc
    if not isinstance(fields, dict):
        raise InvalidDataset([f"metadata: {path}: expected a JSON object, got {type(fields).__name__}"])
    return fields


def describe_with_metadata(metadata: dict[str, Any], *, command: type[DescribeCommand] = DatasetRegisterRequested,
                           **overrides: Any) -> DescribeCommand:
    """The dataset a metadata file and command-line values describe together (a value given wins), checked whole."""
    fields = {**metadata, **{name: value for name, value in overrides.items() if value is not None}}
    dataset = describe_dataset(command=command, **fields)
    problems = check_references(dataset)
    if problems:
        raise InvalidDataset(problems)
    return dataset


def check_references(dataset: DatasetDescription) -> list[str]:
    """Each individual and biosample id once, and each biosample's individual in the dataset."""
    problems = [*_duplicates("individuals", (i.id for i in dataset.individuals)),
                *_duplicates("biosamples", (b.id for b in dataset.biosamples))]
    individuals = {i.id for i in dataset.individuals}
    problems += [f"biosamples.{n}.individual_id: {b.individual_id!r} names no individual in this dataset"
                 for n, b in enumerate(dataset.biosamples) if b.individual_id not in individuals]
    return problems


def _duplicates(field: str, ids: Iterable[str]) -> list[str]:
    first: dict[str, int] = {}
    problems = []
    for n, id_ in enumerate(ids):
        if id_ in first:
            problems.append(f"{field}.{n}.id: {id_!r} is already the id of {field}.{first[id_]}")
        else:
            first[id_] = n
    return problems
