"""Dataset registration: validate the steward's description, publish ``dataset.registered``."""

from __future__ import annotations

from pydantic import ValidationError

from infra.kafka import Published, Publisher
from infra.settings import Settings
from schemas.envelope import new_envelope
from schemas.reception import DatasetRegistered


class InvalidDataset(ValueError):
    """The description cannot be published; ``errors`` has one line per field."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def describe_dataset(**fields: object) -> DatasetRegistered:
    """Build the event payload or raise ``InvalidDataset`` naming each bad field."""
    try:
        return DatasetRegistered(**fields)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise InvalidDataset([f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]) from exc


async def register_dataset(settings: Settings, dataset: DatasetRegistered, *, actor: str,
                           publisher: Publisher | None = None) -> Published:
    """Publish ``dataset.registered``; returns where it landed, for read-your-writes."""
    envelope = new_envelope(dataset, source=settings.source, actor=actor)
    if publisher is not None:
        return await publisher.publish(envelope)
    async with Publisher(settings) as own:
        return await own.publish(envelope)
