"""Submitting files and dataset metadata against the real stack: the inbox object and the event on the log.

Nothing here waits for the QC worker: each test reads the reception topic
itself, for the events of its own fresh dataset.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from genomebus.infra import kafka
from genomebus.infra import s3 as object_store
from genomebus.infra.settings import Settings
from genomebus.producers.datasets import describe_dataset, register_dataset
from genomebus.producers.submit import PART_SIZE, UploadFailed, file_id_for, submit_file
from genomebus.schemas.envelope import Envelope, decode
from tests.data import DATA
from tests.integration.helpers import cli, new_dataset_id

pytestmark = pytest.mark.integration

VCF = DATA / "variants" / "NA18537.vcf.gz"
EXAMPLE = Path(__file__).resolve().parents[2] / "producers" / "examples" / "GDI-FI-DATASET-001.json"


@pytest.fixture
async def inbox(stack: Settings) -> AsyncIterator[Any]:
    async with object_store.client(stack) as s3:
        yield s3


@pytest.fixture
async def dataset_id(stack: Settings, publisher: Any) -> str:
    """A freshly registered dataset, ready to take files."""
    dataset_id = new_dataset_id()
    outcome = await register_dataset(stack, describe_dataset(dataset_id=dataset_id, title="submission test",
                                                             data_use=("DUO:0000042",)),
                                     actor="steward-test", publisher=publisher)
    assert outcome.accepted
    return dataset_id


async def events_about(settings: Settings, subject: str) -> list[Envelope[Any]]:
    """Every event on the reception topic keyed by ``subject``, read from the log."""
    return [decode(record.value) async for record in kafka.read_log(settings, [settings.topic("reception")])
            if record.key == subject.encode()]


async def events_of_dataset(settings: Settings, dataset_id: str) -> list[Envelope[Any]]:
    return [decode(record.value) async for record in kafka.read_log(settings, [settings.topic("reception")])
            if dataset_id.encode() in record.value]


async def keys_under(s3: Any, bucket: str, prefix: str) -> list[str]:
    listing = await s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for o in listing.get("Contents", [])]


def digests(path: Path) -> tuple[str, str]:
    content = path.read_bytes()
    return hashlib.sha256(content).hexdigest(), hashlib.md5(content).hexdigest()  # noqa: S324


def generated(directory: Path, name: str, size: int) -> Path:
    path = directory / name
    with path.open("wb") as out:
        for _ in range(0, size, 1024 * 1024):
            out.write(os.urandom(min(1024 * 1024, size - out.tell())))
    return path


async def test_a_vcf_lands_in_the_inbox_and_is_announced(stack, dataset_id, publisher, inbox):
    sha256, md5 = digests(VCF)

    # Declared as BAM, QC refuses it (format_mismatch), so the archive never removes the inbox copy we inspect.
    submitted = await submit_file(stack, dataset_id, VCF, declared_format="BAM", actor="pipeline-1",
                                  publisher=publisher)

    file_id = file_id_for(dataset_id, sha256)
    key = f"{dataset_id}/{file_id}/NA18537.vcf.gz"
    head = await inbox.head_object(Bucket=stack.s3_inbox_bucket, Key=key)
    assert head["ContentLength"] == VCF.stat().st_size
    body = await (await inbox.get_object(Bucket=stack.s3_inbox_bucket, Key=key))["Body"].read()
    assert hashlib.sha256(body).hexdigest() == sha256

    [envelope] = [e for e in await events_about(stack, str(file_id)) if e.type == "file.uploaded"]
    event = envelope.data
    assert (event.sha256, event.md5, event.size) == (sha256, md5, VCF.stat().st_size)
    assert (event.dataset_id, event.bucket, event.object_key) == (dataset_id, stack.s3_inbox_bucket, key)
    assert event.declared_format == "BAM"
    assert envelope.actor == "pipeline-1"  # the submitter's act, decided by the reception decider
    assert submitted.outcome.accepted and submitted.outcome.published.topic == stack.topic("reception.commands")
    assert envelope.causation_id == submitted.outcome.command_id


async def test_a_file_larger_than_a_part_goes_up_in_parts(stack, dataset_id, publisher, inbox, tmp_path):
    path = generated(tmp_path, "reads.bam", 20 * 1024 * 1024)
    seen: list[int] = []

    submitted = await submit_file(stack, dataset_id, path, actor="pipeline-1", publisher=publisher,
                                  progress=lambda done, total: seen.append(done))

    assert submitted.parts == 3
    assert seen == [0, PART_SIZE, 2 * PART_SIZE, path.stat().st_size]
    head = await inbox.head_object(Bucket=stack.s3_inbox_bucket, Key=submitted.command.object_key)
    assert head["ContentLength"] == path.stat().st_size
    assert head["ETag"].strip('"').endswith("-3")  # S3's mark of a three-part upload
    assert head["Metadata"]["sha256"] == submitted.command.sha256 == digests(path)[0]
    [envelope] = [e for e in await events_about(stack, str(submitted.file_id)) if e.type == "file.uploaded"]
    assert (envelope.data.md5, envelope.data.declared_format) == (digests(path)[1], "BAM")


async def test_a_read_error_halfway_leaves_nothing_in_the_inbox_or_on_the_log(stack, dataset_id, publisher, inbox, tmp_path,
                                                                              monkeypatch):
    path = generated(tmp_path, "reads.cram", 3 * PART_SIZE)
    size = path.stat().st_size
    # The file is read whole once to name it, then again to upload it: fail halfway through the upload.
    budget = [size + size // 2]
    real_open = Path.open

    class FailingDisk:
        def __init__(self, stream: Any) -> None:
            self._stream = stream
            self.name = stream.name

        def read(self, n: int = -1) -> bytes:
            data = self._stream.read(n)
            budget[0] -= len(data)
            if budget[0] < 0:
                raise OSError(5, "Input/output error", str(path))
            return data

        def __enter__(self) -> FailingDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self._stream.close()

    def open_failing(self: Path, *args: Any, **kwargs: Any) -> Any:
        stream = real_open(self, *args, **kwargs)
        return FailingDisk(stream) if self == path else stream

    monkeypatch.setattr(Path, "open", open_failing)
    with pytest.raises(OSError, match="Input/output error"):
        await submit_file(stack, dataset_id, path, actor="pipeline-1", publisher=publisher)
    monkeypatch.undo()

    assert budget[0] < 0  # it did fail during the upload, not before it
    assert await keys_under(inbox, stack.s3_inbox_bucket, f"{dataset_id}/") == []
    uploads = await inbox.list_multipart_uploads(Bucket=stack.s3_inbox_bucket, Prefix=f"{dataset_id}/")
    assert uploads.get("Uploads", []) == []
    assert [e.type for e in await events_of_dataset(stack, dataset_id)] == ["dataset.registered"]


async def test_a_changed_file_is_not_announced(stack, dataset_id, publisher, inbox, tmp_path):
    path = generated(tmp_path, "calls.vcf", 1000)

    def rewrite(done: int, total: int) -> None:
        if done == 0:
            path.write_bytes(os.urandom(1000))

    with pytest.raises(UploadFailed, match="changed while being submitted"):
        await submit_file(stack, dataset_id, path, actor="pipeline-1", publisher=publisher, progress=rewrite)
    assert await keys_under(inbox, stack.s3_inbox_bucket, f"{dataset_id}/") == []
    assert [e.type for e in await events_of_dataset(stack, dataset_id)] == ["dataset.registered"]


# -- the command ----------------------------------------------------------------------------------


async def test_submit_with_the_cli(stack, dataset_id, inbox):
    file_id = file_id_for(dataset_id, digests(VCF)[0])

    # --format BAM makes QC refuse it, so the inbox copy stays (a good file is removed once archived).
    result = cli(stack, "submit", dataset_id, str(VCF), "--alias", "NA18537-chr21", "--actor", "pipeline-7",
                 "--format", "BAM")

    assert result.returncode == 0, result.stderr
    assert str(file_id) in result.stdout
    assert "accepted" in result.stdout
    [envelope] = [e for e in await events_about(stack, str(file_id)) if e.type == "file.uploaded"]
    assert (envelope.data.alias, envelope.actor) == ("NA18537-chr21", "pipeline-7")
    assert await keys_under(inbox, stack.s3_inbox_bucket, f"{dataset_id}/") == [envelope.data.object_key]


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["FI-DATASET-1", str(VCF)], "not a 1+MG dataset id"),
        (["GDI-FI-DATASET-1", "/nonexistent/NA0.vcf.gz"], "no such file"),
        (["GDI-FI-DATASET-1", str(VCF.with_name("NA18537.vcf.gz.tbi"))], "cannot tell the format"),
        (["GDI-FI-DATASET-1", str(VCF), str(VCF), "--alias", "x"], "--alias names one file"),
    ],
)
async def test_bad_submissions_exit_2_and_upload_nothing(stack, inbox, args, complaint):
    result = cli(stack, "submit", *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert complaint in " ".join(result.stderr.split())
    assert await keys_under(inbox, stack.s3_inbox_bucket, f"{args[0]}/") == []


# -- dataset metadata -------------------------------------------------------------------------------


async def test_register_a_dataset_from_a_metadata_file(stack):
    dataset_id = new_dataset_id()
    result = cli(stack, "dataset", "register", "--metadata", str(EXAMPLE), "--id", dataset_id,
                 "--actor", "steward-3")
    assert result.returncode == 0, result.stderr
    [envelope] = [e for e in await events_about(stack, dataset_id) if e.type == "dataset.registered"]
    dataset = envelope.data
    assert dataset.title.startswith("Finnish Unverricht-Lundborg")
    assert [i.id for i in dataset.individuals] == ["FI-EPM1-0001", "FI-EPM1-0002", "FI-EPM1-0003"]
    assert [b.individual_id for b in dataset.biosamples] == [i.id for i in dataset.individuals]
    assert envelope.actor == "steward-3"


async def test_invalid_metadata_publishes_nothing(stack, tmp_path):
    dataset_id = new_dataset_id()
    bad = tmp_path / "bad.json"
    bad.write_text(EXAMPLE.read_text().replace('"sex": "female"', '"sex": "F"'))
    result = cli(stack, "dataset", "register", "--metadata", str(bad), "--id", dataset_id)
    assert result.returncode == 2
    assert "error: individuals.0.sex: Input should be 'female'" in result.stderr
    assert await events_about(stack, dataset_id) == []
