"""The indexer's handlers, run by ``TestKafkaBroker``: reception facts in, discovery facts out.

The index, the read models and the archive are a fake ``Indexer`` over dicts (the loader itself is
tested against PostgreSQL in ``tests/integration/test_indexer.py``); what is asserted is what the
worker published on the discovery topic, as a consumer would decode it, and what it asked the index.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from faststream import Context

from genomebus.consumers import indexer
from genomebus.consumers.indexer import ReleasedFile, alignment_samples, release_action
from genomebus.infra.discovery.index import IndexSummary
from genomebus.infra.discovery.vcf import VariantFileError
from genomebus.infra.settings import Settings
from genomebus.infra.worker import Transient, Worker
from genomebus.schemas.envelope import Envelope, decode, derived_id, encode, new_envelope
from genomebus.schemas.reception import (
    DatasetDescription,
    DatasetRegistered,
    DatasetReleased,
    DatasetUpdated,
    DatasetWithdrawn,
)
from tests.data import DATA
from tests.unit.test_worker import resources, running
from tests.unit.test_worker import settings as worker_settings

SOURCE = "urn:genomebus:node:FI"
DATASET = "GDI-FI-DATASET-001"
VCF, BAM = "GDI-FI-FILE-00000001", "GDI-FI-FILE-00000002"
DESCRIBED = {"title": "Trios", "data_use": ("DUO:0000042",), "individuals": ({"id": "HG02102", "sex": "female"},)}


class FakeIndexer:
    """``consumers.indexer.Indexer`` over dicts: what it was asked, and summaries as the index would give them."""

    def __init__(self, *, withdrawn: bool = False, unreadable: str | None = None, lagging: int = 0) -> None:
        self.descriptions: dict[str, DatasetDescription] = {}
        self.summaries: dict[str, IndexSummary] = {}
        self.is_withdrawn, self.unreadable, self.lagging = withdrawn, unreadable, lagging
        self.loads: list[tuple[str, UUID, DatasetDescription, list[str]]] = []
        self.metadata: list[tuple[str, DatasetDescription]] = []
        self.failed: list[str] = []

    async def remember(self, event: Envelope[Any], description: DatasetDescription, *, first: bool) -> None:
        if not first or event.subject not in self.descriptions:
            self.descriptions[event.subject] = description

    async def description(self, dataset_id: str) -> DatasetDescription | None:
        return self.descriptions.get(dataset_id)

    async def summary(self, dataset_id: str) -> IndexSummary | None:
        return self.summaries.get(dataset_id)

    async def withdrawn(self, dataset_id: str) -> bool:
        return self.is_withdrawn

    async def released_files(self, released: DatasetReleased, record: Any) -> list[ReleasedFile]:
        if self.lagging:
            self.lagging -= 1
            raise Transient("the files read model has not reached the release")
        return [ReleasedFile(a, a, "VCF" if a == VCF else "BAM", 10, "archive", f"sha256/{a}", 40)
                for a in released.files]

    async def index(self, released: DatasetReleased, release_event_id: UUID, description: DatasetDescription,
                    archived: list[ReleasedFile]) -> IndexSummary:
        self.loads.append((released.dataset_id, release_event_id, description, [f.accession for f in archived]))
        if self.unreadable:
            error = VariantFileError("unparseable_record", "x.vcf.gz: record 7 has 3 columns, not 8 or more")
            error.accession = self.unreadable
            self.summaries[released.dataset_id] = self._summary(released, release_event_id, "indexing")
            raise error
        summary = self.summaries[released.dataset_id] = self._summary(released, release_event_id, "indexed")
        return summary

    async def mark_failed(self, dataset_id: str, release_event_id: UUID, description: DatasetDescription) -> None:
        self.failed.append(dataset_id)
        old = self.summaries[dataset_id]
        self.summaries[dataset_id] = IndexSummary(**{**old.__dict__, "state": "failed"})

    async def unindex(self, dataset_id: str, reason: str) -> bool:
        old = self.summaries.get(dataset_id)
        if old is None or old.state == "unindexed":
            return False
        self.summaries[dataset_id] = IndexSummary(**{**old.__dict__, "state": "unindexed"})
        return True

    async def index_metadata(self, dataset_id: str, description: DatasetDescription) -> IndexSummary | None:
        old = self.summaries.get(dataset_id)
        if old is None or old.state != "indexed":
            return None
        self.metadata.append((dataset_id, description))
        return old

    @staticmethod
    def _summary(released: DatasetReleased, release_event_id: UUID, state: str) -> IndexSummary:
        return IndexSummary(dataset_id=released.dataset_id, release_event_id=release_event_id, state=state,
                            variants=60694, samples=1, individuals=1, biosamples=0, assembly="b37",
                            max_variant_length=35176, variant_files=(VCF,), other_files=(BAM,))


@pytest.fixture
def settings() -> Settings:
    return worker_settings()


def build(settings: Settings, fake: FakeIndexer) -> Worker:
    return indexer.build(settings, name=f"indexer-{uuid.uuid4().hex[:6]}", resources=resources(indexer=fake))


async def send(worker: Worker, *events: Envelope[Any]) -> list[tuple[bytes, Envelope[Any]]]:
    """Publish ``events`` on the reception topic; return (key, event) of what the worker published."""
    published: list[tuple[bytes, Envelope[Any]]] = []

    @worker.broker.subscriber(worker.settings.topic("discovery"), group_id="spy")
    async def spy(body: Any, message: Any = Context()) -> None:
        published.append((message.raw_message.key, decode(message.body)))

    async with running(worker) as broker:
        for event in events:
            await broker.publish(encode(event), worker.settings.topic("reception"), key=event.subject.encode())
    return published


def fact(data: Any, actor: str = "worker:reception-decider") -> Envelope[Any]:
    return new_envelope(data, source=SOURCE, actor=actor, subject=DATASET)


def registered(**fields: Any) -> Envelope[DatasetRegistered]:
    return fact(DatasetRegistered(dataset_id=DATASET, **{**DESCRIBED, **fields}))


def released(*files: str) -> Envelope[DatasetReleased]:
    return fact(DatasetReleased(dataset_id=DATASET, files=files or (VCF, BAM)))


def withdrawn() -> Envelope[DatasetWithdrawn]:
    return fact(DatasetWithdrawn(dataset_id=DATASET, reason="consent withdrawn"))


async def test_a_release_is_indexed_and_announced_with_its_counts(settings: Settings) -> None:
    fake = FakeIndexer()
    release = released()

    [(key, event)] = await send(build(settings, fake), registered(), release)

    assert key == DATASET.encode()
    assert event.type == "dataset.indexed" and event.id == derived_id(release.id, "dataset.indexed")
    assert event.causation_id == release.id and event.actor == "worker:indexer"
    assert (event.data.dataset_id, event.data.release_event_id) == (DATASET, release.id)
    assert (event.data.variants, event.data.samples, event.data.assembly) == (60694, 1, "b37")
    assert (event.data.variant_files, event.data.other_files) == ((VCF,), (BAM,))
    [(dataset_id, release_id, description, files)] = fake.loads
    assert (dataset_id, release_id, files) == (DATASET, release.id, [VCF, BAM])
    assert description == DatasetDescription(**DESCRIBED)


async def test_a_redelivered_release_is_announced_again_and_never_loaded_twice(settings: Settings) -> None:
    fake = FakeIndexer()
    release = released()

    published = await send(build(settings, fake), registered(), release, release)

    assert [e.type for _, e in published] == ["dataset.indexed", "dataset.indexed"]
    assert published[0][1].id == published[1][1].id  # consumers see one event
    assert len(fake.loads) == 1


async def test_the_release_is_indexed_with_the_description_as_updated_before_it(settings: Settings) -> None:
    fake = FakeIndexer()
    update = fact(DatasetUpdated(dataset_id=DATASET, **{**DESCRIBED, "title": "Trios, second cohort"}))

    await send(build(settings, fake), registered(), update, released())

    assert fake.loads[0][2].title == "Trios, second cohort"
    assert fake.metadata == []  # not indexed yet when it was updated: nothing to re-index


async def test_an_update_of_an_indexed_dataset_reindexes_its_metadata_and_publishes_nothing(settings: Settings) -> None:
    fake = FakeIndexer()
    update = fact(DatasetUpdated(dataset_id=DATASET, **{**DESCRIBED, "individuals": ({"id": "HG02102", "sex": "male"},)}))

    published = await send(build(settings, fake), registered(), released(), update)

    assert [e.type for _, e in published] == ["dataset.indexed"]
    [(dataset_id, description)] = fake.metadata
    assert dataset_id == DATASET and description.individuals[0].sex == "male"
    assert len(fake.loads) == 1  # the variants are kept


async def test_an_unreadable_variant_file_fails_the_dataset_with_a_reason_naming_it(settings: Settings) -> None:
    fake = FakeIndexer(unreadable=VCF)
    release = released()

    [(_, event)] = await send(build(settings, fake), registered(), release)

    assert event.type == "dataset.index_failed" and event.id == derived_id(release.id, "dataset.index_failed")
    [reason] = event.data.reasons
    assert reason.code == "unparseable_record" and reason.message.startswith(f"{VCF}: x.vcf.gz: record 7")
    assert fake.failed == [DATASET] and fake.summaries[DATASET].state == "failed"


async def test_a_withdrawal_unindexes_and_says_so_once_per_withdrawal_even_redelivered(settings: Settings) -> None:
    fake = FakeIndexer()
    withdrawal = withdrawn()

    published = await send(build(settings, fake), registered(), released(), withdrawal, withdrawal)

    assert [e.type for _, e in published] == ["dataset.indexed", "dataset.unindexed", "dataset.unindexed"]
    first, again = published[1][1], published[2][1]
    assert first.id == again.id == derived_id(withdrawal.id, "dataset.unindexed")
    assert first.data.reason == "consent withdrawn"
    assert fake.summaries[DATASET].state == "unindexed"


async def test_a_dataset_withdrawn_before_release_leaves_nothing_to_unindex(settings: Settings) -> None:
    assert await send(build(settings, FakeIndexer()), registered(), withdrawn()) == []


async def test_a_release_of_a_dataset_already_withdrawn_is_not_indexed(settings: Settings) -> None:
    fake = FakeIndexer(withdrawn=True)  # a replay: the datasets read model already says withdrawn

    published = await send(build(settings, fake), registered(), released(), withdrawn())

    assert published == [] and fake.loads == []


async def test_a_release_redelivered_after_withdrawal_does_not_bring_the_dataset_back(settings: Settings) -> None:
    fake = FakeIndexer()
    release = released()

    published = await send(build(settings, fake), registered(), release, withdrawn(), release)

    assert [e.type for _, e in published] == ["dataset.indexed", "dataset.unindexed"]
    assert len(fake.loads) == 1 and fake.summaries[DATASET].state == "unindexed"


async def test_a_files_read_model_behind_the_release_is_waited_for(settings: Settings) -> None:
    fake = FakeIndexer(lagging=2)

    [(_, event)] = await send(build(settings, fake), registered(), released())

    assert event.type == "dataset.indexed" and len(fake.loads) == 1


async def test_a_release_without_a_known_description_is_dead_lettered(settings: Settings) -> None:
    worker = build(settings, FakeIndexer())

    assert await send(worker, released()) == []

    [letter] = worker.letters  # type: ignore[attr-defined]
    assert letter["reason"] == "handler_failed" and "no dataset.registered seen" in letter["error"]


def summary(state: str, release_event_id: UUID) -> IndexSummary:
    return IndexSummary(dataset_id=DATASET, release_event_id=release_event_id, state=state, variants=1, samples=1,
                        individuals=0, biosamples=0, assembly=None, max_variant_length=1, variant_files=(VCF,),
                        other_files=())


RELEASE, OTHER = uuid.uuid4(), uuid.uuid4()


@pytest.mark.parametrize(("held", "withdrawn_now", "action"), [
    (None, False, "index"),
    (None, True, "nothing"),
    (summary("indexed", RELEASE), False, "announce"),
    (summary("indexed", RELEASE), True, "announce"),  # its withdrawal is next in the log: it will unindex
    (summary("unindexed", RELEASE), False, "nothing"),
    (summary("indexing", RELEASE), False, "index"),  # interrupted midway: load again
    (summary("failed", RELEASE), False, "index"),  # a failure is decided again (the same reasons)
    (summary("indexed", OTHER), False, "index"),
    (summary("unindexed", OTHER), True, "nothing"),
])
def test_release_action(held: IndexSummary | None, withdrawn_now: bool, action: str) -> None:
    assert release_action(held, RELEASE, withdrawn=withdrawn_now) == action


@pytest.mark.parametrize(("name", "fmt"), [("htsnexus_test_NA12878.bam", "BAM"),
                                           ("htsnexus_test_NA12878.cram", "CRAM")])
def test_read_group_samples_come_from_the_header_alone(tmp_path: Path, name: str, fmt: str) -> None:
    head = tmp_path / name
    head.write_bytes((DATA / "reads" / name).read_bytes()[:1 << 16])  # what the indexer decrypts: the start
    assert alignment_samples(head, fmt) == ("NA12878",)
    junk = tmp_path / "junk"
    junk.write_bytes(b"\0" * 100)
    assert alignment_samples(junk, fmt) is None
