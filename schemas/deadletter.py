"""The body of a dead-letter message: where a message came from, why it failed, and its original bytes.

``infra.kafka.dead_letter`` builds every body through this model, and the
exported ``deadletter.schema.json`` is generated from it, so the two agree.
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class DeadLetter(BaseModel):
    """A message a worker could not process, kept with the exception and the original bytes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    consumer: str = Field(description="The worker that gave up, e.g. projector:datasets")
    reason: str = Field(description="Machine-readable reason code, e.g. invalid_event")
    error: str = Field(description="The exception (type and message) or a human-readable explanation")
    failed_at: AwareDatetime
    topic: str = Field(description="Topic the failed message was read from")
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    key: str | None = Field(description="The original Kafka key, decoded as UTF-8 with replacement")
    headers: dict[str, str] = Field(description="The original Kafka headers, values decoded as UTF-8 with replacement")
    original_base64: str = Field(description="The original message value, base64-encoded",
                                 json_schema_extra={"contentEncoding": "base64"})
