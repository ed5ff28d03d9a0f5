"""Commands decided in one place, against the real stack: races, duplicates, refusals, the pipeline's guard."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from genomebus.audit import history
from genomebus.infra.kafka import Publisher
from genomebus.producers.commands import send_command, wait_for_outcome
from genomebus.producers.datasets import describe_dataset, register_dataset, release_dataset, withdraw_dataset
from genomebus.producers.submit import DatasetClosed, file_id_for, submit_file
from genomebus.schemas.envelope import new_envelope
from genomebus.schemas.reception import DatasetReleaseRequested, FileSubmitRequested, FileUploaded
from tests.integration.helpers import cli, new_dataset_id

pytestmark = pytest.mark.integration

SMALL_VCF = Path(__file__).resolve().parents[2] / "data" / "variants" / "sample1-bcbio-cancer.vcf.gz"
FACTS = {"dataset.registered", "dataset.updated", "dataset.released", "dataset.withdrawn"}


async def registered(settings: Any, publisher: Publisher, title: str = "command test") -> str:
    dataset_id = new_dataset_id()
    outcome = await register_dataset(settings, describe_dataset(dataset_id=dataset_id, title=title,
                                                                data_use=("DUO:0000042",)),
                                     actor="steward-test", publisher=publisher)
    assert outcome.accepted, outcome
    return dataset_id


async def wait_for_state(settings: Any, path: str, wanted: str, timeout: float = 120) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    async with httpx.AsyncClient(base_url=settings.gateway_url) as http:
        while True:
            response = await http.get(path)
            body = response.json() if response.status_code == 200 else {}
            if body.get("state") == wanted:
                return body
            assert asyncio.get_running_loop().time() < deadline, f"{path} never became {wanted}: {body}"
            await asyncio.sleep(0.2)


def lifecycle(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events if e["type"] in FACTS]


async def test_release_and_withdraw_sent_together_always_leave_a_legal_history(stack, publisher):
    """20 datasets, each with an archived file; a release and a withdrawal of each sent at the same moment."""
    datasets = [await registered(stack, publisher, f"race {n}") for n in range(20)]
    files = await asyncio.gather(*(submit_file(stack, d, SMALL_VCF, actor="seq-centre", publisher=publisher)
                                   for d in datasets))
    for f in files:
        assert f.outcome.accepted, f.outcome
        await wait_for_state(stack, f"/files/{f.file_id}", "archived")

    async def race(dataset_id: str) -> tuple[Any, Any]:
        return await asyncio.gather(
            release_dataset(stack, dataset_id, actor="steward-a", publisher=publisher),
            withdraw_dataset(stack, dataset_id, reason="race", actor="steward-b", publisher=publisher))

    outcomes = await asyncio.gather(*(race(d) for d in datasets))
    for dataset_id, (release, withdrawal) in zip(datasets, outcomes, strict=True):
        assert withdrawal.accepted  # a withdrawal is legal from registered and from released
        facts = lifecycle(await history(stack, dataset_id))
        if release.accepted:
            assert facts == ["dataset.registered", "dataset.released", "dataset.withdrawn"]
        else:
            assert facts == ["dataset.registered", "dataset.withdrawn"]
            assert [r.code for r in release.reasons] == ["dataset_withdrawn"]
        async with httpx.AsyncClient(base_url=stack.gateway_url) as http:
            assert (await http.get(f"/datasets/{dataset_id}")).status_code == 410


async def test_a_duplicate_command_gives_one_outcome(stack, publisher):
    dataset_id = await registered(stack, publisher)
    command = new_envelope(DatasetReleaseRequested(dataset_id=dataset_id), source=stack.source, actor="steward-test")
    await publisher.publish(command)
    first = await wait_for_outcome(stack, command.id)
    await publisher.publish(command)  # the same command again (a client retrying, a redelivery)
    await publisher.publish(command)
    await asyncio.sleep(1.0)  # give the decider time to answer the copies
    second = await wait_for_outcome(stack, command.id)
    assert first == second and not first.accepted and [r.code for r in first.reasons] == ["no_files"]
    answers = {e["id"] for e in await history(stack, dataset_id) if e["causation_id"] == str(command.id)}
    assert len(answers) == 1  # re-published unchanged: the same event id, whatever the copies


async def test_a_release_with_a_file_still_in_qc_is_rejected_and_names_it(stack, publisher):
    """The file's inbox bucket does not exist, so QC can never finish it: it stays ``uploaded``."""
    dataset_id = await registered(stack, publisher)
    stuck = FileSubmitRequested(dataset_id=dataset_id, file_id=uuid.uuid4(), filename="stuck.bam",
                                bucket="genomebus-no-such-bucket", object_key="x/stuck.bam", size=1,
                                sha256="a" * 64, md5="b" * 32, declared_format="BAM", alias="stuck-in-qc")
    assert (await send_command(stack, stuck, actor="seq-centre", publisher=publisher)).accepted
    refused = await release_dataset(stack, dataset_id, actor="steward-test", publisher=publisher)
    assert not refused.accepted and refused.state == "registered"
    assert [(r.code, r.message) for r in refused.reasons] == [("file_not_archived",
                                                               "stuck-in-qc: uploaded (waiting for QC)")]
    result = cli(stack, "dataset", "release", dataset_id)
    assert result.returncode == 5
    assert "file_not_archived" in result.stderr and "stuck-in-qc" in result.stderr


async def test_files_for_an_unregistered_dataset_are_refused_at_submit_and_by_the_pipeline(stack, publisher):
    unknown = new_dataset_id()
    with pytest.raises(DatasetClosed) as refused:
        await submit_file(stack, unknown, SMALL_VCF, actor="seq-centre", publisher=publisher)
    assert refused.value.reason == "unknown_dataset"
    result = cli(stack, "submit", unknown, str(SMALL_VCF))
    assert result.returncode == 5 and "unknown_dataset" in result.stderr and "nothing was uploaded" in result.stderr

    # Published by hand, bypassing the decider (Kafka ACLs forbid this in production): never archived.
    file_id = file_id_for(unknown, "c" * 64)
    forged = FileUploaded(file_id=file_id, dataset_id=unknown, filename="forged.vcf.gz", bucket=stack.s3_inbox_bucket,
                          object_key=f"{unknown}/{file_id}/forged.vcf.gz", size=3494, sha256="c" * 64, md5="d" * 32,
                          declared_format="VCF")
    await publisher.publish(new_envelope(forged, source=stack.source, actor="mallory"))
    body = await wait_for_state(stack, f"/files/{file_id}", "qc_failed", timeout=60)
    assert [r["code"] for r in body["qc_reasons"]] == ["unknown_dataset"]
    await asyncio.sleep(2.0)
    assert lifecycle(await history(stack, str(file_id))) == []
    assert [e["type"] for e in await history(stack, str(file_id))] == ["file.uploaded", "file.qc_failed"]


async def test_a_second_registration_is_refused_naming_update_which_changes_the_description(stack, publisher):
    dataset_id = await registered(stack, publisher, "first title")
    again = cli(stack, "dataset", "register", "--id", dataset_id, "--title", "another title", "--duo", "DUO:0000042")
    assert again.returncode == 5
    assert "already_registered" in again.stderr and "dataset update" in again.stderr
    updated = cli(stack, "dataset", "update", "--id", dataset_id, "--title", "corrected title",
                  "--duo", "DUO:0000007", "--keyword", "trio")
    assert updated.returncode == 0, updated.stderr
    async with httpx.AsyncClient(base_url=stack.gateway_url) as http:
        body = (await http.get(f"/datasets/{dataset_id}")).json()
    assert (body["title"], body["data_use"], body["keywords"]) == ("corrected title", ["DUO:0000007"], ["trio"])
    assert [e["type"] for e in body["history"]] == ["dataset.registered", "reception.command_rejected",
                                                    "dataset.updated"]


async def test_commands_need_no_database_credentials(stack, publisher):
    """The CLI's writes go through Kafka and the gateway only: a wrong database URL changes nothing."""
    dataset_id = new_dataset_id()
    result = cli(stack, "dataset", "register", "--id", dataset_id, "--title", "no db", "--duo", "DUO:0000042",
                 env={"GENOMEBUS_DATABASE_URL": "postgresql://nobody:wrong@127.0.0.1:1/none"})
    assert result.returncode == 0, result.stderr
    result = cli(stack, "dataset", "withdraw", dataset_id, "--reason", "   ",
                 env={"GENOMEBUS_DATABASE_URL": "postgresql://nobody:wrong@127.0.0.1:1/none"})
    assert result.returncode == 2 and "reason" in result.stderr and "blank" in result.stderr


async def test_accessions_are_short_fixed_width_in_order_and_stable_on_replay(stack, publisher):
    dataset_id = await registered(stack, publisher)
    bam = Path(__file__).resolve().parents[2] / "data" / "reads" / "htsnexus_test_NA12878.bam"
    first = await submit_file(stack, dataset_id, SMALL_VCF, actor="seq-centre", publisher=publisher)
    second = await submit_file(stack, dataset_id, bam, actor="seq-centre", publisher=publisher)
    archived = [await wait_for_state(stack, f"/files/{f.file_id}", "archived") for f in (first, second)]
    numbers = []
    for body in archived:
        assert re.fullmatch(r"GDI-FI-FILE-[0-9]{8}", body["accession"]), body["accession"]
        assert body["drs_id"] == body["accession"]
        numbers.append(int(body["accession"].rsplit("-", 1)[1]))
    assert numbers[0] < numbers[1]  # handed out in the order the decider accepted the files
    # The number travels in file.uploaded, so the read model rebuilt from the log has the same ones.
    uploaded = [e for e in await history(stack, str(first.file_id)) if e["type"] == "file.uploaded"]
    assert uploaded[0]["data"]["accession"] == archived[0]["accession"]
    result = cli(stack, "replay", "--projection", "files", "--verify", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
