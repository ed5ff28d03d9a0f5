"""The indexer on the real stack: released datasets in the discovery index, exactly; withdrawn ones out at once.

The shared controlled dataset (``tests/integration/discovery.py``: six VCFs, multi-allelic sites,
indels, described samples) is compared row by row with a pysam scan of its files. One dataset of
this module's own (``lifecycle``, module-scoped) then goes through what happens after a release, in
this order: the release redelivered, the description updated, the index forgotten and rebuilt by a
replay, the dataset withdrawn.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pysam
import pytest

from genomebus.consumers import indexer
from genomebus.infra import kafka
from genomebus.infra.discovery import index
from genomebus.producers.datasets import build_command, register_dataset, withdraw_dataset
from genomebus.schemas.envelope import decode
from genomebus.schemas.reception import DatasetUpdateRequested
from tests.integration.discovery import (
    DEFAULT_BIOSAMPLES,
    DEFAULT_INDIVIDUALS,
    NA18537,
    SPEC,
    TEST_VCF,
    IndexedDataset,
    discovery_dataset,  # noqa: F401 - a fixture
    indexed_dataset,
    pysam_dataset_rows,
    wait_for_state,
)

pytestmark = pytest.mark.integration

VARIANT_COLUMNS = 'v.contig, v.start, v."end", v.ref, v.alt, v.variant_type, v.allele_count, v.allele_number, ' \
                  'v.carriers, v.carrier_samples'


async def variant_rows(pool: Any, dataset_id: str) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    rows = await pool.fetch(f"SELECT {VARIANT_COLUMNS} FROM discovery.variants v JOIN discovery.datasets d "
                            "USING (dataset_key) WHERE d.dataset_id = $1", dataset_id)
    return {tuple(r)[:5]: (*tuple(r)[:9], list(r["carrier_samples"])) for r in rows}


async def discovery_events(settings: Any, dataset_id: str) -> list[Any]:
    """Every event on the discovery topic about ``dataset_id``, in order."""
    out = []
    async for record in kafka.read_log(settings, [settings.topic("discovery")]):
        event = decode(record.value)
        if event.subject == dataset_id:
            out.append(event)
    return out


async def digest(pool: Any, dataset_id: str) -> dict[str, Any]:
    """Everything the index holds about a dataset, without its internal key."""
    key = await pool.fetchval("SELECT dataset_key FROM discovery.datasets WHERE dataset_id = $1", dataset_id)
    tables = {
        "datasets": "SELECT dataset_id, release_event_id, state, access_rights, assembly, variants, samples, "
                    "individuals, biosamples, max_variant_length, description FROM discovery.datasets "
                    "WHERE dataset_key = $1",
        "variants": f"SELECT {VARIANT_COLUMNS} FROM discovery.variants v WHERE v.dataset_key = $1 "
                    "ORDER BY 1, 2, 3, 4, 5",
        "samples": "SELECT sample_idx, file_accession, sample_name, individual_id, biosample_id "
                   "FROM discovery.samples WHERE dataset_key = $1 ORDER BY 1",
        "individuals": "SELECT individual_id, sex, phenotypes, diseases FROM discovery.individuals "
                       "WHERE dataset_key = $1 ORDER BY 1",
        "biosamples": "SELECT biosample_id, individual_id, sample_type, collected FROM discovery.biosamples "
                      "WHERE dataset_key = $1 ORDER BY 1",
        "files": "SELECT accession, drs_id, format, size, sample_names, metrics, archived_at FROM discovery.files "
                 "WHERE dataset_key = $1 ORDER BY 1",
        "terms": "SELECT term, label, kind, scope FROM discovery.terms WHERE dataset_key = $1 ORDER BY 1, 4",
    }
    return {name: [tuple(r) for r in await pool.fetch(sql, key)] for name, sql in tables.items()}


async def partition_exists(pool: Any, dataset_key: int) -> bool:
    return await pool.fetchval("SELECT to_regclass($1) IS NOT NULL", f"discovery.{index.partition_name(dataset_key)}")


# -- the shared dataset, checked against pysam ------------------------------------------------------------


async def test_the_index_holds_what_a_pysam_scan_of_the_released_files_finds(
        discovery_dataset: IndexedDataset, pool: Any, stack: Any) -> None:  # noqa: F811 - the fixture
    paths = discovery_dataset.variant_paths
    expected = pysam_dataset_rows(paths)

    held = await variant_rows(pool, discovery_dataset.dataset_id)

    assert held == expected  # every allele, each once, with its counts and carriers
    assert any(alt.startswith("<") for (_, _, _, _, alt) in held)  # symbolic alleles kept, with their END
    assert {("20", 1110695, "G"), ("20", 1110695, "T")} <= {(c, s, a) for (c, s, _, _, a) in held}  # split
    summary = discovery_dataset.summary
    assert summary is not None
    assert (summary.variants, summary.assembly) == (len(expected), "b37")
    assert summary.max_variant_length == max(end - start for (_, start, end, _, _) in expected)
    assert summary.variant_files == tuple(sorted(discovery_dataset.objects.values()))


async def test_samples_are_mapped_to_the_described_individuals_and_biosamples(
        discovery_dataset: IndexedDataset, pool: Any) -> None:  # noqa: F811 - the fixture
    ds = discovery_dataset
    [key] = [r["dataset_key"] for r in await pool.fetch(
        "SELECT dataset_key FROM discovery.datasets WHERE dataset_id = $1", ds.dataset_id)]
    samples = [tuple(r) for r in await pool.fetch(
        "SELECT sample_idx, file_accession, sample_name, individual_id, biosample_id FROM discovery.samples "
        "WHERE dataset_key = $1 ORDER BY sample_idx", key)]
    columns = []
    for path in ds.variant_paths:
        with pysam.VariantFile(str(path)) as vf:
            columns += [(ds.accession(path), name) for name in vf.header.samples]
    individuals = {i["id"] for i in DEFAULT_INDIVIDUALS}
    biosamples = {b["id"]: b["individual_id"] for b in DEFAULT_BIOSAMPLES}
    assert samples == [(i, accession, name, biosamples.get(name, name if name in individuals else None),
                        name if name in biosamples else None) for i, (accession, name) in enumerate(columns)]
    sexes = dict(await pool.fetch("SELECT individual_id, sex FROM discovery.individuals WHERE dataset_key = $1", key))
    assert sexes == {"HG02102": "NCIT:C16576", "NA20787": "NCIT:C20197", "NA18537": "NCIT:C16576",
                     "NA00001": "NCIT:C20197", "P-NA00002": "NCIT:C16576", "P-TEST": "NCIT:C17649"}
    terms = {(r["term"], r["scope"]) for r in await pool.fetch(
        "SELECT term, scope FROM discovery.terms WHERE dataset_key = $1", key)}
    assert {("HP:0001250", "individuals"), ("HP:0002069", "individuals"), ("MONDO:0005027", "individuals"),
            ("UBERON:0000178", "biosamples"), ("keyword:discovery-test", "datasets")} <= terms
    files = {r["accession"]: r for r in await pool.fetch(
        "SELECT accession, format, size, sample_names, metrics FROM discovery.files WHERE dataset_key = $1", key)}
    assert set(files) == set(ds.objects.values())
    for path in ds.variant_paths:
        row = files[ds.accession(path)]
        assert (row["format"], row["size"]) == ("VCF", path.stat().st_size)
        assert row["sample_names"] == [n for a, n in columns if a == ds.accession(path)]


async def test_dataset_indexed_says_what_the_index_holds(discovery_dataset: IndexedDataset,  # noqa: F811
                                                         stack: Any) -> None:
    [event] = [e for e in await discovery_events(stack, discovery_dataset.dataset_id) if e.type == "dataset.indexed"][:1]
    summary = discovery_dataset.summary
    assert summary is not None
    assert event.data.release_event_id == summary.release_event_id == event.causation_id
    assert (event.data.variants, event.data.samples, event.data.individuals, event.data.biosamples) == \
        (summary.variants, 10, 6, 2)
    assert event.actor == "worker:indexer"


# -- one dataset's life after its release (the tests below run in this order) ------------------------------


@pytest.fixture(scope="module")
async def lifecycle(stack: Any, publisher: Any, pool: Any) -> IndexedDataset:
    """Two files (VCF spec example, chr21 sample): this module's own, redelivered, updated, replayed, withdrawn."""
    return await indexed_dataset(stack, publisher, pool, (SPEC, NA18537), title="indexer lifecycle")


async def test_a_redelivered_release_is_announced_again_not_loaded_again(
        lifecycle: IndexedDataset, stack: Any, publisher: Any, pool: Any) -> None:
    before = await pool.fetchrow("SELECT dataset_key, indexed_at FROM discovery.datasets WHERE dataset_id = $1",
                                 lifecycle.dataset_id)
    table = await pool.fetchval("SELECT $1::regclass::oid", f"discovery.{index.partition_name(before['dataset_key'])}")
    release = [r async for r in kafka.read_log(stack, [stack.topic("reception")])
               if r.key == lifecycle.dataset_id.encode() and decode(r.value).type == "dataset.released"]
    assert len(release) == 1

    await publisher.publish_raw(stack.topic("reception"), release[0].value, key=release[0].key,
                                headers=list(release[0].headers))  # a redelivery, as the consumer sees it

    deadline = time.monotonic() + 30
    while len(announced := [e for e in await discovery_events(stack, lifecycle.dataset_id)
                            if e.type == "dataset.indexed"]) < 2:
        assert time.monotonic() < deadline, "the redelivered release was not answered"
        await asyncio.sleep(0.2)
    assert announced[0].id == announced[1].id  # the same event: consumers see it once
    after = await pool.fetchrow("SELECT dataset_key, indexed_at FROM discovery.datasets WHERE dataset_id = $1",
                                lifecycle.dataset_id)
    assert tuple(after) == tuple(before)
    assert await pool.fetchval("SELECT $1::regclass::oid",
                               f"discovery.{index.partition_name(after['dataset_key'])}") == table


async def test_an_update_reindexes_who_the_samples_are_and_keeps_the_variants(
        lifecycle: IndexedDataset, stack: Any, publisher: Any, pool: Any) -> None:
    variants = await variant_rows(pool, lifecycle.dataset_id)
    update = build_command(
        DatasetUpdateRequested, dataset_id=lifecycle.dataset_id, title="indexer lifecycle, described again",
        data_use=("DUO:0000006",), dac_id=lifecycle.dac_id, keywords=("updated",),
        individuals=({"id": "NA00001", "sex": "female", "phenotypes": [{"id": "HP:0001631"}]},
                     {"id": "P-NA00003", "sex": "male"}),
        biosamples=({"id": "NA00003", "individual_id": "P-NA00003"},))
    outcome = await register_dataset(stack, update, actor="steward-test", publisher=publisher)
    assert outcome.accepted, outcome

    deadline = time.monotonic() + 30
    while (summary := await index.summary(pool, lifecycle.dataset_id)) is None or summary.biosamples != 1:
        assert time.monotonic() < deadline, f"the update was not indexed: {summary}"
        await asyncio.sleep(0.1)
    assert (summary.individuals, summary.state) == (2, "indexed")
    held = await digest(pool, lifecycle.dataset_id)
    assert [(s[2], s[3], s[4]) for s in held["samples"]] == [
        ("NA00001", "NA00001", None), ("NA00002", None, None), ("NA00003", "P-NA00003", "NA00003"),
        ("NA18537", None, None)]
    assert held["individuals"] == [("NA00001", "NCIT:C16576", ["HP:0001631"], []), ("P-NA00003", "NCIT:C20197", [], [])]
    assert ("keyword:updated", "datasets") in {(t[0], t[3]) for t in held["terms"]}
    assert json.loads(held["datasets"][0][-1])["title"] == "indexer lifecycle, described again"
    assert await variant_rows(pool, lifecycle.dataset_id) == variants


async def test_a_replay_rebuilds_the_same_index(lifecycle: IndexedDataset, stack: Any, pool: Any) -> None:
    before = await digest(pool, lifecycle.dataset_id)
    await index.forget_dataset(pool, lifecycle.dataset_id)
    assert await index.summary(pool, lifecycle.dataset_id) is None

    stop = asyncio.Event()  # the indexer again, as a new consumer group: the reception topic from its start
    replay = asyncio.create_task(indexer.main(stack, stop, name=f"indexer-replay-{uuid.uuid4().hex[:6]}"))
    try:  # late in a full session the topic holds every earlier test's datasets: each is read (and skipped) first
        await wait_for_state(pool, lifecycle.dataset_id, "indexed", timeout=180)
    finally:
        stop.set()
        await replay

    assert await digest(pool, lifecycle.dataset_id) == before


async def test_a_withdrawn_dataset_leaves_discovery_within_seconds(
        lifecycle: IndexedDataset, stack: Any, publisher: Any, pool: Any) -> None:
    key = await pool.fetchval("SELECT dataset_key FROM discovery.datasets WHERE dataset_id = $1", lifecycle.dataset_id)
    assert await partition_exists(pool, key)
    asked = time.monotonic()
    outcome = await withdraw_dataset(stack, lifecycle.dataset_id, reason="consent withdrawn", actor="steward-test",
                                     publisher=publisher)
    assert outcome.accepted, outcome

    summary = await wait_for_state(pool, lifecycle.dataset_id, "unindexed", timeout=10)
    print(f"withdrawn → unindexed in {time.monotonic() - asked:.2f} s (withdraw command included)")

    assert summary.release_event_id == lifecycle.summary.release_event_id  # type: ignore[union-attr]
    for table in ("variants", "samples", "individuals", "biosamples", "files", "terms"):
        assert await pool.fetchval(f"SELECT count(*) FROM discovery.{table} WHERE dataset_key = $1", key) == 0, table
    deadline = time.monotonic() + 10
    while await partition_exists(pool, key):  # dropped right after the state changed
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    unindexed = [e for e in await discovery_events(stack, lifecycle.dataset_id) if e.type == "dataset.unindexed"]
    assert [e.data.reason for e in unindexed] == ["consent withdrawn"]


# -- a file the index cannot read ------------------------------------------------------------------------------


async def test_a_variant_file_the_index_cannot_read_fails_the_dataset_and_says_which(
        tmp_path: Path, stack: Any, publisher: Any, pool: Any) -> None:
    text = tmp_path / "bad-genotype.vcf"
    text.write_text("##fileformat=VCFv4.2\n##contig=<ID=1,length=100000>\n"
                    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
                    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tA\n"
                    f"1\t100\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\n1\t{200 + uuid.uuid4().int % 1000}\t.\tA\tG\t.\tPASS\t.\tGT\t0/3\n")
    bad = tmp_path / "bad-genotype.vcf.gz"
    pysam.tabix_compress(str(text), str(bad), force=True)  # QC passes it: htslib does not check GT against ALT

    from tests.integration.storage import archived_dataset

    stored = await archived_dataset(stack, publisher, [(bad, None), (TEST_VCF, None)], title="unreadable")
    summary = await wait_for_state(pool, stored.dataset_id, "failed", timeout=60)

    assert summary.variants == 0
    assert await pool.fetchval("SELECT count(*) FROM discovery.variants v JOIN discovery.datasets d "
                               "USING (dataset_key) WHERE d.dataset_id = $1", stored.dataset_id) == 0
    deadline = time.monotonic() + 10
    while not (failed := [e for e in await discovery_events(stack, stored.dataset_id)
                          if e.type == "dataset.index_failed"]):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    [reason] = failed[0].data.reasons
    assert reason.code == "invalid_genotype"
    assert reason.message.startswith(f"{stored.objects[bad.name]}: ")
    assert "GT '0/3' names allele 3" in reason.message
