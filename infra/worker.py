"""The runner every event-handling worker shares: one consumer group, explicit outcomes.

For each record, in partition order:

- bytes that are not a valid event → dead-letter topic (reason, error, original bytes), go on;
- an event type the worker does not handle → skip;
- the handler returns the events to publish → publish them, then commit the offset;
- the handler returns an ``Outcome`` → publish its events, then await its ``after_publish``
  (a side effect that must only happen once the events are on the bus, such as removing
  the inbox copy of an archived file), then commit the offset;
- a transient fault (network, database, object store, ``Transient``) → retry with backoff;
- any other exception → dead-letter topic with reason ``handler_failed``, go on.

Handlers derive their output ids from the cause (``new_envelope(..., cause=event)``),
so a redelivery after a crash publishes the same events again, which every
projection recognises. Side effects must check before acting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata, TopicPartition
from botocore.exceptions import BotoCoreError

from genomebus.infra import kafka, telemetry
from genomebus.infra.projection import TRANSIENT_ERRORS, Backoff
from genomebus.infra.settings import Settings
from genomebus.schemas.envelope import Envelope, EventDecodeError, decode

log = logging.getLogger("genomebus.worker")


class Transient(Exception):
    """Raised by a handler when the same event should be tried again later."""


@dataclass
class WorkerContext:
    """What a handler may use: settings, the publisher, and resources opened by the worker's main."""

    settings: Settings
    publisher: kafka.Publisher
    resources: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What a handler may return instead of a list: events, then an action once they are published.

    ``after_publish`` runs after every event is acknowledged by the broker and before the
    offset is committed, so a crash in between redelivers the input: the handler runs
    again, publishes the same events (same derived ids) and ``after_publish`` runs again.
    It must therefore be idempotent. A failure in it is treated like a handler failure.
    """

    events: Sequence[Envelope[Any]] = ()
    after_publish: Callable[[], Awaitable[None]] | None = None


Handler = Callable[[Envelope[Any], WorkerContext], Awaitable[Sequence[Envelope[Any]] | Outcome]]
RETRYABLE = (*TRANSIENT_ERRORS, Transient, BotoCoreError)


@dataclass
class Worker:
    name: str
    contexts: tuple[str, ...]
    handlers: Mapping[str, Handler]
    processed: int = 0
    dead_lettered: int = 0

    @property
    def group_id(self) -> str:
        return f"genomebus-{self.name}"

    async def run(self, settings: Settings, stop: asyncio.Event, resources: dict[str, Any] | None = None) -> None:
        consumer = kafka.consumer(settings, *[settings.topic(c) for c in self.contexts], group_id=self.group_id,
                                  max_poll_records=50, max_poll_interval_ms=30 * 60 * 1000)
        async with kafka.Publisher(settings) as publisher:
            ctx = WorkerContext(settings, publisher, resources or {})
            await consumer.start()
            try:
                while not stop.is_set():
                    batch = await consumer.getmany(timeout_ms=500)
                    for tp, records in batch.items():
                        for record in records:
                            if stop.is_set():
                                return
                            await self.handle_record(record, ctx, stop)
                            await _commit(consumer, tp, record.offset + 1)
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()

    async def handle_record(self, record: ConsumerRecord[bytes, bytes], ctx: WorkerContext, stop: asyncio.Event) -> None:
        try:
            event = decode(record.value or b"")
        except EventDecodeError as exc:
            await self._dead_letter(ctx, record, exc.reason, exc)
            return
        handler = self.handlers.get(event.type)
        if handler is None:
            return
        backoff = Backoff(ctx.settings.consumer_retry_initial_s, ctx.settings.consumer_retry_max_s)
        parent = telemetry.context_from_headers(record.headers)
        while True:
            with telemetry.tracer().start_as_current_span(
                f"{self.name} {event.type}", context=parent, kind=telemetry.CONSUMER
            ) as span:
                span.set_attribute("cloudevents.event_id", str(event.id))
                span.set_attribute("cloudevents.event_subject", event.subject)
                try:
                    result = await handler(event, ctx)
                    outcome = result if isinstance(result, Outcome) else Outcome(tuple(result))
                    for output in outcome.events:
                        await ctx.publisher.publish(output)
                    if outcome.after_publish is not None:
                        await outcome.after_publish()
                    self.processed += 1
                    return
                except RETRYABLE as exc:
                    if stop.is_set():
                        raise
                    log.warning("%s: transient failure on %s %s, retrying: %r", self.name, event.type, event.id, exc)
                except Exception as exc:  # noqa: BLE001 - not retryable: park it where people look
                    log.exception("%s: %s %s failed", self.name, event.type, event.id)
                    await self._dead_letter(ctx, record, "handler_failed", exc)
                    return
            await backoff.wait()

    async def _dead_letter(self, ctx: WorkerContext, record: ConsumerRecord[bytes, bytes], reason: str,
                           error: BaseException) -> None:
        self.dead_lettered += 1
        await kafka.send_dead_letter(ctx.publisher, record, self.name, reason, error)


async def _commit(consumer: Any, tp: TopicPartition, offset: int) -> None:
    with contextlib.suppress(KafkaError):
        await consumer.commit({tp: OffsetAndMetadata(offset, "")})
