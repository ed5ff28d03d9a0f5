#!/usr/bin/env python
"""Reception throughput benchmark: submit → QC → Crypt4GH archive, against the same work done directly.

Run from the repository root::

    .venv/bin/python bench/bench_reception.py [--big-mb 1024] [--data-dir DIR] [--keep]

Without ``--data-dir`` a fresh local stack is started in a new 0755 directory
under /var/tmp (PostgreSQL runs as ``nobody`` and must traverse it), so the
workers' peak RSS reflects this run only; it is stopped and removed at the end
(``--keep`` leaves it running and keeps the directory). With ``--data-dir``
pointing at a running stack, that stack is used and left running; pointing at
a stopped one starts it there and stops it afterwards (unless ``--keep``).

Files, each submitted into its own freshly registered dataset:

1. data/variants/HG02102.vcf.gz (1000 Genomes chr21, ~3 MB);
2. data/reads/htsnexus_test_NA12878.bam (~2.6 MB);
3. a synthetic coordinate-sorted BAM of about ``--big-mb`` MB (MB = 10^6 bytes), random
   sequences and qualities so that it does not compress away; generated once with pysam
   and cached in bench/.cache/ by size.

For each file:

- **direct**: in this process, without the bus: read every record with pysam, sha256 + md5
  in one streaming pass, Crypt4GH-encrypt into a temporary file for a freshly generated key
  pair (``crypt4gh.lib.encrypt`` with streams); three passes, timed together and apart;
- **bus**: from the start of ``producers.submit.submit_file`` until ``GET /files/{id}``
  says ``archived`` (or ``qc_failed``, or the per-file limit: 120 s + 1.05 s per MB, so
  about 20 min for 1 GB); the event times in the file's history split it into submit,
  QC and archive;
- **ratio** = bus MB/s ÷ direct MB/s;
- **peak RSS** of the QC and archive workers: ``VmHWM`` of the PIDs in ``<data_dir>/stack.json``,
  read before and after each file (VmHWM is the peak since the process started).

The bus does more than the direct path by design (upload, a download for QC, an index built
by QC, a download to encrypt, the ciphertext uploaded, read back and decrypted to verify);
the ratio is the price of all of it. A warm-up file goes through the whole pipeline first,
so that consumer-group joins are not timed. If a file does not reach ``archived``, the state
it reached, its ``qc_reasons``, any dead letter and the worker logs' last errors are reported.

Figures are printed as tables and written to bench/results/reception-<timestamp>.json.
Every wait is bounded by a deadline, so the script always ends by itself.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import platform
import random
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402  (puts the repository root on sys.path)
    BENCH_DIR, REPO, BenchTimeout, Deadline, console, data_dir_for, run_prefix, run_timed, with_stack,
    write_results,
)

import asyncpg  # noqa: E402
import crypt4gh.lib  # noqa: E402
import httpx  # noqa: E402
import pysam  # noqa: E402
from crypt4gh import sodium  # noqa: E402
from rich.table import Table  # noqa: E402

from genomebus.consumers.qc_checks import BGZF_EOF, HTS_THREADS  # noqa: E402
from genomebus.infra import db, kafka, stack  # noqa: E402
from genomebus.infra.settings import Settings  # noqa: E402
from genomebus.producers.datasets import describe_dataset, register_dataset  # noqa: E402
from genomebus.producers.submit import submit_file  # noqa: E402

CACHE_DIR = BENCH_DIR / ".cache"
DATA = REPO / "data"  # the repository's test data (data/README.md)
VCF = DATA / "variants" / "HG02102.vcf.gz"
BAM = DATA / "reads" / "htsnexus_test_NA12878.bam"
WARMUP = DATA / "variants" / "test.vcf.gz"

MB = 1_000_000
CHUNK = 1 << 20
TERMINAL_STATES = ("archived", "qc_failed")
POLL_S = 0.25
DEADLETTER_CHECK_S = 5.0
GENERATOR_VERSION = 1  # bump when the synthetic BAM changes, so the cache is not reused
READ_LENGTH = 150
GRCH38 = (  # (name, length) of the autosomes: what the synthetic BAM's header declares
    ("chr1", 248956422), ("chr2", 242193529), ("chr3", 198295559), ("chr4", 190214555), ("chr5", 181538259),
    ("chr6", 170805979), ("chr7", 159345973), ("chr8", 145138636), ("chr9", 138394717), ("chr10", 133797422),
    ("chr11", 135086622), ("chr12", 133275309), ("chr13", 114364328), ("chr14", 107043718),
    ("chr15", 101991189), ("chr16", 90338345), ("chr17", 83257441), ("chr18", 80373285), ("chr19", 58617616),
    ("chr20", 64444167), ("chr21", 46709983), ("chr22", 50818468),
)


def pipeline_limit(size: int) -> float:
    """Seconds a file may take from submit to archived: 120 s + 1.05 s per MB (about 20 min for 1 GB)."""
    return 120 + 1.05 * size / MB


def direct_limit(size: int) -> float:
    return 60 + 0.5 * size / MB


# -- results --------------------------------------------------------------------------------------


@dataclass
class Direct:
    records: int = 0
    pysam_s: float = 0.0
    digest_s: float = 0.0
    encrypt_s: float = 0.0
    encrypted_size: int = 0
    sha256: str = ""
    md5: str = ""

    @property
    def seconds(self) -> float:
        return self.pysam_s + self.digest_s + self.encrypt_s


@dataclass
class Rss:
    """VmHWM / VmRSS of one worker process, in MB (10^6 bytes)."""

    pid: int | None
    restarts: int | None
    hwm_mb: float | None
    rss_mb: float | None


@dataclass
class FileRun:
    name: str
    path: str
    size: int
    dataset_id: str = ""
    file_id: str = ""
    accession: str | None = None
    state: str | None = None  # the last state seen through the gateway
    archived: bool = False
    bus_s: float | None = None  # submit start → state seen (archived, or whatever it stopped at)
    submit_s: float | None = None  # submit_file: sha256 pass + upload
    phases: dict[str, float] = field(default_factory=dict)  # from the history's event times
    first_seen: dict[str, float] = field(default_factory=dict)  # state → seconds after submit start
    direct: Direct | None = None
    rss_before: dict[str, Rss] = field(default_factory=dict)
    rss_after: dict[str, Rss] = field(default_factory=dict)
    archive_reused: bool = False
    qc_metrics: dict[str, Any] | None = None
    qc_warnings: list[dict[str, str]] = field(default_factory=list)
    qc_reasons: list[dict[str, str]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    log_tail: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None

    @property
    def mb(self) -> float:
        return self.size / MB

    @property
    def bus_rate(self) -> float | None:
        return self.mb / self.bus_s if self.archived and self.bus_s else None

    @property
    def direct_rate(self) -> float | None:
        return self.mb / self.direct.seconds if self.direct and self.direct.seconds > 0 else None

    @property
    def ratio(self) -> float | None:
        return self.bus_rate / self.direct_rate if self.bus_rate and self.direct_rate else None

    def note(self) -> str:
        notes = []
        if not self.archived:
            why = ", ".join(dict.fromkeys(r["code"] for r in self.qc_reasons)) if self.qc_reasons else ""
            notes.append(f"stopped at {self.state or 'not seen'}" + (f" ({why})" if why else ""))
            if self.dead_letters:
                notes.append(f"dead-lettered by {self.dead_letters[0].get('consumer')}: "
                             f"{self.dead_letters[0].get('reason')}")
        if self.error:
            notes.append(self.error)
        if self.archive_reused:
            notes.append("archive reused an existing copy: archive step not measured")
        for role in ("qc", "archive"):
            b, a = self.rss_before.get(role), self.rss_after.get(role)
            if b and a and (b.pid != a.pid or (b.restarts or 0) != (a.restarts or 0)):
                notes.append(f"{role} worker restarted during this file (VmHWM reset)")
        return "; ".join(notes)


@dataclass
class Results:
    files: list[FileRun] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


# -- the synthetic BAM ------------------------------------------------------------------------------


def big_bam_path(big_mb: int) -> Path:
    return CACHE_DIR / f"synthetic-{big_mb}MB-v{GENERATOR_VERSION}.bam"


def usable_cache(path: Path, target: int) -> bool:
    if not path.exists() or path.stat().st_size < 0.95 * target:
        return False
    with path.open("rb") as fh:
        fh.seek(-len(BGZF_EOF), os.SEEK_END)
        return fh.read() == BGZF_EOF


def generate_bam(path: Path, target: int, deadline: Deadline) -> dict[str, Any]:
    """Coordinate-sorted single-end 150 bp reads with random bases and qualities, until ``target`` bytes.

    Random bases cost ~2 bits and random Phred 2..41 qualities ~5.3 bits each after BGZF,
    so a record is ~170 bytes on disk: about 6 M records per GB.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    rng = random.Random(20240601 + target)
    to_bases = bytes.maketrans(bytes(range(256)), b"ACGT" * 64)
    to_quals = bytes.maketrans(bytes(range(256)), bytes(2 + i % 40 for i in range(256)))
    header = {
        "HD": {"VN": "1.6", "SO": "coordinate"},
        "SQ": [{"SN": name, "LN": length} for name, length in GRCH38],
        "RG": [{"ID": "bench", "SM": "SYNTHETIC", "PL": "ILLUMINA"}],
        "PG": [{"ID": "genomebus-bench", "PN": "bench_reception.py", "VN": str(GENERATOR_VERSION)}],
    }
    started = time.perf_counter()
    records = 0
    next_report = 0.05
    try:
        with pysam.AlignmentFile(str(tmp), "wb", header=header, threads=2) as out:
            seg = pysam.AlignedSegment(out.header)
            tid, pos = 0, 0
            size = 0
            while size < target:
                for _ in range(20_000):
                    pos += rng.randrange(0, 40)
                    if pos + READ_LENGTH > GRCH38[tid][1]:
                        tid, pos = tid + 1, 0
                        if tid == len(GRCH38):
                            raise RuntimeError("the synthetic BAM ran out of reference; use a smaller --big-mb")
                    records += 1
                    seg.query_name = f"gb{records:010d}"
                    seg.flag = 16 if rng.random() < 0.5 else 0
                    seg.reference_id = tid
                    seg.reference_start = pos
                    seg.mapping_quality = 60
                    seg.cigarstring = "150M"
                    seg.query_sequence = rng.randbytes(READ_LENGTH).translate(to_bases).decode()
                    seg.query_qualities = array.array("B", rng.randbytes(READ_LENGTH).translate(to_quals))
                    seg.set_tag("RG", "bench")
                    out.write(seg)
                size = tmp.stat().st_size
                if size >= next_report * target:
                    secs = time.perf_counter() - started
                    console.print(f"  generated {size / MB:,.0f} / {target / MB:,.0f} MB, {records:,} records, "
                                  f"{secs:.0f} s ({size / MB / secs:.1f} MB/s)")
                    next_report += 0.05
                deadline.check("generating the synthetic BAM")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return {"records": records, "seconds": round(time.perf_counter() - started, 1), "size": path.stat().st_size}


def ensure_big_bam(big_mb: int, res: Results) -> Path:
    path = big_bam_path(big_mb)
    target = big_mb * MB
    if usable_cache(path, target):
        console.print(f"using the cached synthetic BAM {path.relative_to(REPO)} ({path.stat().st_size / MB:,.0f} MB)")
        res.info["big_bam"] = {"path": str(path), "cached": True, "size": path.stat().st_size}
        return path
    console.print(f"[bold]generating a ~{big_mb} MB coordinate-sorted BAM into {path.relative_to(REPO)} …")
    made = generate_bam(path, target, Deadline(60 + 0.6 * big_mb))
    res.info["big_bam"] = {"path": str(path), "cached": False, **made}
    console.print(f"  done: {made['records']:,} records, {made['size'] / MB:,.0f} MB in {made['seconds']} s")
    return path


# -- direct: the same work in one process, no bus ----------------------------------------------------


class DeadlineReader:
    """``readinto`` over a file that gives up when the deadline passes (crypt4gh reads with readinto)."""

    def __init__(self, fh: Any, deadline: Deadline) -> None:
        self.fh = fh
        self.deadline = deadline

    def readinto(self, buffer: Any) -> int:
        self.deadline.check("direct Crypt4GH encryption")
        return self.fh.readinto(buffer)


def direct_work(path: Path, fmt: str, deadline: Deadline) -> Direct:
    """pysam over every record, sha256+md5 in one pass, Crypt4GH encryption to a temp file; each timed."""
    out = Direct()
    t = time.perf_counter()
    if fmt == "BAM":
        handle: Any = pysam.AlignmentFile(str(path), "rb", check_sq=False, threads=HTS_THREADS)
        records = handle.fetch(until_eof=True)
    else:
        handle = pysam.VariantFile(str(path))
        records = iter(handle)
    with handle:
        for _ in records:
            out.records += 1
            if out.records % 100_000 == 0:
                deadline.check("direct pysam pass")
    out.pysam_s = time.perf_counter() - t

    t = time.perf_counter()
    sha256, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            sha256.update(chunk)
            md5.update(chunk)
            deadline.check("direct digest pass")
    out.sha256, out.md5 = sha256.hexdigest(), md5.hexdigest()
    out.digest_s = time.perf_counter() - t

    secret_key = os.urandom(32)  # a fresh Crypt4GH (Curve25519) key pair for this run
    public_key = sodium.derive_pk(secret_key)
    t = time.perf_counter()
    with path.open("rb") as src, tempfile.TemporaryFile(prefix="bench-", suffix=".c4gh") as dst:
        crypt4gh.lib.encrypt([(0, os.urandom(32), public_key)], DeadlineReader(src, deadline), dst)
        dst.flush()
        out.encrypted_size = dst.tell()
    out.encrypt_s = time.perf_counter() - t
    return out


# -- the workers' memory --------------------------------------------------------------------------------


def worker_rss(data_dir: Path, role: str) -> Rss:
    comp = stack.read_state(data_dir).get("components", {}).get(role, {})
    pid = comp.get("pid")
    values: dict[str, float] = {}
    if pid:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                key, _, rest = line.partition(":")
                if key in ("VmHWM", "VmRSS"):
                    values[key] = int(rest.split()[0]) * 1024 / MB  # the kernel's "kB" is KiB
    return Rss(pid, comp.get("restarts"), values.get("VmHWM"), values.get("VmRSS"))


def rss_now(data_dir: Path) -> dict[str, Rss]:
    return {role: worker_rss(data_dir, role) for role in ("qc", "archive")}


# -- bus: submit → QC → archived -------------------------------------------------------------------------


async def new_dataset(settings: Settings, publisher: kafka.Publisher, dataset_id: str, title: str) -> None:
    dataset = describe_dataset(dataset_id=dataset_id, title=title, data_use=("DUO:0000042",),
                               description="Registered by bench/bench_reception.py; one file per dataset",
                               keywords=("bench",), publisher="genomebus bench")
    await register_dataset(settings, dataset, actor="bench", publisher=publisher)


class DeadLetterWatch:
    """Notices dead letters about a file, so a refused file does not wait out its whole limit."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = settings.topic("deadletter")
        self.seen = 0

    async def total(self) -> int:
        ends = await kafka.end_offsets(self.settings, [self.topic], timeout=10.0)
        return sum(ends.values())

    async def start(self) -> None:
        self.seen = await self.total()

    async def about(self, file_id: str) -> list[dict[str, Any]]:
        """Dead letters (new since ``start``) whose original event names ``file_id``."""
        if await self.total() <= self.seen:
            return []
        found = []
        async for record in kafka.read_log(self.settings, [self.topic]):
            with contextlib.suppress(ValueError, KeyError):
                body = json.loads(record.value or b"{}")
                original = base64.b64decode(body.get("original_base64", ""))
                if file_id.encode() in original:
                    found.append({k: body.get(k) for k in ("consumer", "reason", "error", "failed_at", "topic",
                                                           "offset")})
        return found


async def wait_for_file(http: httpx.AsyncClient, run: FileRun, started: float, deadline: Deadline,
                        deadletters: DeadLetterWatch, body: dict[str, Any]) -> None:
    """Poll ``GET /files/{id}`` until archived / qc_failed, a dead letter names the file, or the deadline.

    ``body`` is kept up to date with the last answer, so a caller still has it after a timeout.
    """
    next_dl_check = time.monotonic() + DEADLETTER_CHECK_S
    while True:
        try:
            response = await http.get(f"/files/{run.file_id}")
        except httpx.HTTPError as exc:
            response = None
            run.error = f"gateway: {exc!r}"
        now = time.perf_counter()
        if response is not None and response.status_code == 200:
            body.clear()
            body.update(response.json())
            state = body["state"]
            if state not in run.first_seen:
                run.first_seen[state] = round(now - started, 3)
                console.print(f"    {state} after {now - started:.1f} s")
            run.state = state
            if state in TERMINAL_STATES:
                run.bus_s = now - started
                return
        if time.monotonic() >= next_dl_check:
            next_dl_check = time.monotonic() + DEADLETTER_CHECK_S
            if letters := await deadletters.about(run.file_id):
                run.dead_letters = letters
                run.bus_s = now - started
                return
        if deadline.left() <= 0:
            run.bus_s = now - started
            raise BenchTimeout(f"file {run.file_id} still {run.state or 'not visible'} after {run.bus_s:.0f} s")
        await asyncio.sleep(POLL_S)


def phases_from_history(body: dict[str, Any], started_wall: float) -> dict[str, float]:
    """Seconds between the file's events (times set where each was made), from the submit start."""
    times: dict[str, float] = {}
    for event in body.get("history", []):
        times.setdefault(event["type"], datetime.fromisoformat(event["time"]).timestamp())
    out: dict[str, float] = {}
    points = [("submit→file.uploaded", started_wall, times.get("file.uploaded")),
              ("QC: file.uploaded→file.qc_passed", times.get("file.uploaded"), times.get("file.qc_passed")),
              ("QC: file.uploaded→file.qc_failed", times.get("file.uploaded"), times.get("file.qc_failed")),
              ("archive: file.qc_passed→file.archived", times.get("file.qc_passed"), times.get("file.archived"))]
    for name, a, b in points:
        if a is not None and b is not None:
            out[name] = round(b - a, 3)
    return out


async def archive_has_copy(pool: asyncpg.Pool, sha256: str) -> bool:
    """The archive reuses a verified object of the same bytes across datasets: then its step is not measured."""
    try:
        return bool(await pool.fetchval("SELECT count(*) FROM worker_archive.objects WHERE sha256 = $1 AND "
                                        "role = 'data' AND state = 'verified'", sha256))
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        return False


def log_tail(data_dir: Path, file_id: str, lines: int = 15) -> dict[str, list[str]]:
    """Lines of the workers' logs that name the file or report a problem, the last few of each."""
    out = {}
    pattern = re.compile(rf"{re.escape(file_id)}|ERROR|Error|Traceback|WARNING|warning|dead.?letter")
    for role in ("qc", "archive"):
        path = data_dir / "logs" / f"{role}.log"
        if path.exists():
            text = path.read_text(errors="replace").splitlines()
            out[role] = [line[:400] for line in text if pattern.search(line)][-lines:]
    return out


async def bus_run(settings: Settings, publisher: kafka.Publisher, http: httpx.AsyncClient, run: FileRun,
                  deadline: Deadline, deadletters: DeadLetterWatch, *, quiet: bool = False) -> dict[str, Any]:
    await new_dataset(settings, publisher, run.dataset_id, f"Reception benchmark: {run.name}")
    await deadletters.start()
    started_wall = time.time()
    started = time.perf_counter()
    submitted = await asyncio.wait_for(
        submit_file(settings, run.dataset_id, run.path, alias=None, actor="bench", publisher=publisher),
        timeout=max(1.0, deadline.left()))
    run.submit_s = time.perf_counter() - started
    run.file_id = str(submitted.file_id)
    if not quiet:
        console.print(f"    submitted (sha256 pass + upload) in {run.submit_s:.1f} s "
                      f"({submitted.parts} part{'s' if submitted.parts != 1 else ''}); file {run.file_id}")
    body: dict[str, Any] = {}
    try:
        await wait_for_file(http, run, started, deadline, deadletters, body)
    finally:
        run.archived = run.state == "archived"
        run.accession = body.get("accession")
        run.qc_metrics = body.get("qc_metrics")
        run.qc_warnings = body.get("qc_warnings") or []
        run.qc_reasons = body.get("qc_reasons") or []
        run.phases = phases_from_history(body, started_wall)
    if run.archived and run.bus_s is not None and "file.archived" in {e["type"] for e in body.get("history", [])}:
        archived_at = next(datetime.fromisoformat(e["time"]).timestamp() for e in body["history"]
                           if e["type"] == "file.archived")
        run.phases["seen: file.archived→GET says archived"] = round(started_wall + run.bus_s - archived_at, 3)
    return body


async def one_file(settings: Settings, pool: asyncpg.Pool, publisher: kafka.Publisher, http: httpx.AsyncClient,
                   deadletters: DeadLetterWatch, run: FileRun, fmt: str, deadline: Deadline) -> None:
    data_dir = settings.data_dir
    console.print(f"[bold]{run.name}[/] ({run.mb:,.1f} MB)")
    console.print("  direct: pysam pass, sha256+md5 pass, Crypt4GH encryption …")
    run.direct = await asyncio.to_thread(direct_work, Path(run.path), fmt, deadline.sooner(direct_limit(run.size)))
    d = run.direct
    console.print(f"    {d.records:,} records; {d.seconds:.2f} s ({run.direct_rate:,.1f} MB/s): "
                  f"pysam {d.pysam_s:.2f} s, digests {d.digest_s:.2f} s, encrypt {d.encrypt_s:.2f} s")
    run.archive_reused = await archive_has_copy(pool, d.sha256)
    run.rss_before = rss_now(data_dir)
    limit = pipeline_limit(run.size)
    console.print(f"  bus: submit → QC → archived (limit {limit:.0f} s) …")
    try:
        await bus_run(settings, publisher, http, run, deadline.sooner(limit), deadletters)
    except (BenchTimeout, TimeoutError) as exc:
        run.error = str(exc) or repr(exc)
        console.print(f"    [red]{run.error}")
    finally:
        run.rss_after = rss_now(data_dir)
    if run.archived:
        console.print(f"    archived as {run.accession} in {run.bus_s:.1f} s ({run.bus_rate:,.1f} MB/s)")
    else:
        run.log_tail = log_tail(data_dir, run.file_id) if run.file_id else log_tail(data_dir, "\0")
        console.print(f"    [red]not archived: {run.note()}")
        for r in run.qc_reasons:
            console.print(f"      qc_reason {r.get('code')}: {r.get('message')}")
        for letter in run.dead_letters:
            console.print(f"      dead letter from {letter.get('consumer')} ({letter.get('reason')}): "
                          f"{str(letter.get('error'))[:300]}")
        for role, lines in run.log_tail.items():
            for line in lines[-5:]:
                console.print(f"      {role}.log: {line}", markup=False, highlight=False)


async def bench(settings: Settings, files: list[tuple[str, Path, str]], deadline: Deadline, res: Results,
                prefix: str) -> None:
    pool = await db.connect(settings, min_size=1, max_size=2)
    try:
        async with kafka.Publisher(settings) as publisher, \
                httpx.AsyncClient(base_url=settings.gateway_url, timeout=10) as http:
            deadletters = DeadLetterWatch(settings)
            node = settings.node_id

            # Warm-up: consumer groups joined, modules imported, before anything is timed.
            console.print(f"[bold]warm-up: {WARMUP.name} through the whole pipeline …")
            warm = FileRun("warm-up", str(WARMUP), WARMUP.stat().st_size,
                           dataset_id=f"GDI-{node}-DATASET-{prefix}00")
            try:
                await bus_run(settings, publisher, http, warm, deadline.sooner(300), deadletters, quiet=True)
            except (BenchTimeout, TimeoutError) as exc:
                warm.error = str(exc) or repr(exc)
            res.info["warmup"] = {"state": warm.state, "seconds": round(warm.bus_s or 0, 2), "error": warm.error,
                                  "qc_reasons": warm.qc_reasons}
            console.print(f"  warm-up: {warm.state} after {warm.bus_s or 0:.1f} s")
            if not warm.archived:
                console.print(f"  [yellow]the warm-up file did not reach archived ({warm.note()}); going on")

            for i, (name, path, fmt) in enumerate(files, start=1):
                deadline.check(f"before {name}")
                run = FileRun(name, str(path), path.stat().st_size, dataset_id=f"GDI-{node}-DATASET-{prefix}{i:02d}")
                res.files.append(run)
                await one_file(settings, pool, publisher, http, deadletters, run, fmt, deadline)
    finally:
        await pool.close()


# -- output ---------------------------------------------------------------------------------------------


def num(value: float | None, spec: str = ",.2f") -> str:
    return "–" if value is None else format(value, spec)


def rss_cell(run: FileRun, role: str) -> str:
    a = run.rss_after.get(role)
    return num(a.hwm_mb if a else None, ",.0f")


def render(res: Results) -> None:
    t = Table(title="genomebus reception benchmark: submit → QC → archived vs. direct (MB = 10^6 bytes)")
    t.add_column("file", no_wrap=True)
    for name in ("MB", "bus s", "bus MB/s", "direct s", "direct MB/s", "ratio bus/direct",
                 "QC peak RSS MB", "archive peak RSS MB"):
        t.add_column(name, justify="right")
    t.add_column("note", style="dim", max_width=50)
    for r in res.files:
        t.add_row(r.name, num(r.mb, ",.1f"), num(r.bus_s) + ("" if r.archived else "*"), num(r.bus_rate),
                  num(r.direct.seconds if r.direct else None), num(r.direct_rate), num(r.ratio, ".3f"),
                  rss_cell(r, "qc"), rss_cell(r, "archive"), r.note())
    console.print(t)
    if any(not r.archived for r in res.files):
        console.print("[dim]* not archived: seconds until the benchmark stopped waiting")
    console.print("[dim]peak RSS = VmHWM (peak since the worker started) read after each file; before the "
                  "first file: " + ", ".join(
                      f"{role} {num(res.files[0].rss_before[role].hwm_mb, ',.0f')} MB"
                      for role in ("qc", "archive") if res.files and role in res.files[0].rss_before))
    big = res.files[-1] if res.files else None
    if big and big.rss_before and big.rss_after:
        console.print(f"peak RSS (VmHWM) around {big.name}:")
        for role in ("qc", "archive"):
            console.print(f"  {role}: {num(big.rss_before[role].hwm_mb, ',.0f')} MB before → "
                          f"{num(big.rss_after[role].hwm_mb, ',.0f')} MB after "
                          f"(RSS now {num(big.rss_after[role].rss_mb, ',.0f')} MB, pid {big.rss_after[role].pid})")

    b = Table(title="where the time goes (seconds)",
              caption="submit: submit_file (sha256 pass + upload); QC, archive: between the event times in the "
                      "file's history (uploaded→qc_passed→archived); → GET archived: publish, projection, polling")
    b.add_column("file", no_wrap=True)
    for name in ("bus total", "submit", "QC", "archive", "→ GET archived",
                 "direct pysam", "direct digests", "direct encrypt"):
        b.add_column(name, justify="right")
    for r in res.files:
        p = r.phases
        qc = p.get("QC: file.uploaded→file.qc_passed", p.get("QC: file.uploaded→file.qc_failed"))
        b.add_row(r.name, num(r.bus_s), num(r.submit_s), num(qc),
                  num(p.get("archive: file.qc_passed→file.archived")),
                  num(p.get("seen: file.archived→GET says archived")),
                  num(r.direct.pysam_s if r.direct else None), num(r.direct.digest_s if r.direct else None),
                  num(r.direct.encrypt_s if r.direct else None))
    console.print(b)


def write_json(res: Results) -> Path:
    def dump(r: FileRun) -> dict[str, Any]:
        out = asdict(r)
        out.update(mb=round(r.mb, 3), bus_mb_per_s=r.bus_rate and round(r.bus_rate, 3),
                   direct_seconds=r.direct and round(r.direct.seconds, 4),
                   direct_mb_per_s=r.direct_rate and round(r.direct_rate, 3),
                   ratio_bus_over_direct=r.ratio and round(r.ratio, 4), note=r.note())
        return out

    return write_results("reception", {"files": [dump(r) for r in res.files], "info": res.info})


# -- main ------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--big-mb", type=int, default=1024,
                        help="size of the synthetic BAM in MB (10^6 bytes; default 1024), cached in bench/.cache/")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="data directory of a running stack (used, left running) or where to start one")
    parser.add_argument("--keep", action="store_true",
                        help="leave the stack this script started running, and keep its directory")
    args = parser.parse_args()
    if args.big_mb < 1:
        parser.error("--big-mb must be at least 1")
    for path in (VCF, BAM, WARMUP):
        if not path.exists():
            parser.error(f"{path} is missing (the test data belongs in data/ of the repository)")

    res = Results()
    res.info.update(big_mb=args.big_mb, python=platform.python_version(), cpus=os.cpu_count(),
                    pysam=pysam.__version__, hts_threads=HTS_THREADS, started=datetime.now().isoformat(),
                    pipeline_limit="120 s + 1.05 s/MB", mb="10^6 bytes")
    try:
        big = ensure_big_bam(args.big_mb, res)
    except (BenchTimeout, RuntimeError) as exc:
        console.print(f"[red]could not generate the synthetic BAM: {exc}")
        return 1
    files = [(VCF.name, VCF, "VCF"), (BAM.name, BAM, "BAM"), (big.name, big, "BAM")]

    data_dir, created_dir = data_dir_for(args.data_dir)
    settings = Settings(data_dir=data_dir)
    res.info["data_dir"] = str(data_dir)

    def body() -> int:
        res.info["archive_part_size_mib"] = settings.archive_part_size_mib
        timeout = 300 + sum(pipeline_limit(p.stat().st_size) + direct_limit(p.stat().st_size) for _, p, _ in files)
        res.info["overall_limit_seconds"] = round(timeout)
        code = run_timed(lambda deadline: bench(settings, files, deadline, res, run_prefix()), timeout, res.info)
        if any(not r.archived for r in res.files):
            code = code or 3
        render(res)
        console.print(f"results: {write_json(res)}")
        return code

    return with_stack(settings, res.info, body, created_dir=created_dir, keep_stack=args.keep, keep_dir=args.keep,
                      existing_note="[yellow]  its workers ran before: VmHWM may include earlier work")

if __name__ == "__main__":
    sys.exit(main())
