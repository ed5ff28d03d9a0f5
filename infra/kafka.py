"""Kafka clients: the one publisher, topic administration, the dead-letter writer, log reading.

Every producer and consumer is configured here so that the Tansu limits
(no idempotent producer, wrong ListOffsets answers) are handled in one place:
idempotence is a setting for Apache Kafka, consumers always start at
``earliest``, and end offsets are read from a fetch's high watermark.
"""

from __future__ import annotations

import asyncio
import base64
import time
import traceback
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.structs import ConsumerRecord, RecordMetadata, TopicPartition

from genomebus.infra import telemetry
from genomebus.infra.settings import Settings
from genomebus.schemas.deadletter import DeadLetter
from genomebus.schemas.envelope import Envelope, decode, encode
from genomebus.schemas.topics import CATALOGUE, DEAD_LETTER, topic_for


def client_options(settings: Settings) -> dict[str, Any]:
    """Connection and security options shared by every Kafka client."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        from aiokafka.helpers import create_ssl_context

        options["ssl_context"] = create_ssl_context(
            cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None,
            certfile=str(settings.kafka_ssl_certfile) if settings.kafka_ssl_certfile else None,
            keyfile=str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
        )
    if settings.kafka_security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = (settings.kafka_sasl_password.get_secret_value()
                                          if settings.kafka_sasl_password else None)
    return options


def admin(settings: Settings, **overrides: Any) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**{**client_options(settings), **overrides})


# Events are the source of truth: never deleted by age or size, never compacted (keys are aggregates).
TOPIC_CONFIG = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}


def producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    options: dict[str, Any] = {
        **client_options(settings),
        "acks": "all",
        "enable_idempotence": settings.kafka_enable_idempotence,
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "request_timeout_ms": 30000,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


def consumer(settings: Settings, *topics: str, group_id: str | None = None, **overrides: Any) -> AIOKafkaConsumer:
    options: dict[str, Any] = {
        **client_options(settings),
        "group_id": group_id,
        "auto_offset_reset": "earliest",  # Tansu's end offsets are wrong: never rely on "latest"
        "enable_auto_commit": False,
        "isolation_level": "read_uncommitted",
        "max_poll_records": settings.projector_batch_size,
        "fetch_max_wait_ms": settings.kafka_fetch_max_wait_ms,
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


@dataclass(frozen=True)
class Published:
    topic: str
    partition: int
    offset: int
    event_id: str


def event_headers(envelope: Envelope[Any]) -> list[tuple[str, bytes]]:
    """The Kafka headers of every event (also set by the workers' faststream publishers)."""
    return [
        ("content-type", b"application/cloudevents+json"),
        ("ce_id", str(envelope.id).encode()),
        ("ce_type", envelope.type.encode()),
        ("correlation_id", str(envelope.correlation_id).encode()),
        *telemetry.inject_headers(),
    ]


class Publisher:
    """The single way events reach the bus: validated, keyed by subject, traced."""

    def __init__(self, settings: Settings, kafka_producer: AIOKafkaProducer | None = None,
                 **producer_options: Any) -> None:
        self.settings = settings
        self._producer = kafka_producer or producer(settings, **producer_options)
        self._owned = kafka_producer is None

    async def __aenter__(self) -> Publisher:
        if self._owned:
            try:
                await self._producer.start()
            except BaseException:
                await self._producer.stop()  # a producer that failed to start still holds its client
                raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._owned:
            await self._producer.stop()

    async def send(self, envelope: Envelope[Any]) -> asyncio.Future[RecordMetadata]:
        """Queue one event; await the returned future for its position."""
        value = encode(envelope)
        decode(value)  # what a consumer will accept, checked before it leaves
        topic = self.settings.topic(topic_for(envelope.data).context)
        return await self._producer.send(topic, value=value, key=envelope.subject.encode(),
                                         headers=event_headers(envelope))

    async def publish(self, envelope: Envelope[Any]) -> Published:
        with telemetry.tracer().start_as_current_span(f"publish {envelope.type}", kind=telemetry.PRODUCER) as span:
            span.set_attribute("messaging.system", "kafka")
            span.set_attribute("cloudevents.event_id", str(envelope.id))
            span.set_attribute("cloudevents.event_subject", envelope.subject)
            meta = await (await self.send(envelope))
        return Published(meta.topic, meta.partition, meta.offset, str(envelope.id))

    async def publish_raw(self, topic: str, value: bytes, key: bytes | None = None,
                          headers: list[tuple[str, bytes]] | None = None) -> RecordMetadata:
        return await (await self._producer.send(topic, value=value, key=key, headers=headers or []))


# -- administration ------------------------------------------------------------------------


def topic_names(settings: Settings) -> list[str]:
    return [settings.topic(t) for t in CATALOGUE]


async def ensure_topics(settings: Settings) -> list[str]:
    """Create every catalogued topic that does not exist yet; return those created."""
    client = admin(settings)
    try:
        await client.start()
        existing = set(await client.list_topics())
        wanted = [t for t in topic_names(settings) if t not in existing]
        if wanted:
            try:
                await client.create_topics([
                    NewTopic(t, settings.topic_partitions, settings.topic_replication_factor,
                             topic_configs=TOPIC_CONFIG) for t in wanted
                ])
            except TopicAlreadyExistsError:
                pass
        return wanted
    finally:
        await client.close()


async def consumer_groups(settings: Settings) -> list[str]:
    client = admin(settings)
    try:
        await client.start()
        return sorted(g[0] for g in await client.list_consumer_groups())
    finally:
        await client.close()


async def partitions_of(c: AIOKafkaConsumer, topics: Iterable[str]) -> list[TopicPartition]:
    tps: list[TopicPartition] = []
    for topic in topics:
        parts = c.partitions_for_topic(topic)
        if parts is None:
            await c._client.force_metadata_update()  # noqa: SLF001 - metadata of unsubscribed topics
            parts = c.partitions_for_topic(topic) or set()
        tps.extend(TopicPartition(topic, p) for p in sorted(parts))
    return tps


async def end_offsets(settings: Settings, topics: Iterable[str], timeout: float = 5.0) -> dict[TopicPartition, int]:
    """Next offset of every partition, read from a fetch's high watermark.

    Tansu answers ListOffsets wrongly, but the high watermark in a fetch
    response is right, so fetch the last record of each partition.
    """
    # A fetch answers at once (not after fetch_max_wait_ms) even for an empty partition: its high watermark is all we need.
    c = consumer(settings, max_partition_fetch_bytes=1024, fetch_max_wait_ms=5)
    try:  # stopped on every path, a failed start included (else: "Unclosed AIOKafkaConsumer")
        await c.start()
        tps = await partitions_of(c, topics)
        if not tps:
            return {}
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        result: dict[TopicPartition, int] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(result) < len(tps):
            await c.getmany(timeout_ms=200, max_records=1)
            for tp in tps:
                hw = c.highwater(tp)
                if hw is not None:
                    result[tp] = hw
        for tp in tps:
            result.setdefault(tp, 0)  # no fetch answer in time: an empty partition
        return result
    finally:
        await c.stop()


async def read_log(settings: Settings, topics: Iterable[str], *, until: dict[TopicPartition, int] | None = None,
                   idle_timeout: float = 2.0) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topics`` from offset 0 up to ``until`` (default: the current end), in partition order."""
    topics = list(topics)
    until = until if until is not None else await end_offsets(settings, topics)
    pending = {tp: end for tp, end in until.items() if end > 0}
    if not pending:
        return
    c = consumer(settings, max_poll_records=5000, fetch_max_bytes=16 * 1024 * 1024)
    try:  # stopped on every path, a failed start included
        await c.start()
        c.assign(list(pending))
        await c.seek_to_beginning(*pending)
        last_progress = time.monotonic()
        while pending:
            batch = await c.getmany(*pending, timeout_ms=500)
            if batch:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > idle_timeout:
                break
            for tp, records in batch.items():
                end = pending.get(tp)
                if end is None:
                    continue
                for record in records:
                    if record.offset >= end:
                        break
                    yield record
                if records[-1].offset + 1 >= end:
                    pending.pop(tp, None)
                    c.pause(tp)
    finally:
        await c.stop()


# -- dead letters ---------------------------------------------------------------------------


def dead_letter(record: ConsumerRecord[bytes, bytes], consumer_name: str, reason: str, error: BaseException | str) -> bytes:
    """The dead-letter message: where it came from, why it failed, and the original bytes."""
    detail = error if isinstance(error, str) else "".join(traceback.format_exception_only(type(error), error)).strip()
    body = DeadLetter(
        consumer=consumer_name,
        reason=reason,
        error=detail,
        failed_at=datetime.now(UTC),
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key.decode(errors="replace") if record.key else None,
        headers={k: v.decode(errors="replace") for k, v in (record.headers or ())},
        original_base64=base64.b64encode(record.value or b"").decode(),
    )
    return body.model_dump_json().encode()


async def send_dead_letter(publisher: Publisher, record: ConsumerRecord[bytes, bytes], consumer_name: str,
                           reason: str, error: BaseException | str) -> None:
    await publisher.publish_raw(
        publisher.settings.topic(DEAD_LETTER), dead_letter(record, consumer_name, reason, error),
        key=record.key, headers=[("dead_letter_reason", reason.encode()), ("consumer", consumer_name.encode())],
    )
