"""The Beacon query layer (``infra.discovery.query.search``) against a pysam scan of the original VCFs.

Two datasets are indexed with the loader (``index.index_dataset``) straight from ``data/variants``
into the session's PostgreSQL: A holds six files (three single-sample chr21 genomes, the VCF 4.3
specification's multi-allelic sites and indels, a chr1 tumour/normal pair, a chr21 multi-sample
file) with individuals and biosamples named like their columns; B holds two of the same files
again. Hypothesis draws sequence, range, bracket and HGVS queries around the alleles the scan
found (and beside them), and every count per dataset, every page of records and every carrier
is compared with what the scan says. Then filters: HPO descendants, NCIT sex, DUO, keywords,
alphanumeric comparisons, unknown filters, and the links between entry types.
"""

from __future__ import annotations

import bisect
import functools
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pysam
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genomebus.infra.discovery import index, query
from genomebus.infra.discovery.alleles import normalise_contig, variant_type
from genomebus.infra.discovery.ontology import Hpo
from genomebus.infra.discovery.query import Filter, SearchResult, VariantQuery, filters_from_request
from genomebus.schemas.reception import Biosample, DatasetDescription, Individual, OntologyTerm
from tests import beacon_spec
from tests.data import DATA

pytestmark = pytest.mark.integration

VARIANTS = DATA / "variants"
FILES_A = ("HG02102.vcf.gz", "NA20787.vcf.gz", "NA18537.vcf.gz", "spec-v4.3.vcf.gz", "test.vcf.gz",
           "multisample_1.vcf.gz")
FILES_B = ("NA18537.vcf.gz", "spec-v4.3.vcf.gz")
MAX_RANGE = 1_000_000
_RUN = f"{os.getpid() % 100000:05d}{uuid.uuid4().int % 1000:03d}"
DATASET_A = f"GDI-FI-DATASET-H2A{_RUN}"
DATASET_B = f"GDI-FI-DATASET-H2B{_RUN}"
SEIZURE, FOCAL_SEIZURE, ASD = "HP:0001250", "HP:0007359", "HP:0001631"
EPILEPSY = "MONDO:0005027"
BLOOD, TUMOUR = "UBERON:0000178", "NCIT:C18009"
SETTINGS = settings(max_examples=20, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# -- the oracle: pysam over the original files -----------------------------------------------------


@dataclass
class Allele:
    contig: str
    start: int
    end: int
    ref: str
    alt: str
    allele_count: int = 0
    allele_number: int = 0
    carriers: set[str] = field(default_factory=set)   # VCF column names

    @property
    def kind(self) -> str:
        return variant_type(self.ref, self.alt)

    @property
    def id(self) -> str:
        return query.variant_id(self.contig, self.start, self.ref, self.alt)

    @property
    def order(self) -> tuple[str, int, bytes, bytes]:
        return self.contig, self.start, self.ref.encode(), self.alt.encode()

    @property
    def length(self) -> int:
        if self.alt.startswith("<"):
            return self.end - self.start
        if len(self.ref) == len(self.alt):
            return len(self.ref)
        return abs(len(self.ref) - len(self.alt))


def _symbolic_end(record: pysam.VariantRecord, start: int, index: int, alt: str) -> int:
    """VCF: a symbolic allele spans to INFO/END; else POS + |SVLEN| (an insertion's SVLEN is what it
    inserts: it spans its REF only); else its REF."""
    if record.stop != start + len(record.ref):  # pysam's stop is INFO/END when the record has one
        return max(record.stop, start + 1)
    inserts = alt.startswith("<INS")
    svlen = record.info.get("SVLEN") if "SVLEN" in record.header.info and not inserts else None
    if svlen:
        values = svlen if isinstance(svlen, tuple) else (svlen,)
        value = values[index - 1] if index - 1 < len(values) else values[0]
        if value is not None:
            return max(start + 1 + abs(value), start + len(record.ref))
    return start + len(record.ref)


def scan(names: Iterable[str]) -> list[Allele]:
    """Every (site, ALT) of the files, the same allele in several records or files merged."""
    alleles: dict[tuple[str, int, int, str, str], Allele] = {}
    for name in names:
        with pysam.VariantFile(str(VARIANTS / name)) as vcf:
            columns = list(vcf.header.samples)
            for record in vcf:
                start, ref = record.pos - 1, record.ref.upper()
                calls = [record.samples[c]["GT"] or () for c in columns] if columns else []
                called = sum(1 for gt in calls for a in gt if a is not None)
                for index_, alt in enumerate(record.alts or (), start=1):
                    if alt in ("*", "<NON_REF>", "<*>", "."):
                        continue
                    symbolic = alt.startswith("<")
                    alt = alt if symbolic else alt.upper()
                    end = _symbolic_end(record, start, index_, alt) if symbolic else start + len(ref)
                    found = alleles.setdefault((normalise_contig(record.chrom), start, end, ref, alt),
                                               Allele(normalise_contig(record.chrom), start, end, ref, alt))
                    found.allele_count += sum(gt.count(index_) for gt in calls)
                    found.allele_number += called
                    found.carriers |= {c for c, gt in zip(columns, calls, strict=True) if index_ in gt}
    return sorted(alleles.values(), key=lambda a: a.order)


# -- the datasets ------------------------------------------------------------------------------------

PEOPLE = {  # individual → (sex, phenotypes, diseases); HG02102, NA20787, NA18537 are VCF columns themselves
    "HG02102": ("female", (FOCAL_SEIZURE,), ()),
    "NA20787": ("male", (SEIZURE,), (EPILEPSY,)),
    "NA18537": ("female", (ASD,), ()),
    "P-SPEC": ("other", (), ()),
    "P-PAIR": ("unknown", (), (EPILEPSY,)),
}
SAMPLES = {  # biosample (a VCF column) → (individual, type, collected)
    "NA00001": ("P-SPEC", BLOOD, "2019-05-01"),
    "NA00002": ("P-SPEC", None, "2021"),
    "NORMAL": ("P-PAIR", BLOOD, "2020-02-02"),
    "TUMOR": ("P-PAIR", TUMOUR, "2020-02-03"),
}
# NA00003, sample_normal and sample_tumour are columns no metadata names: samples only.


def person_of(column: str) -> str | None:
    return column if column in PEOPLE else SAMPLES[column][0] if column in SAMPLES else None


def description_a() -> DatasetDescription:
    return DatasetDescription(
        title="H2 variants A", description="Six VCFs", data_use=("DUO:0000006",), keywords=("Epilepsy", "1000 Genomes"),
        access_rights="public",
        individuals=tuple(Individual(id=i, sex=sex, phenotypes=tuple(OntologyTerm(id=p) for p in ph),  # type: ignore[arg-type]
                                     diseases=tuple(OntologyTerm(id=d, label="epilepsy") for d in ds))
                          for i, (sex, ph, ds) in PEOPLE.items()),
        biosamples=tuple(Biosample(id=b, individual_id=i, sample_type=OntologyTerm(id=t, label=t) if t else None,
                                   collected=c) for b, (i, t, c) in SAMPLES.items()))


@dataclass(eq=False)
class Indexed:
    a: list[Allele]
    b: list[Allele]
    accessions: dict[str, str]          # file name → accession in A
    run: str                             # a BAM of A, by accession
    _contigs: dict[int, dict[str, tuple[list[int], list[Allele]]]] = field(default_factory=dict)

    def of(self, dataset: str) -> list[Allele]:
        return self.a if dataset == DATASET_A else self.b

    def near(self, dataset: str, contig: str, low: int, high: int) -> list[Allele]:
        """The alleles of ``dataset`` on ``contig`` starting in [low, high) (found by bisection)."""
        alleles = self.of(dataset)
        by_contig = self._contigs.get(id(alleles))
        if by_contig is None:
            by_contig = self._contigs[id(alleles)] = {}
            for allele in alleles:
                by_contig.setdefault(allele.contig, ([], []))[1].append(allele)
            for starts, found in by_contig.values():
                found.sort(key=lambda a: a.start)
                starts.extend(a.start for a in found)
        starts, found = by_contig.get(contig, ([], []))
        return found[bisect.bisect_left(starts, low):bisect.bisect_left(starts, high)]

    @functools.cache  # noqa: B019 - one per module
    def longest(self, dataset: str) -> int:
        return max(a.end - a.start for a in self.of(dataset))

    @functools.cached_property
    def drawn(self) -> st.SearchStrategy[Allele]:
        return st.sampled_from(self.a)

    @functools.cached_property
    def hgvs_writable(self) -> st.SearchStrategy[Allele]:
        return st.sampled_from([a for a in self.a if _hgvs_writable(a)])


async def _load(pool: Any, dataset_id: str, names: tuple[str, ...], description: DatasetDescription,
                other: tuple[index.FileInfo, ...] = ()) -> dict[str, str]:
    accessions = {name: f"{dataset_id}-F{i}" for i, name in enumerate(names)}
    summary = await index.index_dataset(
        pool, dataset_id=dataset_id, release_event_id=uuid.uuid4(), description=description,
        variant_files=[index.VariantSource(accession=accessions[n], path=VARIANTS / n) for n in names],
        other_files=other)
    assert summary.state == "indexed"
    return accessions


@pytest.fixture(scope="module")
async def indexed(pool: Any) -> AsyncIterator[Indexed]:
    run = f"{DATASET_A}-BAM"
    accessions = await _load(pool, DATASET_A, FILES_A, description_a(),
                             (index.FileInfo(accession=run, format="BAM", sample_names=("NORMAL",)),))
    await _load(pool, DATASET_B, FILES_B, DatasetDescription(title="H2 variants B", data_use=("DUO:0000042",),
                                                              keywords=("controls",)))
    yield Indexed(scan(FILES_A), scan(FILES_B), accessions, run)
    for dataset in (DATASET_A, DATASET_B):
        await index.unindex_dataset(pool, dataset, "test over")


async def search(pool: Any, entry_type: str = "g_variants", **kwargs: Any) -> SearchResult:
    kwargs.setdefault("dataset_ids", [DATASET_A, DATASET_B])
    return await query.search(pool, entry_type, **kwargs)


async def counts(pool: Any, entry_type: str = "g_variants", **kwargs: Any) -> dict[str, int]:
    result = await search(pool, entry_type, **kwargs)
    assert [m.dataset_id for m in result.matches] == sorted([DATASET_A, DATASET_B])
    return {m.dataset_id: m.count for m in result.matches}


def ask(**params: Any) -> VariantQuery:
    found = query.variant_query(params, max_range_bp=MAX_RANGE)
    assert found is not None
    return found


def expected(indexed: Indexed, contig: str, low: int, high: int, keep: Any) -> dict[str, int]:
    """Per dataset, the alleles on ``contig`` starting in [low, high) that ``keep`` keeps."""
    return {d: sum(1 for a in indexed.near(d, contig, low, high) if keep(a)) for d in (DATASET_A, DATASET_B)}


# -- variant queries (property-based) -------------------------------------------------------------

def _alleles_strategy(indexed: Indexed) -> st.SearchStrategy[Allele]:
    return indexed.drawn


def _bases_match(query_bases: str, bases: str) -> bool:
    return len(query_bases) == len(bases) and all(q in ("N", b) for q, b in zip(query_bases, bases, strict=True))


async def test_every_allele_of_the_files_is_indexed_once_per_dataset(pool: Any, indexed: Indexed) -> None:
    assert await counts(pool) == {DATASET_A: len(indexed.a), DATASET_B: len(indexed.b)}
    assert len(indexed.a) > 80_000 and any(len(a.carriers) > 1 for a in indexed.a)
    found = await search(pool, records_for={DATASET_B}, limit=1000)
    records = {m.dataset_id: m.records for m in found.matches}
    assert [r["variantInternalId"] for r in records[DATASET_B]] == [a.id for a in indexed.b]
    assert records[DATASET_A] == []  # records only where asked for


@SETTINGS
@given(data=st.data())
async def test_sequence_queries_find_what_the_vcfs_hold(pool: Any, indexed: Indexed, data: st.DataObject) -> None:
    allele = data.draw(_alleles_strategy(indexed))
    if allele.alt.startswith("<"):
        params = {"start": [allele.start], "variantType": allele.kind}

        def keep(a: Allele) -> bool:
            return a.kind in query.query_types(allele.kind)
    else:
        mode = data.draw(st.sampled_from(["exact", "alt", "wildcard", "next", "other"]))
        start = allele.start + (1 if mode == "next" else 0)
        alt = {"wildcard": "N" * len(allele.alt),
               "other": "T" if allele.alt[-1] != "T" else "G"}.get(mode, allele.alt)
        ref = allele.ref if mode in ("exact", "other") else None
        params = {"start": [start], "alternateBases": alt, **({"referenceBases": ref} if ref else {})}

        def keep(a: Allele) -> bool:
            return _bases_match(alt, a.alt) and (ref is None or a.ref == ref)
    start = params["start"][0]
    want = expected(indexed, allele.contig, start, start + 1, keep)
    assert await counts(pool, variant=ask(referenceName=allele.contig, **params)) == want
    if allele.contig in ("1", "21"):  # any name of the chromosome finds it
        assert await counts(pool, variant=ask(referenceName=f"chr{allele.contig}", **params)) == want


@SETTINGS
@given(data=st.data())
async def test_range_queries_find_every_overlapping_allele(pool: Any, indexed: Indexed, data: st.DataObject) -> None:
    allele = data.draw(_alleles_strategy(indexed))
    start = max(0, allele.start + data.draw(st.integers(-2000, 50)))
    width = data.draw(st.sampled_from([1, 2, 10, 500, 5_000, 100_000, MAX_RANGE]))
    kind = data.draw(st.sampled_from([None, None, "SNP", "SNV", "INDEL", "DEL", "INS", "MNP", "INV"]))
    shortest = data.draw(st.sampled_from([None, None, 2]))
    end = start + width
    params: dict[str, Any] = {"referenceName": allele.contig, "start": [start], "end": [end]}
    if kind:
        params["variantType"] = kind
    if shortest:
        params["variantMinLength"] = shortest

    def keep(a: Allele) -> bool:
        return a.end > start and (kind is None or a.kind in query.query_types(kind)) and (
            shortest is None or a.length >= shortest)
    low = start - max(indexed.longest(DATASET_A), indexed.longest(DATASET_B))
    assert await counts(pool, variant=ask(**params)) == expected(indexed, allele.contig, low, end, keep)


@SETTINGS
@given(data=st.data())
async def test_bracket_queries_bound_both_ends(pool: Any, indexed: Indexed, data: st.DataObject) -> None:
    allele = data.draw(_alleles_strategy(indexed))
    s0 = max(0, allele.start - data.draw(st.integers(0, 300)))
    s1 = s0 + data.draw(st.integers(0, 600))
    e0 = max(s0, allele.end - data.draw(st.integers(0, 300)))
    e1 = e0 + data.draw(st.integers(0, 600))

    def keep(a: Allele) -> bool:
        return e0 <= a.end <= e1
    want = expected(indexed, allele.contig, s0, s1 + 1, keep)
    assert want[DATASET_A] >= (1 if s0 <= allele.start <= s1 and e0 <= allele.end <= e1 else 0)
    assert await counts(pool, variant=ask(referenceName=allele.contig, start=[s0, s1], end=[e0, e1])) == want


@SETTINGS
@given(data=st.data())
async def test_record_pages_carry_positions_frequencies_and_carriers(pool: Any, indexed: Indexed,
                                                                     data: st.DataObject) -> None:
    allele = data.draw(_alleles_strategy(indexed))
    start = max(0, allele.start - data.draw(st.integers(0, 20_000)))
    end = allele.end + data.draw(st.integers(0, 20_000))
    skip, limit = data.draw(st.integers(0, 30)), data.draw(st.integers(1, 25))
    found = await search(pool, variant=ask(referenceName=allele.contig, start=[start], end=[end]),
                         records_for={DATASET_A}, skip=skip, limit=limit)
    matching = sorted((a for a in indexed.near(DATASET_A, allele.contig, start - indexed.longest(DATASET_A), end)
                       if a.end > start), key=lambda a: a.order)
    page = matching[skip:skip + limit]
    match = found.matches[0]
    assert match.dataset_id == DATASET_A and match.count == len(matching)
    assert [r["variantInternalId"] for r in match.records] == [a.id for a in page]
    for record, want in zip(match.records, page, strict=True):
        interval = record["variation"]["location"]["interval"]
        assert (interval["start"]["value"], interval["end"]["value"]) == (want.start, want.end)
        assert record["variation"]["variantType"] == want.kind
        if want.allele_number:
            frequency = record["frequencyInPopulations"][0]["frequencies"][0]["alleleFrequency"]
            assert frequency == pytest.approx(want.allele_count / want.allele_number)
        cases = record.get("caseLevelData", [])
        assert sorted(c["biosampleId"] for c in cases) == sorted(want.carriers)
        assert {c.get("individualId") for c in cases} - {None} == {person_of(c) for c in want.carriers} - {None}
        assert beacon_spec.record_errors("g_variants", record) == []


@SETTINGS
@given(data=st.data())
async def test_individuals_and_biosamples_carrying_a_variant(pool: Any, indexed: Indexed, data: st.DataObject) -> None:
    allele = data.draw(_alleles_strategy(indexed))
    start = max(0, allele.start - data.draw(st.sampled_from([0, 100, 10_000])))
    end = allele.end + data.draw(st.sampled_from([0, 100, 10_000]))
    variant = ask(referenceName=allele.contig, start=[start], end=[end])
    carriers = {c for a in indexed.near(DATASET_A, allele.contig, start - indexed.longest(DATASET_A), end)
                if a.end > start for c in a.carriers}
    people = {p for c in carriers if (p := person_of(c))}
    found = await search(pool, "individuals", variant=variant, records_for={DATASET_A}, limit=100)
    assert found.matches[0].count == len(people)
    assert {r["id"] for r in found.matches[0].records} == people
    assert (await counts(pool, "biosamples", variant=variant))[DATASET_A] == len(carriers & set(SAMPLES))


@SETTINGS
@given(data=st.data())
async def test_hgvs_short_forms_find_the_vcf_alleles(pool: Any, indexed: Indexed, data: st.DataObject) -> None:
    allele = data.draw(indexed.hgvs_writable)
    pos = allele.start + 1
    if allele.kind == "SNP":
        form = f"{allele.contig}:g.{pos}{allele.ref}>{allele.alt}"
    elif len(allele.ref) > len(allele.alt):  # anchored deletion: REF = anchor + deleted (+ shared tail)
        length = len(allele.ref) - len(allele.alt)
        form = f"{allele.contig}:g.{pos + 1}_{pos + length}del{allele.ref[1:1 + length]}"
    else:
        inserted = allele.alt[1:1 + len(allele.alt) - len(allele.ref)]
        form = f"chr{allele.contig}:g.{pos}_{pos + 1}ins{inserted}"
    found = await search(pool, variant=ask(genomicAlleleShortForm=form), records_for={DATASET_A}, limit=50)
    ids = [r["variantInternalId"] for r in found.matches[0].records]
    assert allele.id in ids, form
    hgvs_allele = query.hgvs.parse(form)
    assert all(_writes(a, hgvs_allele) for a in indexed.near(DATASET_A, allele.contig, allele.start - 1,
                                                              allele.start + 2) if a.id in ids)
    assert len(ids) == sum(1 for a in indexed.near(DATASET_A, allele.contig, allele.start - 1, allele.start + 2)
                           if _writes(a, hgvs_allele))


def _hgvs_writable(a: Allele) -> bool:
    """A SNP, or an indel written as anchor base + inserted/deleted bases + a tail both alleles share."""
    if a.kind == "SNP":
        return True
    if a.alt.startswith("<") or len(a.ref) == len(a.alt) or a.ref[0] != a.alt[0]:
        return False
    short, long_ = sorted((a.ref, a.alt), key=len)
    return long_[1 + len(long_) - len(short):] == short[1:]


def _writes(a: Allele, allele: Any) -> bool:
    """Whether the VCF row ``a`` writes the HGVS allele (anchored, maybe padded by a shared tail)."""
    if allele.kind == "substitution":
        return (a.start == allele.start and a.ref[0] == allele.ref and a.alt[0] == allele.alt
                and len(a.ref) == len(a.alt) and a.ref[1:] == a.alt[1:])
    if a.start != allele.start - 1 or a.ref[0] != a.alt[0]:
        return False
    if allele.kind == "deletion":
        length = allele.end - allele.start
        return (len(a.ref) - len(a.alt) == length and a.ref[1 + length:] == a.alt[1:]
                and (allele.ref is None or a.ref[1:1 + length] == allele.ref))
    length = len(allele.alt)
    return len(a.alt) - len(a.ref) == length and a.alt[1:1 + length] == allele.alt and a.alt[1 + length:] == a.ref[1:]


# -- filters and links ------------------------------------------------------------------------------

def carried_by(indexed: Indexed, people: set[str], contig: str = "21", start: int = 0,
               end: int = MAX_RANGE * 100) -> int:
    return sum(1 for a in indexed.a if a.contig == contig and a.start < end and a.end > start
               and any(person_of(c) in people for c in a.carriers))


async def test_phenotypes_match_their_descendant_terms(pool: Any, indexed: Indexed) -> None:
    async def people(*filters: Filter) -> set[str]:
        found = await search(pool, "individuals", filters=filters, records_for={DATASET_A}, limit=50)
        return {r["id"] for r in found.matches[0].records}
    assert await people(Filter(SEIZURE)) == {"HG02102", "NA20787"}  # HG02102 has a focal-onset seizure
    assert await people(Filter(SEIZURE, include_descendant_terms=False)) == {"NA20787"}
    assert await people(Filter("HP:0000118")) == {"HG02102", "NA20787", "NA18537"}
    assert await people(*filters_from_request("HP:0000118,NCIT:C16576")) == {"HG02102", "NA18537"}
    alternative = next(t for t in Hpo.shared().descendants(SEIZURE) if Hpo.shared().resolve(t) == SEIZURE
                       and t != SEIZURE)
    assert await people(Filter(alternative, include_descendant_terms=False)) == {"NA20787"}
    assert await people(Filter(EPILEPSY)) == {"NA20787", "P-PAIR"}


async def test_variants_of_the_individuals_a_filter_names(pool: Any, indexed: Indexed) -> None:
    region = ask(referenceName="21", start=[9_400_000], end=[10_400_000])
    assert (await counts(pool, variant=region, filters=[Filter(SEIZURE)]))[DATASET_A] == \
        carried_by(indexed, {"HG02102", "NA20787"}, "21", 9_400_000, 10_400_000)
    assert (await counts(pool, variant=region, filters=[Filter(SEIZURE, include_descendant_terms=False)])) == {
        DATASET_A: carried_by(indexed, {"NA20787"}, "21", 9_400_000, 10_400_000), DATASET_B: 0}
    females = filters_from_request("sex=female")
    assert (await counts(pool, variant=region, filters=females))[DATASET_A] == \
        carried_by(indexed, {"HG02102", "NA18537"}, "21", 9_400_000, 10_400_000)
    tumour = [Filter(TUMOUR)]  # TUMOR's biosample: the chr21 multi-sample file's somatic calls
    assert await counts(pool, filters=tumour) == {DATASET_A: sum(1 for a in indexed.a if "TUMOR" in a.carriers),
                                                  DATASET_B: 0}


async def test_alphanumeric_filters_compare_numbers_dates_and_text(pool: Any, indexed: Indexed) -> None:
    region = ask(referenceName="21", start=[9_000_000], end=[10_000_000])
    in_region = [a for a in indexed.a if a.contig == "21" and a.start < 10_000_000 and a.end > 9_000_000]
    rare = [Filter("alleleFrequency", "<", "0.5")]
    assert (await counts(pool, variant=region, filters=rare))[DATASET_A] == \
        sum(1 for a in in_region if a.allele_number and a.allele_count / a.allele_number < 0.5)
    both = [Filter("alleleCount", ">=", "2")]
    assert (await counts(pool, variant=region, filters=both))[DATASET_A] == \
        sum(1 for a in in_region if a.allele_count >= 2)
    assert (await counts(pool, "biosamples", filters=filters_from_request("collectionDate>2020")))[DATASET_A] == 3
    assert (await counts(pool, "biosamples", filters=filters_from_request("id=N%")))[DATASET_A] == 3
    assert (await counts(pool, "biosamples", filters=filters_from_request("id!N%")))[DATASET_A] == 1
    assert (await counts(pool, "individuals", filters=filters_from_request("sex!female")))[DATASET_A] == 3
    assert (await counts(pool, "g_variants", filters=filters_from_request("referenceName=chr20"))) == {
        DATASET_A: sum(1 for a in indexed.a if a.contig == "20"), DATASET_B: sum(1 for a in indexed.b if a.contig == "20")}


async def test_dataset_terms_keywords_and_data_use(pool: Any, indexed: Indexed) -> None:
    assert await counts(pool, "datasets", filters=filters_from_request("keyword:epilepsy")) == {
        DATASET_A: 1, DATASET_B: 0}
    assert await counts(pool, "datasets", filters=[Filter("DUO:0000042")]) == {DATASET_A: 1, DATASET_B: 1}
    assert await counts(pool, "datasets", filters=[Filter("DUO:0000042", include_descendant_terms=False)]) == {
        DATASET_A: 0, DATASET_B: 1}
    assert await counts(pool, filters=filters_from_request("keyword:controls")) == {DATASET_A: 0,
                                                                                   DATASET_B: len(indexed.b)}
    spec_site = ask(referenceName="20", start=[14369], alternateBases="A")
    assert await counts(pool, "datasets", variant=spec_site) == {DATASET_A: 1, DATASET_B: 1}
    found = await search(pool, "datasets", records_for={DATASET_A, DATASET_B})
    for match in found.matches:
        assert beacon_spec.record_errors("datasets", match.records[0]) == []
    assert found.matches[0].records[0]["dataUseConditions"]["duoDataUse"][0]["id"] == "DUO:0000006"


async def test_what_the_beacon_cannot_filter_on_is_a_warning_and_matches_nothing(pool: Any, indexed: Indexed) -> None:
    found = await search(pool, "individuals", filters=filters_from_request("HP:0001250,age:>P70Y,ORPHA:558"))
    assert [m.count for m in found.matches] == [0, 0]
    assert [(w.code, w.filter_id) for w in found.warnings] == [("unknown_filter", "age"), ("unknown_term", "ORPHA:558")]


async def test_links_between_entry_types(pool: Any, indexed: Indexed) -> None:
    assert (await counts(pool, linked=("individuals", "HG02102")))[DATASET_A] == \
        sum(1 for a in indexed.a if "HG02102" in a.carriers)
    of_b = await search(pool, linked=("datasets", DATASET_B))
    assert [(m.dataset_id, m.count) for m in of_b.matches] == [(DATASET_B, len(indexed.b))]
    spec = indexed.accessions["spec-v4.3.vcf.gz"]
    assert (await counts(pool, linked=("analyses", spec)))[DATASET_A] == \
        sum(1 for a in indexed.a if a.carriers & {"NA00001", "NA00002", "NA00003"})
    shared = next(a for a in indexed.a if {"HG02102", "NA20787"} <= a.carriers)
    people = await search(pool, "individuals", linked=("g_variants", shared.id), records_for={DATASET_A})
    assert {r["id"] for r in people.matches[0].records} == {person_of(c) for c in shared.carriers} - {None}
    one = await search(pool, entry_id=shared.id, records_for={DATASET_A})
    assert [r["variantInternalId"] for r in one.matches[0].records] == [shared.id]
    assert (await counts(pool, "individuals", linked=("runs", indexed.run)))[DATASET_A] == 1  # NORMAL's person
    runs = await search(pool, "runs", filters=[Filter(EPILEPSY)], records_for={DATASET_A})
    assert [r["id"] for r in runs.matches[0].records] == [indexed.run]
    assert runs.matches[0].records[0]["biosampleId"] == "NORMAL"
    analyses = await search(pool, "analyses", linked=("individuals", "P-SPEC"), records_for={DATASET_A})
    assert [r["id"] for r in analyses.matches[0].records] == [spec]


async def test_records_of_every_entry_type_follow_the_default_model(pool: Any, indexed: Indexed) -> None:
    for entry_type in ("individuals", "biosamples", "runs", "analyses", "datasets"):
        found = await search(pool, entry_type, records_for={DATASET_A}, limit=50)
        records = found.matches[0].records
        assert records, entry_type
        for record in records:
            assert beacon_spec.record_errors(entry_type, record) == [], (entry_type, record)
    people = {r["id"]: r for r in (await search(pool, "individuals", records_for={DATASET_A})).matches[0].records}
    assert people["HG02102"]["sex"] == {"id": "NCIT:C16576", "label": "female"}
    assert people["HG02102"]["phenotypicFeatures"] == [{"featureType": {"id": FOCAL_SEIZURE,
                                                                        "label": "Focal-onset seizure"}}]


async def test_counts_read_the_position_index_and_fetch_no_rows(pool: Any, indexed: Indexed,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """What the bench's single-position, 1 kb and 1 Mb queries run: plans over the (contig, start) index."""
    plans: list[list[str]] = []
    fetch = query._fetch

    async def explained(conn: Any, plan: Any, statement: str) -> Any:
        text, values = plan.sql.bind(statement)
        if "count(*)" in statement:
            rows = await conn.fetch("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + text, *values)
            plans.append([r[0] for r in rows if "never executed" not in r[0]])
        return await fetch(conn, plan, statement)
    monkeypatch.setattr(query, "_fetch", explained)
    partition = index.partition_name(await pool.fetchval(
        "SELECT dataset_key FROM discovery.datasets WHERE dataset_id = $1", DATASET_A))
    allele = next(a for a in indexed.a if a.contig == "21" and a.kind == "SNP")
    for variant in (ask(referenceName="21", start=[allele.start], alternateBases=allele.alt),
                    ask(referenceName="21", start=[allele.start], end=[allele.start + 1000]),
                    ask(referenceName="21", start=[allele.start], end=[allele.start + MAX_RANGE])):
        result = await search(pool, variant=variant, records_for=(), dataset_ids=[DATASET_A])
        assert result.matches[0].count > 0 and result.matches[0].records == []
    assert len(plans) == 3
    for lines in plans:
        text = "\n".join(lines)
        assert f"Seq Scan on {partition}" not in text, text
        assert re.search(rf"(Index Scan using \S+ on|Bitmap Heap Scan on) {partition}\b", text), text
        assert "Aggregate" in text
