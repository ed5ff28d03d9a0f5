"""Workers on faststream: one consumer group per worker, handlers typed by their event, explicit outcomes.

How to declare a worker (see ``consumers/qc.py``)::

    def build(settings: Settings, *, name: str = "qc", resources: Resources = open_resources) -> Worker:
        worker = Worker(name, settings, resources=resources)
        worker.handle(on_uploaded, produces=(FileQcPassed, FileQcFailed))
        return worker

    async def on_uploaded(event: Envelope[FileUploaded], settings: WorkerSettings,
                          store: Any = Context("s3")) -> list[Envelope[Any]]: ...

- **Typed handlers.** The first parameter's annotation, ``Envelope[SomeEvent]``, says what the
  handler takes: its topic (the event's context) and its ``type``. One faststream subscriber per
  topic (group ``genomebus-<name>``, from ``earliest``), one handler per event type on it; other
  types on that topic are skipped. Further parameters are injected: ``WorkerSettings``,
  ``InputRecord`` (the Kafka record, for its position) and the
  resources that ``resources(settings)`` (an async context manager yielding a dict, entered in
  the app's lifespan) provides, by name with ``Context("s3")``.
- **Outputs** are declared with ``produces``: a faststream publisher per output event type, so
  the AsyncAPI document says what each worker sends. A handler returns the events to publish,
  or an ``Outcome(events, after_publish)``; publishing an undeclared type is a handler failure.
  Events are sent like ``infra.kafka.Publisher.send``: checked by ``decode``, keyed by subject,
  with ``kafka.event_headers`` (content type, ``ce_id``, ``ce_type``, ``correlation_id``, trace).

For each record, in partition order (``_Outcomes``, a faststream middleware, does this):

- bytes that are not a valid event → dead-letter topic (``EventDecodeError.reason``, the error,
  the original bytes), commit, go on;
- an event type the worker does not handle → commit, go on;
- the handler returns events → publish them (each acknowledged by the broker), then commit;
- the handler returns an ``Outcome`` → publish its events, then await ``after_publish``
  (a side effect that must only happen once the events are on the bus, such as removing
  the inbox copy of an archived file), then commit;
- an error known to be transient (``TRANSIENT``: ``Transient``, connection errors and timeouts
  of the network, PostgreSQL, Kafka and the object store) → the handler runs again after a
  backoff (``consumer_retry_initial_s`` doubling to ``consumer_retry_max_s``); after
  ``consumer_retry_max_attempts`` attempts or ``consumer_retry_max_seconds`` → dead-letter
  topic with reason ``retries_exhausted`` (``genomebus status`` counts them), commit, go on;
- any other exception → dead-letter topic with reason ``handler_failed``, commit, go on;
- the worker stopping, or the dead-letter topic unreachable → no commit: the record comes again.

Handlers derive their output ids from the cause (``new_envelope(..., cause=event)``), so a
redelivery after a crash publishes the same events again, which every projection recognises.
Side effects must check before acting. Tests run a worker with ``faststream.kafka.TestKafkaBroker``
(see ``tests/unit/test_worker.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import typing
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import aiohttp
import asyncpg
from faststream import Context, FastStream
from faststream.exceptions import SubscriberNotFound
from faststream.kafka import KafkaBroker
from faststream.kafka.publisher.usecase import DefaultPublisher
from faststream.message import StreamMessage
from faststream.middlewares import AckPolicy, BaseMiddleware

from genomebus.infra import kafka, telemetry
from genomebus.infra.faults import TRANSIENT, Transient
from genomebus.infra.projection import Backoff
from genomebus.infra.settings import Settings
from genomebus.schemas.base import EventModel
from genomebus.schemas.deadletter import DeadLetter
from genomebus.schemas.envelope import Envelope, EventDecodeError, decode, encode
from genomebus.schemas.topics import DEAD_LETTER, topic_for

log = logging.getLogger("genomebus.worker")


WorkerSettings = Annotated[Settings, Context("settings")]
"""A handler parameter receiving the worker's settings."""

InputRecord = Annotated[Any, Context("message.raw_message")]
"""A handler parameter receiving the Kafka record being handled (topic, partition, offset, headers)."""

Resources = Callable[[Settings], contextlib.AbstractAsyncContextManager[Mapping[str, Any]]]
"""Opens a worker's resources (clients, pools) for its lifetime; handlers get them by name."""


def scratch_dir(settings: Settings, name: str) -> Path | None:
    """Where a worker's temporary copies go: ``<data_dir>/tmp/<name>`` in the local profile (nothing of the
    node outside its data directory), the system temporary directory (None) otherwise."""
    if settings.profile != "local":
        return None
    path = settings.data_dir / "tmp" / name
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.asynccontextmanager
async def no_resources(settings: Settings) -> AsyncIterator[Mapping[str, Any]]:
    yield {}


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


Handler = Callable[..., Awaitable[Sequence[Envelope[Any]] | Outcome]]


def event_model(handler: Handler) -> type[EventModel]:
    """The event a handler takes: ``X`` of its first parameter's ``Envelope[X]`` annotation."""
    hints = typing.get_type_hints(handler)
    first = next(iter(hints.values()), None)
    args = getattr(first, "__pydantic_generic_metadata__", {}).get("args", ())
    if typing.get_origin(first) is not None or not args or not issubclass(first, Envelope):
        raise TypeError(f"{handler.__name__}: the first parameter must be annotated Envelope[SomeEvent]")
    return args[0]


class Worker:
    """A worker's faststream broker and app, with the genomebus outcomes around its handlers."""

    def __init__(self, name: str, settings: Settings, *, resources: Resources = no_resources,
                 description: str | None = None) -> None:
        self.name = name
        self.settings = settings
        self.processed = 0
        self.dead_lettered = 0
        self._resources = resources
        self._stopping = False
        self._subscribers: dict[str, Any] = {}
        self._publishers: dict[str, DefaultPublisher] = {}
        self.handles: dict[str, type[EventModel]] = {}
        self.produces: dict[str, type[EventModel]] = {}
        self.broker = KafkaBroker(
            # Address and TLS/SASL are set by ``run`` from ``kafka.client_options``: building a worker
            # (for its AsyncAPI document, in tests) needs no running stack.
            settings.kafka_bootstrap_servers or "localhost",
            acks="all",
            enable_idempotence=settings.kafka_enable_idempotence,  # Tansu has no InitProducerId
            linger_ms=5,
            max_batch_size=256 * 1024,
            request_timeout_ms=30000,
            middlewares=[functools.partial(_Outcomes, worker=self)],
            logger=log,
            log_level=logging.DEBUG,
            description=description,
        )
        self.dead_letters = self.broker.publisher(
            settings.topic(DEAD_LETTER), schema=DeadLetter, title=f"{name}:{DEAD_LETTER}",
            description=f"What {name} could not process, with the reason and the original bytes")
        self.app = FastStream(self.broker, lifespan=self._lifespan)

    @property
    def group_id(self) -> str:
        return f"genomebus-{self.name}"

    def handle(self, handler: Handler, *, produces: Sequence[type[EventModel]] = ()) -> Handler:
        """Subscribe ``handler`` to its event (from its signature); declare what it may publish."""
        model = event_model(handler)
        event_type = model.model_fields["type"].default
        topic = self.settings.topic(topic_for(model).context)
        if event_type in self.handles:
            raise ValueError(f"{self.name} already handles {event_type}")
        subscriber = self._subscribers.get(topic)
        if subscriber is None:
            subscriber = self._subscribers[topic] = self.broker.subscriber(
                topic, group_id=self.group_id, auto_offset_reset="earliest",  # Tansu's end offsets are wrong
                ack_policy=AckPolicy.NACK_ON_ERROR,  # commit after the outcome; an escaped error seeks back
                max_poll_interval_ms=30 * 60 * 1000,  # QC and archive of a large file take minutes
                fetch_max_wait_ms=self.settings.kafka_fetch_max_wait_ms,  # see Settings: the hop latency
                decoder=_decode, title=f"{self.name}:{topic}",
                description=f"{self.name} consumes {topic}")

        async def is_type(message: StreamMessage[Any]) -> bool:
            return (await message.decode()).type == event_type  # type: ignore[union-attr]

        subscriber(handler, filter=is_type)
        self.handles[event_type] = model
        for output in produces:
            output_type = output.model_fields["type"].default
            out_topic = self.settings.topic(topic_for(output).context)
            self.produces[output_type] = output
            if output_type not in self._publishers:
                self._publishers[output_type] = self.broker.publisher(
                    out_topic, schema=Envelope[output], title=f"{self.name}:{output_type}",  # type: ignore[valid-type]
                    description=f"{self.name} publishes {output_type} on {out_topic}")
        return handler

    @property
    def outputs(self) -> list[DefaultPublisher]:
        """The declared output publishers, one per output event type (what the AsyncAPI document lists).

        Under ``TestKafkaBroker`` a publisher's ``mock`` records what reaches its topic's subscribers,
        not what this worker sent: tests read the output topic with a subscriber of their own.
        """
        return list(self._publishers.values())

    async def publish(self, envelope: Envelope[Any]) -> None:
        """Send one event the way ``kafka.Publisher.send`` does, and wait for the broker's acknowledgement."""
        publisher = self._publishers.get(envelope.type)
        if publisher is None:
            raise RuntimeError(f"{self.name} does not declare {envelope.type} among its outputs")
        value = encode(envelope)
        decode(value)  # what a consumer will accept, checked before it leaves
        with telemetry.tracer().start_as_current_span(f"publish {envelope.type}", kind=telemetry.PRODUCER) as span:
            span.set_attribute("messaging.system", "kafka")
            span.set_attribute("cloudevents.event_id", str(envelope.id))
            headers = {k: v.decode() for k, v in kafka.event_headers(envelope)}
            await publisher.publish(value, key=envelope.subject.encode(), headers=headers,
                                    correlation_id=str(envelope.correlation_id))

    async def dead_letter(self, record: Any, reason: str, error: BaseException | str) -> None:
        self.dead_lettered += 1
        log.warning("%s: dead-lettering %s[%s]@%s: %s", self.name, record.topic, record.partition, record.offset,
                    reason)
        await self.dead_letters.publish(
            kafka.dead_letter(record, self.name, reason, error), key=record.key,
            headers={"dead_letter_reason": reason, "consumer": self.name})

    async def run(self, stop: asyncio.Event) -> None:
        """Run the app until ``stop`` is set: lifespan (resources), broker, subscribers."""
        # The very options every other client of ours uses (servers, TLS context, SASL), passed through.
        self.broker._connection_kwargs.update(kafka.client_options(self.settings))  # noqa: SLF001
        async with self.app.lifespan_context():
            await self.app.start()
            try:
                await stop.wait()
            finally:
                self._stopping = True
                await self.app.stop()

    @contextlib.asynccontextmanager
    async def _lifespan(self) -> AsyncIterator[None]:
        async with self._resources(self.settings) as resources:
            self.broker.context.set_global("settings", self.settings)
            for key, value in resources.items():
                self.broker.context.set_global(key, value)
            yield


async def _decode(message: StreamMessage[Any]) -> Envelope[Any]:
    return decode(message.body)  # upcasts; raises EventDecodeError with a reason code


class _Outcomes(BaseMiddleware):
    """Around every record: tracing, publishing outputs, after_publish, retries and dead letters."""

    def __init__(self, msg: Any, /, *, context: Any, worker: Worker) -> None:
        super().__init__(msg, context=context)
        self.worker = worker

    async def consume_scope(self, call_next: Callable[[Any], Awaitable[Any]], msg: StreamMessage[Any]) -> Any:
        worker, settings = self.worker, self.worker.settings
        event = await msg.decode()
        if not isinstance(event, Envelope):  # a subscriber not declared through ``Worker.handle``
            return await call_next(msg)
        record = msg.raw_message
        parent = telemetry.context_from_headers(record.headers)
        backoff = Backoff(settings.consumer_retry_initial_s, settings.consumer_retry_max_s)
        started, attempts = time.monotonic(), 0
        while True:
            attempts += 1
            with telemetry.tracer().start_as_current_span(
                f"{worker.name} {event.type}", context=parent, kind=telemetry.CONSUMER
            ) as span:
                span.set_attribute("cloudevents.event_id", str(event.id))
                span.set_attribute("cloudevents.event_subject", event.subject)
                try:
                    result = await call_next(msg)
                    outcome = result if isinstance(result, Outcome) else Outcome(tuple(result or ()))
                    for output in outcome.events:
                        await worker.publish(output)
                    if outcome.after_publish is not None:
                        await outcome.after_publish()
                    worker.processed += 1
                    return None
                except TRANSIENT as exc:
                    if worker._stopping:  # noqa: SLF001 - leave it uncommitted for the next run
                        raise
                    elapsed = time.monotonic() - started
                    if attempts >= settings.consumer_retry_max_attempts or elapsed >= settings.consumer_retry_max_seconds:
                        log.error("%s: %s %s still failing after %d attempts in %.0f s: %r", worker.name, event.type,
                                  event.id, attempts, elapsed, exc)
                        await worker.dead_letter(record, "retries_exhausted", exc)
                        return None
                    log.warning("%s: transient failure on %s %s, retrying: %r", worker.name, event.type, event.id,
                                exc)
                except Exception as exc:  # noqa: BLE001 - not retryable: park it where people look
                    log.exception("%s: %s %s failed", worker.name, event.type, event.id)
                    await worker.dead_letter(record, "handler_failed", exc)
                    return None
            await backoff.wait()

    async def after_processed(self, exc_type: type[BaseException] | None = None,
                              exc_val: BaseException | None = None, exc_tb: Any = None) -> bool | None:
        if isinstance(exc_val, SubscriberNotFound):
            return True  # an event type this worker does not handle: commit and go on
        if isinstance(exc_val, EventDecodeError):
            await self.worker.dead_letter(self.msg, exc_val.reason, exc_val)
            return True
        return False
