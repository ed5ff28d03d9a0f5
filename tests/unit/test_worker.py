"""The worker layer on faststream, through ``TestKafkaBroker``: outcomes in the order they happen."""

from __future__ import annotations

import base64
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from faststream import Context
from faststream.kafka import TestKafkaBroker

from genomebus.infra.settings import Settings
from genomebus.infra.worker import Outcome, Transient, Worker, WorkerSettings
from genomebus.schemas.envelope import Envelope, encode, new_envelope
from genomebus.schemas.reception import FileArchived, FileQcPassed, FileUploaded

SOURCE = "urn:genomebus:node:FI"


def settings(**overrides: Any) -> Settings:
    return Settings(topic_prefix=f"t{uuid.uuid4().hex[:6]}.", consumer_retry_initial_s=0.001,
                    consumer_retry_max_s=0.002, **overrides)


def qc_passed() -> Envelope[FileQcPassed]:
    return new_envelope(FileQcPassed(file_id=uuid.uuid4(), dataset_id="GDI-FI-DATASET-001", format="VCF",
                                     metrics={}), source=SOURCE, actor="qc")


def archived(cause: Envelope[FileQcPassed]) -> Envelope[FileArchived]:
    sha = "a" * 64
    data = FileArchived(file_id=cause.data.file_id, dataset_id=cause.data.dataset_id, accession="GDI-FI-FILE-1",
                        drs_id="GDI-FI-FILE-1", format="VCF", archive_bucket="archive", archive_key=f"sha256/{sha}",
                        size=1, decrypted_sha256=sha, decrypted_md5="b" * 32, encrypted_size=2,
                        encrypted_sha256=sha, encrypted_md5="c" * 32)
    return new_envelope(data, source=SOURCE, actor="archive", cause=cause)


def resources(**values: Any) -> Any:
    @contextlib.asynccontextmanager
    async def opened(settings: Settings) -> AsyncIterator[Mapping[str, Any]]:
        yield values

    return opened


@contextlib.asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[Any]:
    """The worker's app in memory: its lifespan entered, its broker patched by ``TestKafkaBroker``.

    What it dead-lettered is kept in ``worker.letters`` (the publisher's mock ends with the test broker).
    """
    worker.letters = []  # type: ignore[attr-defined]
    async with worker.app.lifespan_context(), TestKafkaBroker(worker.broker) as broker:
        try:
            yield broker
        finally:
            worker.letters = [_body(c.args[0]) for c in worker.dead_letters.mock.call_args_list]  # type: ignore[attr-defined]


def _body(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else json.loads(value)


def dead_letters(worker: Worker) -> list[dict[str, Any]]:
    return worker.letters  # type: ignore[attr-defined,no-any-return]


async def test_outputs_are_published_keyed_with_headers_then_after_publish_then_commit() -> None:
    journal: list[str] = []
    worker = Worker("t", settings(), resources=resources(journal=journal))

    async def on_qc_passed(event: Envelope[FileQcPassed], journal: list[str] = Context("journal")) -> Outcome:
        async def remove_inbox_copy() -> None:
            journal.append(f"after publish: {published}")

        return Outcome([archived(event)], after_publish=remove_inbox_copy)

    worker.handle(on_qc_passed, produces=(FileArchived,))
    published: list[tuple[bytes, dict[str, str]]] = []

    @worker.broker.subscriber(worker.settings.topic("reception"), group_id="spy")
    async def spy(body: Any, message: Any = Context()) -> None:
        if _body(body)["type"] == "file.archived":
            published.append((message.raw_message.key, message.headers))

    event = qc_passed()
    async with running(worker) as broker:
        await broker.publish(encode(event), worker.settings.topic("reception"))

    [(key, headers)] = published
    assert key == str(event.data.file_id).encode()
    assert headers["ce_type"] == "file.archived" and headers["content-type"] == "application/cloudevents+json"
    assert headers["ce_id"] == str(archived(event).id)
    assert headers["correlation_id"] == str(event.correlation_id)
    assert journal == [f"after publish: {[(key, headers)]}"]
    assert worker.processed == 1 and worker.dead_lettered == 0


async def test_a_handler_gets_its_typed_event_and_settings_and_other_types_are_skipped() -> None:
    seen: list[Any] = []
    worker = Worker("t", settings())

    async def on_uploaded(event: Envelope[FileUploaded], settings: WorkerSettings) -> list[Envelope[Any]]:
        seen.append((type(event.data), settings))
        return []

    worker.handle(on_uploaded)
    async with running(worker) as broker:
        await broker.publish(encode(qc_passed()), worker.settings.topic("reception"))  # not ours: skipped

    assert seen == [] and worker.processed == 0 and dead_letters(worker) == []


async def test_undecodable_bytes_go_to_the_dead_letter_topic_with_the_decode_reason() -> None:
    worker = Worker("t", settings())

    async def on_qc_passed(event: Envelope[FileQcPassed]) -> list[Envelope[Any]]:
        raise AssertionError("never called")

    worker.handle(on_qc_passed)
    async with running(worker) as broker:
        await broker.publish(b"\xff not json", worker.settings.topic("reception"), key=b"k1")

    [letter] = dead_letters(worker)
    assert letter["reason"] == "not_json" and letter["consumer"] == "t" and letter["key"] == "k1"
    assert base64.b64decode(letter["original_base64"]) == b"\xff not json"
    assert worker.dead_lettered == 1


async def test_a_transient_error_is_retried_then_parked_as_retries_exhausted() -> None:
    attempts: list[int] = []
    worker = Worker("t", settings(consumer_retry_max_attempts=3))

    async def on_qc_passed(event: Envelope[FileQcPassed]) -> list[Envelope[Any]]:
        attempts.append(1)
        raise Transient("object store: SlowDown")

    worker.handle(on_qc_passed)
    async with running(worker) as broker:
        await broker.publish(encode(qc_passed()), worker.settings.topic("reception"))

    assert len(attempts) == 3
    [letter] = dead_letters(worker)
    assert letter["reason"] == "retries_exhausted" and "SlowDown" in letter["error"]


async def test_a_transient_error_that_heals_is_not_dead_lettered() -> None:
    attempts: list[int] = []
    worker = Worker("t", settings())

    async def on_qc_passed(event: Envelope[FileQcPassed]) -> list[Envelope[Any]]:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionResetError("peer reset")
        return []

    worker.handle(on_qc_passed)
    async with running(worker) as broker:
        await broker.publish(encode(qc_passed()), worker.settings.topic("reception"))

    assert len(attempts) == 3 and dead_letters(worker) == [] and worker.processed == 1


@pytest.mark.parametrize("error", [ValueError("bad metadata"), OSError("disk full")])
async def test_any_other_error_is_dead_lettered_at_once_as_handler_failed(error: Exception) -> None:
    attempts: list[int] = []
    worker = Worker("t", settings())

    async def on_qc_passed(event: Envelope[FileQcPassed]) -> list[Envelope[Any]]:
        attempts.append(1)
        raise error

    worker.handle(on_qc_passed)
    async with running(worker) as broker:
        await broker.publish(encode(qc_passed()), worker.settings.topic("reception"))

    assert len(attempts) == 1
    [letter] = dead_letters(worker)
    assert letter["reason"] == "handler_failed" and type(error).__name__ in letter["error"]


async def test_publishing_an_undeclared_event_is_a_handler_failure() -> None:
    worker = Worker("t", settings())

    async def on_qc_passed(event: Envelope[FileQcPassed]) -> list[Envelope[Any]]:
        return [archived(event)]

    worker.handle(on_qc_passed)  # declares no outputs
    async with running(worker) as broker:
        await broker.publish(encode(qc_passed()), worker.settings.topic("reception"))

    [letter] = dead_letters(worker)
    assert letter["reason"] == "handler_failed" and "does not declare file.archived" in letter["error"]


def test_a_handler_must_say_its_event_in_its_signature() -> None:
    worker = Worker("t", settings())

    async def untyped(event: Any) -> list[Envelope[Any]]:
        return []

    with pytest.raises(TypeError, match="Envelope\\[SomeEvent\\]"):
        worker.handle(untyped)
