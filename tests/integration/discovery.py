"""Indexed datasets for the discovery tests (indexer, Beacon queries, the Beacon router, federation, catalogue).

``indexed_dataset(settings, publisher, pool, files, **description)`` builds one through the real
pipeline: registered with individuals and biosamples whose ids match the VCF columns (below),
files submitted, QC'd and archived, the dataset released (``storage.archived_dataset``), then
waited for until the indexer has loaded it (``discovery.datasets`` state ``indexed``).

Building one takes a while (QC reads every record), so the usual datasets are built once per test
session and shared: ask for the ``discovery_dataset`` fixture (controlled access: several VCFs,
multi-allelic sites, indels, samples mapped to individuals and biosamples) or
``public_discovery_dataset`` (public access: two small VCFs) after importing it by name::

    from tests.integration.discovery import discovery_dataset  # noqa: F401 - a fixture

Tests must not withdraw or change those two; a test that does builds its own with ``indexed_dataset``.

What the shared controlled dataset holds (``DEFAULT_FILES``; 0-based starts in the index):

- ``HG02102``, ``NA20787``, ``NA18537``: 1000 Genomes chr21 (GRCh37, contig ``21``), one sample
  each; they share many sites, so one allele is one row with summed counts (multi-file merge).
- ``spec-v4.3``: the VCF specification's example, contig ``20``, samples NA00001-3; multi-allelic
  sites (``20:1110696 A>G,T``), a deletion and an insertion at ``20:1234567 GTC>G,GTCT``.
- ``test.vcf.gz``: chr1 (normalised ``1``), samples sample_normal/sample_tumour; a multi-allelic
  site (``1:16565784 G>A,T``), a 86-base deletion, an MNP.
- ``multisample_1``: chr21 (``21``), samples NORMAL/TUMOR, not described (samples only).

Who the VCF columns are (``DEFAULT_INDIVIDUALS``, ``DEFAULT_BIOSAMPLES``): HG02102 (female,
HP:0001250 Seizure), NA20787 (male, HP:0002069 Bilateral tonic-clonic seizure, a descendant of
Seizure; disease MONDO:0005027 epilepsy), NA18537 (female, no phenotype) and NA00001 (male) are
individuals; the columns NA00002 and sample_tumour are biosamples (blood UBERON:0000178, of
individual P-NA00002 (female, HP:0001631 Atrial septal defect); tissue UBERON:0000479, of P-TEST
(sex other), collected 2021-03-04); NA00003, sample_normal, NORMAL and TUMOR are samples only.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pysam
import pytest

from genomebus.infra.discovery import index
from genomebus.infra.discovery.alleles import normalise_contig, variant_type
from genomebus.infra.discovery.index import IndexSummary
from genomebus.infra.discovery.vcf import NOT_VARIANTS
from tests.data import DATA
from tests.integration.storage import archived_dataset

VARIANTS = DATA / "variants"
HG02102 = VARIANTS / "HG02102.vcf.gz"
NA20787 = VARIANTS / "NA20787.vcf.gz"
NA18537 = VARIANTS / "NA18537.vcf.gz"
SPEC = VARIANTS / "spec-v4.3.vcf.gz"
TEST_VCF = VARIANTS / "test.vcf.gz"
MULTISAMPLE = VARIANTS / "multisample_1.vcf.gz"
DEFAULT_FILES = (HG02102, NA20787, NA18537, SPEC, TEST_VCF, MULTISAMPLE)
PUBLIC_FILES = (SPEC, TEST_VCF)

DEFAULT_INDIVIDUALS = (
    {"id": "HG02102", "sex": "female", "phenotypes": [{"id": "HP:0001250", "label": "Seizure"}]},
    {"id": "NA20787", "sex": "male", "phenotypes": [{"id": "HP:0002069", "label": "Bilateral tonic-clonic seizure"}],
     "diseases": [{"id": "MONDO:0005027", "label": "epilepsy"}]},
    {"id": "NA18537", "sex": "female"},
    {"id": "NA00001", "sex": "male"},
    {"id": "P-NA00002", "sex": "female", "phenotypes": [{"id": "HP:0001631", "label": "Atrial septal defect"}]},
    {"id": "P-TEST", "sex": "other"},
)
DEFAULT_BIOSAMPLES = (
    {"id": "NA00002", "individual_id": "P-NA00002", "sample_type": {"id": "UBERON:0000178", "label": "blood"}},
    {"id": "sample_tumour", "individual_id": "P-TEST", "sample_type": {"id": "UBERON:0000479", "label": "tissue"},
     "collected": "2021-03-04"},
)
INDEX_TIMEOUT_S = 120


@dataclass
class IndexedDataset:
    """A released dataset the indexer has loaded: ids, files and what the index says it holds."""

    dataset_id: str
    dac_id: str
    access_rights: str
    objects: dict[str, str] = field(default_factory=dict)
    """File name → DRS id (the accession)."""
    paths: dict[str, Path] = field(default_factory=dict)
    description: dict[str, Any] = field(default_factory=dict)
    summary: IndexSummary | None = None

    def accession(self, path: Path) -> str:
        return self.objects[path.name]

    @property
    def variant_paths(self) -> list[Path]:
        """The VCF/BCF files loaded, in submission order (a Beacon answer is over all of them)."""
        return [p for p in self.paths.values() if p.name.endswith((".vcf.gz", ".vcf", ".bcf"))]


async def indexed_dataset(settings: Any, publisher: Any, pool: Any, files: tuple[Path, ...] | list[Path] = DEFAULT_FILES,
                          *, access_rights: str = "controlled", title: str = "discovery test",
                          **description: Any) -> IndexedDataset:
    """A dataset holding ``files`` through the real pipeline, released and indexed (see the module docstring).

    ``description``: fields of its ``DatasetDescription`` (default: ``DEFAULT_INDIVIDUALS``,
    ``DEFAULT_BIOSAMPLES``, keywords ``discovery-test``).
    """
    description.setdefault("individuals", DEFAULT_INDIVIDUALS)
    description.setdefault("biosamples", DEFAULT_BIOSAMPLES)
    description.setdefault("keywords", ("discovery-test",))
    stored = await archived_dataset(settings, publisher, [(p, None) for p in files], access_rights=access_rights,
                                    title=title, **description)
    summary = await wait_for_state(pool, stored.dataset_id, "indexed")
    return IndexedDataset(stored.dataset_id, stored.dac_id, access_rights, dict(stored.objects), dict(stored.paths),
                          {"title": title, "access_rights": access_rights, **description}, summary)


async def wait_for_state(pool: Any, dataset_id: str, *states: str, timeout: float = INDEX_TIMEOUT_S) -> IndexSummary:
    """Poll the index until the dataset is in one of ``states``; its summary then. Fails on ``failed``."""
    deadline = time.monotonic() + timeout
    summary = None
    while time.monotonic() < deadline:
        summary = await index.summary(pool, dataset_id)
        if summary is not None and summary.state in states:
            return summary
        assert summary is None or summary.state != "failed" or "failed" in states, summary
        await asyncio.sleep(0.1)
    raise AssertionError(f"{dataset_id} did not reach {'/'.join(states)} in {timeout:.0f} s: {summary}")


_shared: dict[tuple[str, str], IndexedDataset] = {}
"""The session's shared datasets, by (node data dir, kind): a fixture imported into several modules
is a fixture per module for pytest, so the cache is here."""


async def _shared_dataset(kind: str, stack: Any, publisher: Any, pool: Any) -> IndexedDataset:
    key = (str(stack.data_dir), kind)
    if key not in _shared:
        if kind == "public":
            _shared[key] = await indexed_dataset(stack, publisher, pool, PUBLIC_FILES, access_rights="public",
                                                 title="public discovery test")
        else:
            _shared[key] = await indexed_dataset(stack, publisher, pool, DEFAULT_FILES)
    return _shared[key]


@pytest.fixture
async def discovery_dataset(stack: Any, publisher: Any, pool: Any) -> IndexedDataset:
    """The session's controlled dataset of ``DEFAULT_FILES`` (built by the first test that asks)."""
    return await _shared_dataset("controlled", stack, publisher, pool)


@pytest.fixture
async def public_discovery_dataset(stack: Any, publisher: Any, pool: Any) -> IndexedDataset:
    """The session's public dataset of ``PUBLIC_FILES`` (built by the first test that asks)."""
    return await _shared_dataset("public", stack, publisher, pool)


# -- what the index should hold, found independently ------------------------------------------------------

Allele = tuple[str, int, int, str, str]
"""(contig, start, end, ref, alt): one row of ``discovery.variants`` per dataset."""


def pysam_rows(path: Path, offset: int = 0) -> list[tuple[Any, ...]]:
    """The rows the index should hold for one file, from pysam's record objects (slow, obviously right).

    (contig, start, end, ref, alt, variant_type, allele_count, allele_number, carriers, carrier_samples):
    0-based half-open; one per ALT (``*``, ``<NON_REF>``, ``.`` skipped); counts from the GT calls.
    """
    out = []
    with pysam.VariantFile(str(path)) as vf:
        for rec in vf:
            ref = rec.ref.upper()
            calls = [s.get("GT") for s in rec.samples.values()] if "GT" in rec.format else []
            an = sum(1 for gt in calls for a in (gt or ()) if a is not None)
            for number, alt in enumerate(rec.alts or (), start=1):
                if alt in NOT_VARIANTS:
                    continue
                carriers = [offset + i for i, gt in enumerate(calls) if number in (gt or ())]
                ac = sum(1 for gt in calls for a in (gt or ()) if a == number)
                end = rec.stop if alt.startswith("<") else rec.start + len(ref)
                out.append((normalise_contig(rec.chrom), rec.start, end, ref, alt, variant_type(ref, alt),
                            ac, an if calls else 0, len(carriers), carriers))
    return out


def pysam_dataset_rows(paths: list[Path]) -> dict[Allele, tuple[Any, ...]]:
    """A dataset's rows: the files in order, each file's samples numbered after the previous files', and
    the same allele in several files one row (counts summed, carriers joined)."""
    merged: dict[Allele, tuple[Any, ...]] = {}
    offset = 0
    for path in paths:
        for row in pysam_rows(path, offset):
            key = row[:5]
            if key in merged:
                seen = merged[key]
                carriers = sorted(seen[9] + row[9])
                merged[key] = (*seen[:6], seen[6] + row[6], seen[7] + row[7], len(carriers), carriers)
            else:
                merged[key] = row
        with pysam.VariantFile(str(path)) as vf:
            offset += len(vf.header.samples)
    return merged
