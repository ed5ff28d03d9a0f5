"""The discovery index written: a released dataset's variants, samples, individuals, biosamples, files and terms.

Only the indexer worker (``consumers/indexer.py``) calls these; the Beacon and the catalogue read
the tables (migration ``0006_discovery.sql``) through ``infra.discovery.query``.

``index_dataset`` loads one dataset:

1. ``discovery.datasets`` gets the dataset in state ``indexing`` (and its ``dataset_key``).
2. Its variants go into a table of their own, ``discovery.variants_<key>``, created in the same
   transaction as the COPY that fills it (``COPY ... FREEZE``: no later rewrite to set hint bits).
   The files are read in a worker thread (``vcf.VariantFileReader``), turned into COPY text there,
   and streamed to PostgreSQL, so the event loop stays free and the server parses while Python
   reads. Several variant files: each is copied in turn; the contigs that more than one file holds
   are then merged in place (one ``DELETE ... RETURNING`` feeding an ``INSERT ... SELECT ... GROUP
   BY``) so that the same allele in two files is one row (counts summed, carriers concatenated: each
   file's samples have their own indexes). Files split by chromosome share no contig: nothing to merge.
3. The ``(contig, start)`` index is built on the full table (faster than maintaining it row by
   row), the table analysed, and a ``CHECK (dataset_key = <key>)`` added so attaching needs no scan.
4. One transaction attaches it as the dataset's partition of ``discovery.variants``, writes the
   samples, individuals, biosamples, files and filtering terms, and sets the state ``indexed``
   with the counts. Until then queries see nothing of the dataset; after, all of it.

Idempotent: a dataset indexed (or indexed and since unindexed) from the same ``dataset.released``
event is not loaded again; the summary of the first load is returned. A load interrupted midway
(state ``indexing``) is cleared and redone. One dataset is loaded by one caller at a time (a
PostgreSQL advisory lock per dataset), so two indexers replaying the same log do not collide.

``unindex_dataset`` takes a dataset out: the state becomes ``unindexed`` in one short transaction
(every query filters on ``state = 'indexed'``, so it is gone from answers at that commit), then the
partition is detached without blocking queries (``DETACH PARTITION ... CONCURRENTLY``) and dropped.
``index_metadata`` replaces what the description says (individuals, biosamples, terms, access
rights, the description itself) of an indexed dataset and keeps its variants.

Samples: each column of each variant file is a sample (``sample_idx`` numbers them across the
dataset's files in file order). A column named like a described biosample is that biosample and its
individual; one named like a described individual is that individual; any other is a sample only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from genomebus.infra.discovery import ontology
from genomebus.infra.discovery.vcf import ROW_COLUMNS, Row, VariantFileError, VariantFileReader
from genomebus.schemas.reception import DatasetDescription

log = logging.getLogger("genomebus.discovery")

SCHEMA = "discovery"
VARIANT_FORMATS = ("VCF", "BCF")
_LOCK_NAMESPACE = 0x64697363  # "disc": advisory locks per dataset
_BATCH = 20_000
_LONG_S = 6 * 3600.0
"""The timeout of a load's long statements (COPY, CREATE INDEX, waiting for another loader's lock): the pool's
``command_timeout`` (60 s) is what asyncpg applies when none is given, and a 10 M-variant COPY takes longer."""


@dataclass(frozen=True)
class VariantSource:
    """A variant file of the dataset as a local path pysam can read (the worker decrypts archived ones first)."""

    accession: str
    path: Path
    drs_id: str | None = None
    format: str = "VCF"
    size: int = 0
    metrics: Mapping[str, Any] = field(default_factory=dict)
    archived_at: datetime | None = None


@dataclass(frozen=True)
class FileInfo:
    """A file of the dataset indexed only as a run or analysis (BAM, CRAM, FASTQ): no variants read."""

    accession: str
    format: str
    drs_id: str | None = None
    size: int = 0
    sample_names: tuple[str, ...] = ()
    metrics: Mapping[str, Any] = field(default_factory=dict)
    archived_at: datetime | None = None


@dataclass(frozen=True)
class IndexSummary:
    """What the index holds for one dataset (the content of ``dataset.indexed``)."""

    dataset_id: str
    release_event_id: UUID
    state: str
    variants: int
    samples: int
    individuals: int
    biosamples: int
    assembly: str | None
    max_variant_length: int
    variant_files: tuple[str, ...]
    other_files: tuple[str, ...]


def partition_name(dataset_key: int) -> str:
    return f"variants_{dataset_key}"


# -- loading ----------------------------------------------------------------------------------------


async def index_dataset(pool: asyncpg.Pool, *, dataset_id: str, release_event_id: UUID,
                        description: DatasetDescription, variant_files: Sequence[VariantSource],
                        other_files: Sequence[FileInfo] = ()) -> IndexSummary:
    """Load a released dataset into the index (see the module docstring); the summary of what it holds.

    Raises ``vcf.VariantFileError`` (its ``accession`` set) for a variant file that cannot be read:
    nothing of the dataset is served, and the caller records it with ``mark_failed``.
    """
    async with pool.acquire() as conn, _dataset_lock(conn, dataset_id):
        done = await _summary(conn, dataset_id)
        if done is not None and done.release_event_id == release_event_id and done.state in ("indexed", "unindexed"):
            return done
        if done is not None:
            await _drop_dataset(conn, dataset_id)
        key = await conn.fetchval(
            f"INSERT INTO {SCHEMA}.datasets (dataset_id, release_event_id, state, access_rights, description) "
            "VALUES ($1, $2, 'indexing', $3, $4::jsonb) ON CONFLICT (dataset_id) DO UPDATE SET "
            "release_event_id = $2, state = 'indexing', access_rights = $3, description = $4::jsonb, "
            "variants = 0, samples = 0, individuals = 0, biosamples = 0, max_variant_length = 0, assembly = NULL, "
            "indexed_at = NULL, unindexed_at = NULL, unindexed_reason = NULL RETURNING dataset_key",
            dataset_id, release_event_id, description.access_rights, _description_json(description))
        started = time.perf_counter()
        loaded = await _load_variants(conn, key, variant_files)
        attach_started = time.perf_counter()
        await _attach(conn, key, dataset_id, description, loaded, variant_files, other_files)
        loaded.seconds["attach"] = time.perf_counter() - attach_started
        log.info("discovery: %s loaded, %d variants in %.1f s (%s)", dataset_id, loaded.variants,
                 time.perf_counter() - started, ", ".join(f"{k} {v:.1f} s" for k, v in loaded.seconds.items()))
        summary = await _summary(conn, dataset_id)
        assert summary is not None
        return summary


async def mark_failed(pool: asyncpg.Pool, *, dataset_id: str, release_event_id: UUID,
                      description: DatasetDescription) -> None:
    """A dataset whose files could not be indexed: recorded as ``failed``, nothing of it served."""
    async with pool.acquire() as conn, _dataset_lock(conn, dataset_id):
        await _drop_dataset(conn, dataset_id)
        await conn.execute(
            f"INSERT INTO {SCHEMA}.datasets (dataset_id, release_event_id, state, access_rights, description) "
            "VALUES ($1, $2, 'failed', $3, $4::jsonb) ON CONFLICT (dataset_id) DO UPDATE SET "
            "release_event_id = $2, state = 'failed', access_rights = $3, description = $4::jsonb",
            dataset_id, release_event_id, description.access_rights, _description_json(description))


@dataclass
class _Loaded:
    variants: int = 0
    max_length: int = 0
    assembly: str | None = None
    samples: list[tuple[str, str]] = field(default_factory=list)  # (file accession, column name) by sample_idx
    seconds: dict[str, float] = field(default_factory=dict)  # how long each step took, for the log


async def _load_variants(conn: asyncpg.Connection, key: int, files: Sequence[VariantSource]) -> _Loaded:
    """COPY every variant file into the dataset's own table (not attached yet), then index it."""
    loaded = _Loaded()
    table = partition_name(key)
    readers = []
    for source in files:
        with _naming(source):
            reader = await asyncio.to_thread(VariantFileReader, source.path, sample_offset=len(loaded.samples))
        readers.append((source, reader))
        loaded.samples += [(source.accession, name) for name in reader.header.samples]
        loaded.assembly = loaded.assembly or reader.header.assembly
    columns = ", ".join(f'"{c}"' for c in ROW_COLUMNS)
    started = time.perf_counter()
    contigs_of: list[set[str]] = []
    async with conn.transaction():
        await conn.execute(f"DROP TABLE IF EXISTS {SCHEMA}.{table}; "
                           f"CREATE TABLE {SCHEMA}.{table} (LIKE {SCHEMA}.variants); "
                           f"ALTER TABLE {SCHEMA}.{table} ALTER COLUMN dataset_key SET DEFAULT {key:d}")
        for source, reader in readers:
            with _naming(source):
                contigs_of.append(await _copy(conn, table, reader, loaded))
        shared = sorted({c for i, mine in enumerate(contigs_of) for c in mine
                         if any(c in other for other in contigs_of[i + 1:])})
        if shared:  # the same allele may be in several files: those contigs' rows merged, one per allele
            await conn.execute(
                f"WITH moved AS (DELETE FROM {SCHEMA}.{table} WHERE contig = ANY($1::text[]) RETURNING *) "
                f"INSERT INTO {SCHEMA}.{table} ({columns}) SELECT contig, start, \"end\", ref, alt, "
                "min(variant_type), sum(allele_count), sum(allele_number), sum(carriers), "
                f"ARRAY(SELECT c FROM unnest({SCHEMA}.concat_arrays(carrier_samples)) c ORDER BY c) "
                "FROM moved GROUP BY contig, start, \"end\", ref, alt", shared, timeout=_LONG_S)
            loaded.variants = await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.{table}", timeout=_LONG_S)
    loaded.seconds["copy"] = time.perf_counter() - started
    started = time.perf_counter()
    await conn.execute(f"CREATE INDEX ON {SCHEMA}.{table} (contig, start)", timeout=_LONG_S)
    loaded.seconds["index"] = time.perf_counter() - started
    started = time.perf_counter()
    await conn.execute(f"ANALYZE {SCHEMA}.{table}", timeout=_LONG_S)
    loaded.seconds["analyze"] = time.perf_counter() - started
    await conn.execute(f"ALTER TABLE {SCHEMA}.{table} ADD CONSTRAINT {table}_dataset "
                       f"CHECK (dataset_key = {key:d})", timeout=_LONG_S)
    return loaded


async def _copy(conn: asyncpg.Connection, table: str, reader: VariantFileReader, loaded: _Loaded) -> set[str]:
    """Stream one file's rows as COPY text, formatted in a worker thread; the contigs it held.

    ``FREEZE``: the table was created in this transaction, so its rows are written frozen, once.
    """
    batches = reader.batches(_BATCH)
    lengths = [0]
    contigs: set[str] = set()

    def next_chunk() -> bytes | None:
        batch = next(batches, None)
        if batch is None:
            return None
        lengths[0] = max(lengths[0], max(row[2] - row[1] for row in batch))
        contigs.update({batch[0][0], batch[-1][0]} if batch[0][0] == batch[-1][0] else {row[0] for row in batch})
        loaded.variants += len(batch)
        return copy_text(batch)

    async def chunks() -> AsyncIterator[bytes]:
        while (chunk := await asyncio.to_thread(next_chunk)) is not None:
            yield chunk

    await conn.copy_to_table(table, schema_name=SCHEMA, source=chunks(), columns=list(ROW_COLUMNS),
                             freeze=True, timeout=_LONG_S)
    loaded.max_length = max(loaded.max_length, lengths[0])
    return contigs


@contextlib.contextmanager
def _naming(source: VariantSource) -> Iterator[None]:
    """A ``VariantFileError`` raised while reading ``source`` names its accession."""
    try:
        yield
    except VariantFileError as exc:
        exc.accession = exc.accession or source.accession
        raise


def copy_text(rows: Sequence[Row]) -> bytes:
    """Rows in PostgreSQL's COPY text format.

    A VCF field holds no tab or line end (they separate fields and records), so only a backslash
    needs escaping, and only names and alleles could hold one.

    The reader hands out one carriers list per call pattern, shared by every row with those calls: each
    list is written out once per batch (keyed by identity, which is stable while ``rows`` holds them).
    """
    out = []
    literals: dict[int, str] = {}
    for contig, start, end, ref, alt, kind, ac, an, carriers, samples in rows:
        literal = literals.get(id(samples))
        if literal is None:
            literal = literals[id(samples)] = "{" + ",".join(map(str, samples)) + "}"
        if "\\" in contig or "\\" in ref or "\\" in alt:
            contig, ref, alt = _text(contig), _text(ref), _text(alt)
        out.append(f"{contig}\t{start}\t{end}\t{ref}\t{alt}\t{kind}\t{ac}\t{an}\t{carriers}\t{literal}\n")
    return "".join(out).encode()


def _text(value: str) -> str:
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


async def _attach(conn: asyncpg.Connection, key: int, dataset_id: str, description: DatasetDescription,
                  loaded: _Loaded, variant_files: Sequence[VariantSource], other_files: Sequence[FileInfo]) -> None:
    samples = sample_rows(key, loaded.samples, description)
    files = [(key, f.accession, f.drs_id or f.accession, f.format, f.size,
              [name for accession, name in loaded.samples if accession == f.accession],
              json.dumps(dict(f.metrics)), f.archived_at) for f in variant_files]
    files += [(key, f.accession, f.drs_id or f.accession, f.format, f.size, list(f.sample_names),
               json.dumps(dict(f.metrics)), f.archived_at) for f in other_files]
    async with conn.transaction():
        await conn.execute(f"ALTER TABLE {SCHEMA}.variants ATTACH PARTITION {SCHEMA}.{partition_name(key)} "
                           f"FOR VALUES IN ({key:d})", timeout=_LONG_S)
        await conn.execute(f"ALTER TABLE {SCHEMA}.{partition_name(key)} DROP CONSTRAINT {partition_name(key)}_dataset")
        await _clear_rows(conn, key)
        await conn.copy_records_to_table("samples", schema_name=SCHEMA, records=samples,
                                         columns=["dataset_key", "sample_idx", "file_accession", "sample_name",
                                                  "individual_id", "biosample_id"])
        await conn.copy_records_to_table("files", schema_name=SCHEMA, records=files,
                                         columns=["dataset_key", "accession", "drs_id", "format", "size",
                                                  "sample_names", "metrics", "archived_at"])
        individuals, biosamples = await _write_metadata(conn, key, description)
        await conn.execute(
            f"UPDATE {SCHEMA}.datasets SET state = 'indexed', variants = $2, samples = $3, individuals = $4, "
            "biosamples = $5, max_variant_length = $6, assembly = $7, indexed_at = now() WHERE dataset_key = $1",
            key, loaded.variants, len(samples), individuals, biosamples, loaded.max_length, loaded.assembly)


def sample_rows(key: int, samples: Sequence[tuple[str, str]],
                description: DatasetDescription) -> list[tuple[int, int, str, str, str | None, str | None]]:
    """(dataset_key, sample_idx, file, column name, individual id, biosample id) for each genotyped column."""
    biosamples = {b.id: b for b in description.biosamples}
    individuals = {i.id for i in description.individuals}
    out = []
    for index, (accession, name) in enumerate(samples):
        if name in biosamples:
            individual, biosample = biosamples[name].individual_id, name
        elif name in individuals:
            individual, biosample = name, None
        else:
            individual = biosample = None
        out.append((key, index, accession, name, individual, biosample))
    return out


def filtering_terms(description: DatasetDescription) -> list[tuple[str, str | None, str, str]]:
    """(term, label, kind, scope) of what the description holds: sex, phenotypes, diseases, sample types, keywords."""
    terms: dict[tuple[str, str], tuple[str, str | None, str, str]] = {}

    def add(term: str, label: str | None, kind: str, scope: str) -> None:
        seen = terms.get((term, scope))
        if seen is None or seen[1] is None:
            terms[(term, scope)] = (term, label, kind, scope)

    for individual in description.individuals:
        sex = ontology.sex_term(individual.sex)
        add(sex.id, sex.label, "ontology", "individuals")
        for item in (*individual.phenotypes, *individual.diseases):
            add(item.id, item.label, "ontology", "individuals")
    for biosample in description.biosamples:
        if biosample.sample_type is not None:
            add(biosample.sample_type.id, biosample.sample_type.label, "ontology", "biosamples")
    for keyword in description.keywords:
        add(f"keyword:{keyword.strip().lower()}", f"datasets described with keyword {keyword.strip()!r}", "custom",
            "datasets")
    return list(terms.values())


async def _write_metadata(conn: asyncpg.Connection, key: int, description: DatasetDescription) -> tuple[int, int]:
    """Individuals, biosamples and terms of ``description`` (the old ones of the dataset deleted first)."""
    await _clear_metadata(conn, key)
    individuals = [(key, i.id, ontology.sex_term(i.sex).id, [p.id for p in i.phenotypes], [d.id for d in i.diseases])
                   for i in {i.id: i for i in description.individuals}.values()]
    biosamples = [(key, b.id, b.individual_id, b.sample_type.id if b.sample_type else None, b.collected)
                  for b in {b.id: b for b in description.biosamples}.values()]
    terms = [(key, *term) for term in filtering_terms(description)]
    await conn.copy_records_to_table("individuals", schema_name=SCHEMA, records=individuals,
                                     columns=["dataset_key", "individual_id", "sex", "phenotypes", "diseases"])
    await conn.copy_records_to_table("biosamples", schema_name=SCHEMA, records=biosamples,
                                     columns=["dataset_key", "biosample_id", "individual_id", "sample_type",
                                              "collected"])
    await conn.copy_records_to_table("terms", schema_name=SCHEMA, records=terms,
                                     columns=["dataset_key", "term", "label", "kind", "scope"])
    return len(individuals), len(biosamples)


# -- metadata updates and withdrawal -------------------------------------------------------------------


async def index_metadata(pool: asyncpg.Pool, *, dataset_id: str,
                         description: DatasetDescription) -> IndexSummary | None:
    """Replace an indexed dataset's description-derived rows (variants kept); None if it is not indexed."""
    async with pool.acquire() as conn, _dataset_lock(conn, dataset_id), conn.transaction():
        key = await conn.fetchval(f"SELECT dataset_key FROM {SCHEMA}.datasets WHERE dataset_id = $1 "
                                  "AND state = 'indexed' FOR UPDATE", dataset_id)
        if key is None:
            return None
        individuals, biosamples = await _write_metadata(conn, key, description)
        names = await conn.fetch(f"SELECT file_accession, sample_name FROM {SCHEMA}.samples "
                                 "WHERE dataset_key = $1 ORDER BY sample_idx", key)
        mapped = sample_rows(key, [(r["file_accession"], r["sample_name"]) for r in names], description)
        await conn.executemany(f"UPDATE {SCHEMA}.samples SET individual_id = $5, biosample_id = $6 "
                               "WHERE dataset_key = $1 AND sample_idx = $2 AND file_accession = $3 "
                               "AND sample_name = $4", mapped)
        await conn.execute(f"UPDATE {SCHEMA}.datasets SET access_rights = $2, description = $3::jsonb, "
                           "individuals = $4, biosamples = $5 WHERE dataset_key = $1",
                           key, description.access_rights, _description_json(description), individuals, biosamples)
    return await summary(pool, dataset_id)


async def unindex_dataset(pool: asyncpg.Pool, dataset_id: str, reason: str) -> bool:
    """Take a dataset out of discovery; False if it was not in it (never indexed, or out already)."""
    async with pool.acquire() as conn, _dataset_lock(conn, dataset_id):
        async with conn.transaction():
            key = await conn.fetchval(
                f"UPDATE {SCHEMA}.datasets SET state = 'unindexed', unindexed_at = now(), unindexed_reason = $2 "
                "WHERE dataset_id = $1 AND state IN ('indexed', 'indexing', 'failed') RETURNING dataset_key",
                dataset_id, reason)
            if key is None:
                return False
            await _clear_rows(conn, key)
            await _clear_metadata(conn, key)
        await _drop_partition(conn, key)
        return True


async def forget_dataset(pool: asyncpg.Pool, dataset_id: str) -> None:
    """Remove every trace of a dataset from the index, as if it had never been released (before a replay)."""
    async with pool.acquire() as conn, _dataset_lock(conn, dataset_id):
        await _drop_dataset(conn, dataset_id)


async def forget_all(pool: asyncpg.Pool) -> None:
    """Empty the whole index (every partition dropped, every row deleted), before rebuilding it by replay."""
    for dataset_id in [r["dataset_id"] for r in await pool.fetch(f"SELECT dataset_id FROM {SCHEMA}.datasets")]:
        await forget_dataset(pool, dataset_id)


async def _drop_dataset(conn: asyncpg.Connection, dataset_id: str) -> None:
    key = await conn.fetchval(f"SELECT dataset_key FROM {SCHEMA}.datasets WHERE dataset_id = $1", dataset_id)
    if key is None:
        return
    async with conn.transaction():
        await conn.execute(f"DELETE FROM {SCHEMA}.datasets WHERE dataset_key = $1", key)
        await _clear_rows(conn, key)
        await _clear_metadata(conn, key)
    await _drop_partition(conn, key)


async def _clear_rows(conn: asyncpg.Connection, key: int) -> None:
    await conn.execute(f"DELETE FROM {SCHEMA}.samples WHERE dataset_key = {key:d}; "
                       f"DELETE FROM {SCHEMA}.files WHERE dataset_key = {key:d}")


async def _clear_metadata(conn: asyncpg.Connection, key: int) -> None:
    await conn.execute(f"DELETE FROM {SCHEMA}.individuals WHERE dataset_key = {key:d}; "
                       f"DELETE FROM {SCHEMA}.biosamples WHERE dataset_key = {key:d}; "
                       f"DELETE FROM {SCHEMA}.terms WHERE dataset_key = {key:d}")


async def _drop_partition(conn: asyncpg.Connection, key: int) -> None:
    """Detach the dataset's partition without blocking queries, then drop it (and any half-loaded table)."""
    table = f"{SCHEMA}.{partition_name(key)}"
    pending = await conn.fetchval("SELECT i.inhdetachpending FROM pg_inherits i WHERE i.inhrelid = "
                                  "to_regclass($1) AND i.inhparent = $2::regclass", table, f"{SCHEMA}.variants")
    if pending is not None:
        mode = "FINALIZE" if pending else "CONCURRENTLY"
        await conn.execute(f"ALTER TABLE {SCHEMA}.variants DETACH PARTITION {table} {mode}", timeout=_LONG_S)
    await conn.execute(f"DROP TABLE IF EXISTS {table}", timeout=_LONG_S)


# -- reading back -------------------------------------------------------------------------------------


async def summary(pool: asyncpg.Pool | asyncpg.Connection, dataset_id: str) -> IndexSummary | None:
    """What the index holds for a dataset (any state), or None if it never saw it."""
    if isinstance(pool, asyncpg.Pool):
        async with pool.acquire() as conn:
            return await _summary(conn, dataset_id)
    return await _summary(pool, dataset_id)


async def _summary(conn: asyncpg.Connection, dataset_id: str) -> IndexSummary | None:
    row = await conn.fetchrow(
        f"SELECT d.*, coalesce((SELECT array_agg(f.accession ORDER BY f.accession) FROM {SCHEMA}.files f "
        f"WHERE f.dataset_key = d.dataset_key AND f.format = ANY($2::text[])), '{{}}') AS variant_files, "
        f"coalesce((SELECT array_agg(f.accession ORDER BY f.accession) FROM {SCHEMA}.files f "
        f"WHERE f.dataset_key = d.dataset_key AND NOT f.format = ANY($2::text[])), '{{}}') AS other_files "
        f"FROM {SCHEMA}.datasets d WHERE d.dataset_id = $1", dataset_id, list(VARIANT_FORMATS))
    if row is None:
        return None
    return IndexSummary(dataset_id=row["dataset_id"], release_event_id=row["release_event_id"], state=row["state"],
                        variants=row["variants"], samples=row["samples"], individuals=row["individuals"],
                        biosamples=row["biosamples"], assembly=row["assembly"],
                        max_variant_length=row["max_variant_length"], variant_files=tuple(row["variant_files"]),
                        other_files=tuple(row["other_files"]))


async def state(pool: asyncpg.Pool | asyncpg.Connection, dataset_id: str) -> str | None:
    """``indexing``, ``indexed``, ``unindexed``, ``failed``, or None for a dataset the index never saw."""
    return await pool.fetchval(f"SELECT state FROM {SCHEMA}.datasets WHERE dataset_id = $1", dataset_id)


# -- helpers ---------------------------------------------------------------------------------------------


def _description_json(description: DatasetDescription) -> str:
    return json.dumps(DatasetDescription.model_validate(description.description_fields()).model_dump(mode="json"))


class _DatasetLock:
    def __init__(self, conn: asyncpg.Connection, dataset_id: str) -> None:
        self.conn, self.dataset_id = conn, dataset_id

    async def __aenter__(self) -> None:
        await self.conn.execute("SELECT pg_advisory_lock($1, hashtext($2))", _LOCK_NAMESPACE, self.dataset_id,
                                timeout=_LONG_S)

    async def __aexit__(self, *exc: object) -> None:
        await self.conn.execute("SELECT pg_advisory_unlock($1, hashtext($2))", _LOCK_NAMESPACE, self.dataset_id)


def _dataset_lock(conn: asyncpg.Connection, dataset_id: str) -> _DatasetLock:
    """One caller at a time per dataset (a session lock: it spans the several transactions of a load)."""
    return _DatasetLock(conn, dataset_id)
