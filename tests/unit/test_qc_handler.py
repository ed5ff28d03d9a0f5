"""The QC worker around ``check_file``, run by ``TestKafkaBroker``: upload in, verdict events out."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from botocore.exceptions import ClientError

from genomebus.consumers import qc
from genomebus.consumers.qc import dataset_refusal
from genomebus.infra.readmodels import datasets, files
from genomebus.infra.settings import Settings
from genomebus.infra.worker import Transient
from genomebus.schemas.envelope import Envelope, decode, encode, new_envelope
from tests.unit.test_worker import resources, running
from genomebus.schemas.reception import FileUploaded
from tests.data import DATA

VCF = DATA / "variants" / "sample1-bcbio-cancer.vcf.gz"
INBOX = "genomebus-inbox"
DATASET = "GDI-FI-DATASET-001"


class FakeBody:
    """The streaming body of ``get_object``: read in chunks, closed by ``async with``."""

    def __init__(self, data: bytes) -> None:
        self._data, self._at, self.reads = data, 0, 0

    async def __aenter__(self) -> FakeBody:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def read(self, amt: int | None = None) -> bytes:
        self.reads += 1
        end = len(self._data) if amt is None else self._at + amt
        chunk, self._at = self._data[self._at:end], min(end, len(self._data))
        return chunk


class FakeS3:
    """Just the calls the QC worker makes, over a dict of (bucket, key) → bytes."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.puts: list[str] = []

    async def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 - boto's names
        if (Bucket, Key) not in self.objects:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "not found"}}, "GetObject")
        data = self.objects[Bucket, Key]
        return {"Body": FakeBody(data), "ContentLength": len(data)}

    async def head_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803
        if (Bucket, Key) not in self.objects:
            raise ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadObject")
        return {"ContentLength": len(self.objects[Bucket, Key])}

    async def put_object(self, *, Bucket: str, Key: str, Body: bytes) -> dict[str, Any]:  # noqa: N803
        self.objects[Bucket, Key] = Body
        self.puts.append(Key)
        return {}


class ReadModels:
    """A pool answering the read-model queries the way PostgreSQL would: only the live schemas exist."""

    def __init__(self, dataset_state: str | None = "registered", file_states: dict[uuid.UUID, str] | None = None,
                 ) -> None:
        self.dataset_state, self.file_states, self.queries = dataset_state, file_states or {}, []

    async def fetchval(self, query: str, *args: Any) -> Any:
        self.queries.append(query)
        if f'"{files.SCHEMA}".files' in query:
            return self.file_states.get(args[0])
        if f'"{datasets.SCHEMA}".datasets' in query:
            return self.dataset_state
        if f'"{datasets.SCHEMA}".positions' in query:
            return 10**9  # the datasets projection is far past every upload
        raise asyncpg.UndefinedTableError(f"relation in {query!r} does not exist")

    def acquire(self) -> Any:
        pool = self

        class Held:
            async def __aenter__(self) -> ReadModels:
                return pool

            async def __aexit__(self, *exc: object) -> None:
                return None

        return Held()


@pytest.fixture
def s3() -> FakeS3:
    if not VCF.exists():
        pytest.fail(f"the test data is missing: expected {VCF} (data/ in the repository)")
    return FakeS3()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(profile="local", data_dir=tmp_path / "node", node_id="FI")


def _event(body: Any) -> Envelope[Any]:
    if isinstance(body, Envelope):
        return body
    return decode(json.dumps(body).encode() if isinstance(body, dict) else body)


async def handle_uploaded(event: Envelope[FileUploaded], settings: Settings, s3: FakeS3,
                          pool: ReadModels | None = None) -> list[Envelope[Any]]:
    """Publish ``event`` to the QC worker; return what it published (its dead letters raise)."""
    worker = qc.build(settings, resources=resources(s3=s3, db=pool or ReadModels()))
    sent: list[Envelope[Any]] = []

    @worker.broker.subscriber(settings.topic("reception"), group_id="spy")
    async def spy(body: Any) -> None:
        sent.append(_event(body))

    async with running(worker) as broker:
        await broker.publish(encode(event), settings.topic("reception"), key=event.subject.encode())
    published = [e for e in sent if e.type in worker.produces]
    for letter in worker.letters:  # type: ignore[attr-defined]
        if letter["reason"] == "retries_exhausted":
            raise Transient(letter["error"])
        raise AssertionError(letter)
    return published


def uploaded(s3: FakeS3, content: bytes, *, sha256: str | None = None, md5: str | None = None,
             stored: bool = True) -> Envelope[FileUploaded]:
    """A ``file.uploaded`` event as the producer publishes it, with the bytes in the inbox (or not)."""
    real_sha256 = hashlib.sha256(content).hexdigest()
    key = f"{DATASET}/{real_sha256}/sample1.vcf.gz"
    if stored:
        s3.objects[INBOX, key] = content
    data = FileUploaded(
        file_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{DATASET}/{real_sha256}"), dataset_id=DATASET,
        filename="sample1.vcf.gz", bucket=INBOX, object_key=key, size=len(content),
        sha256=sha256 or real_sha256, md5=md5 or hashlib.md5(content).hexdigest(), declared_format="VCF",
    )
    return new_envelope(data, source="urn:genomebus:node:FI", actor="node-system-1")


async def test_a_valid_vcf_passes_and_its_index_lands_beside_it(settings: Settings, s3: FakeS3) -> None:
    event = uploaded(s3, VCF.read_bytes())

    [verdict] = await handle_uploaded(event, settings, s3)

    assert verdict.type == "file.qc_passed"
    assert verdict.causation_id == event.id and verdict.correlation_id == event.correlation_id
    assert verdict.subject == str(event.data.file_id) and verdict.actor == "worker:qc"
    assert verdict.data.format == "VCF"
    assert verdict.data.metrics["records"] == 12
    index_key = event.data.object_key + ".tbi"
    assert verdict.data.metrics["index_key"] == index_key
    assert s3.objects[INBOX, index_key][:4] == b"\x1f\x8b\x08\x04"  # a BGZF-compressed tabix index
    assert list((settings.data_dir / "tmp" / "qc").iterdir()) == []  # the copy is gone


async def test_the_object_is_streamed_in_chunks(settings: Settings, s3: FakeS3,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("genomebus.consumers.qc.CHUNK", 1000)
    content = VCF.read_bytes()
    event = uploaded(s3, content)
    bodies: list[FakeBody] = []
    get_object = s3.get_object

    async def spying_get_object(**kwargs: Any) -> dict[str, Any]:
        response = await get_object(**kwargs)
        bodies.append(response["Body"])
        return response

    monkeypatch.setattr(s3, "get_object", spying_get_object)

    [verdict] = await handle_uploaded(event, settings, s3)

    assert verdict.type == "file.qc_passed"
    assert bodies[0].reads == len(content) // 1000 + 2  # every chunk, then the empty read at the end


async def test_a_connection_that_ends_early_is_retried_not_judged(settings: Settings, s3: FakeS3,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    event = uploaded(s3, VCF.read_bytes())
    get_object = s3.get_object

    async def short_get_object(**kwargs: Any) -> dict[str, Any]:
        response = await get_object(**kwargs)
        return {**response, "Body": FakeBody(s3.objects[INBOX, event.data.object_key][:1000])}

    monkeypatch.setattr(s3, "get_object", short_get_object)

    with pytest.raises(Transient, match="ended after 1000 of"):
        await handle_uploaded(event, settings, s3)
    assert list((settings.data_dir / "tmp" / "qc").iterdir()) == []


async def test_wrong_checksums_fail_with_checksum_mismatch(settings: Settings, s3: FakeS3) -> None:
    event = uploaded(s3, VCF.read_bytes(), sha256="0" * 64)

    [verdict] = await handle_uploaded(event, settings, s3)

    assert verdict.type == "file.qc_failed"
    assert verdict.causation_id == event.id
    assert [r.code for r in verdict.data.reasons] == ["checksum_mismatch"]
    assert "sha256" in verdict.data.reasons[0].message
    assert verdict.data.message == "sample1.vcf.gz failed QC (checksum_mismatch)"
    assert s3.puts == []  # no index for a rejected file


async def test_a_redelivered_upload_gives_the_same_event(settings: Settings, s3: FakeS3) -> None:
    event = uploaded(s3, VCF.read_bytes())

    [first] = await handle_uploaded(event, settings, s3)
    [second] = await handle_uploaded(event, settings, s3)

    assert first.id == second.id
    assert first.data == second.data
    assert s3.puts == [event.data.object_key + ".tbi"]  # the index is stored once, never overwritten


async def test_a_missing_object_fails_as_object_missing(settings: Settings, s3: FakeS3) -> None:
    event = uploaded(s3, VCF.read_bytes(), stored=False)

    [verdict] = await handle_uploaded(event, settings, s3)

    assert verdict.type == "file.qc_failed"
    assert [r.code for r in verdict.data.reasons] == ["object_missing"]
    assert event.data.object_key in verdict.data.reasons[0].message


async def test_a_missing_object_of_an_archived_file_publishes_nothing(settings: Settings, s3: FakeS3) -> None:
    event = uploaded(s3, VCF.read_bytes(), stored=False)
    pool = ReadModels(file_states={event.data.file_id: "archived"})

    assert await handle_uploaded(event, settings, s3, pool) == []
    # The old guard asked proj_files.files, which no longer exists, swallowed the error and failed the file.
    assert any(f'"{files.SCHEMA}".files' in q for q in pool.queries)


@pytest.mark.parametrize(("state", "code"), [(None, "unknown_dataset"), ("withdrawn", "dataset_withdrawn"),
                                             ("released", "dataset_released")])
async def test_an_upload_to_a_dataset_that_takes_no_files_fails_without_reading_it(
        settings: Settings, s3: FakeS3, state: str | None, code: str) -> None:
    event = uploaded(s3, VCF.read_bytes())

    [verdict] = await handle_uploaded(event, settings, s3, ReadModels(dataset_state=state))

    assert verdict.type == "file.qc_failed"
    assert [r.code for r in verdict.data.reasons] == [code]
    assert s3.puts == []


def test_only_a_registered_dataset_takes_files() -> None:
    assert dataset_refusal("GDI-FI-DATASET-1", "registered") is None
    assert dataset_refusal("GDI-FI-DATASET-1", None).code == "unknown_dataset"  # type: ignore[union-attr]
    assert dataset_refusal("GDI-FI-DATASET-1", "withdrawn").code == "dataset_withdrawn"  # type: ignore[union-attr]
    assert dataset_refusal("GDI-FI-DATASET-1", "released").code == "dataset_released"  # type: ignore[union-attr]


async def test_a_redelivered_upload_of_an_archived_file_in_a_released_dataset_publishes_nothing(
        settings: Settings, s3: FakeS3) -> None:
    event = uploaded(s3, VCF.read_bytes(), stored=False)  # the archive removed the inbox copy long ago
    pool = ReadModels(dataset_state="released", file_states={event.data.file_id: "archived"})

    assert await handle_uploaded(event, settings, s3, pool) == []  # not a contradicting dataset_released
