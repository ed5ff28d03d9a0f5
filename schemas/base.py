"""Base class of every event payload."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

PID_PATTERN = r"^(GOE|GDI)-[A-Z]{2}-[A-Z]+-[0-9]+$"
"""1+MG persistent identifier: prefix, country, object type, number."""


class EventModel(BaseModel):
    """A frozen event payload; the ``type`` literal discriminates it within its topic."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: ClassVar[int] = 1
    subject_field: ClassVar[str | None] = None
    """The field naming the aggregate (the Kafka key); default: the first ``*_id`` field."""
    context: ClassVar[str]
