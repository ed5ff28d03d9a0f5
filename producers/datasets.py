"""Dataset lifecycle for data stewards: register, update, release, withdraw, each as a command.

Every function publishes one command on ``genomebus.reception.commands`` and
returns the reception decider's answer (``CommandOutcome``): the steward's
machine never reads the node's database and never decides. A release is
accepted only when every file is archived; a rejection names each file that
is missing and why (see ``genomebus.consumers.reception_decider.decide``). A
registration or update is never refused for incomplete catalogue metadata: the
outcome's ``warnings`` name each GDI / HealthDCAT-AP property the description
lacks (``MetadataWarning``: ``property``, ``field``, ``message``), and
``metadata_warnings`` gives the same list before anything is sent.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from genomebus.infra.kafka import Publisher
from genomebus.infra.settings import Settings
from genomebus.producers.commands import CommandOutcome, send_command
from genomebus.schemas import duo
from genomebus.schemas.healthdcat import missing_metadata
from genomebus.schemas.reception import (
    DatasetDescription,
    DatasetRegisterRequested,
    DatasetReleaseRequested,
    DatasetUpdateRequested,
    DatasetWithdrawRequested,
    MetadataWarning,
)

DescribeCommand = DatasetRegisterRequested | DatasetUpdateRequested


class InvalidDataset(ValueError):
    """The command cannot be published; ``errors`` has one line per field."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def field_errors(exc: ValidationError) -> list[str]:
    """One ``path.to.field: message`` line per problem, in words a steward can act on."""
    errors = exc.errors()
    bad_terms = any(e["loc"][:1] == ("data_use",) and len(e["loc"]) > 1 for e in errors)
    # A list of terms that are all wrong is also "too short" once they are dropped: say only what is wrong.
    errors = [e for e in errors if not (bad_terms and e["loc"] == ("data_use",) and e["type"] == "too_short")]
    return [f"{'.'.join(map(str, e['loc'])) or 'input'}: {_plain(e)}" for e in errors]


def _plain(error: Any) -> str:
    if error["type"] == "string_pattern_mismatch" and error["loc"][:1] == ("data_use",):
        return f"{error['input']!r} is not a DUO term (DUO:0000042 is the form)"
    if error["type"] == "string_pattern_mismatch" and error["loc"][:1] == ("dataset_id",):
        return f"{error['input']!r} is not a 1+MG dataset id (GDI-FI-DATASET-001 is the form)"
    if error["type"] == "too_short" and error["loc"][:1] == ("data_use",):
        return "at least one DUO data-use term is needed (e.g. --duo DUO:0000042)"
    if error["type"] == "string_pattern_mismatch" and error["loc"][:1] == ("reason",):
        return "must say why, in words (it is blank)"
    if error["type"] == "missing":
        return "required"
    return str(error["msg"])


def describe_dataset(*, command: type[DescribeCommand] = DatasetRegisterRequested, **fields: object
                     ) -> DescribeCommand:
    """Build the register (or update) command, or raise ``InvalidDataset`` naming each bad field."""
    return build_command(command, **fields)


def build_command(command: type[Any], **fields: object) -> Any:
    """Any dataset command from its fields, or ``InvalidDataset`` naming each bad field (and unknown DUO terms)."""
    try:
        built = command(**fields)
    except ValidationError as exc:
        raise InvalidDataset(field_errors(exc)) from exc
    unknown = [f"data_use.{n}: {t!r} is not a term of DUO {duo.DUO_VERSION}"
               for n, t in enumerate(getattr(built, "data_use", ())) if not duo.is_known(t)]
    if unknown:
        raise InvalidDataset(unknown)
    return built


def metadata_warnings(dataset: DatasetDescription) -> tuple[MetadataWarning, ...]:
    """The catalogue metadata ``dataset`` lacks, as the reception decider will say it (nothing is sent)."""
    return missing_metadata(dataset)


async def register_dataset(settings: Settings, dataset: DescribeCommand, *, actor: str,
                           publisher: Publisher | None = None, timeout: float | None = None) -> CommandOutcome:
    """Ask for the dataset to be registered (or, given an update command, for its description to change).

    Accepted, the outcome's ``warnings`` are the fact's: the catalogue metadata the description lacks.
    """
    return await send_command(settings, dataset, actor=actor, publisher=publisher, timeout=timeout)


async def release_dataset(settings: Settings, dataset_id: str, *, actor: str,
                          publisher: Publisher | None = None, timeout: float | None = None) -> CommandOutcome:
    """Ask for the release; rejected (with each file that is not archived) unless every file is archived."""
    command = build_command(DatasetReleaseRequested, dataset_id=dataset_id)
    return await send_command(settings, command, actor=actor, publisher=publisher, timeout=timeout)


async def withdraw_dataset(settings: Settings, dataset_id: str, *, reason: str, actor: str,
                           publisher: Publisher | None = None, timeout: float | None = None) -> CommandOutcome:
    """Ask for the withdrawal: the gateway stops serving the dataset; its events stay."""
    command = build_command(DatasetWithdrawRequested, dataset_id=dataset_id, reason=reason)
    return await send_command(settings, command, actor=actor, publisher=publisher, timeout=timeout)

