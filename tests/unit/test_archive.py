"""Archive: accessions, Crypt4GH streaming, the node's key pair, and deletion only after publishing."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import re
import tracemalloc
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from crypt4gh import sodium
from crypt4gh.keys import get_private_key

from genomebus.consumers.archive import (
    HashingSource,
    SourceError,
    accession_for,
    archive_key_for,
    decrypt_stream,
    encrypt_stream,
    index_keys_for,
    mismatches,
)
from genomebus.infra.keys import ArchiveKeyError, ensure_archive_keys, load_archive_keys
from genomebus.infra.settings import Settings
from genomebus.schemas.base import PID_PATTERN
from genomebus.schemas.envelope import encode, new_envelope
from genomebus.schemas.reception import FileQcPassed
from tests.data import DATA

SHA = hashlib.sha256(b"some genome").hexdigest()


@pytest.fixture(autouse=True, scope="module")
def _data_present() -> None:
    # data/ is part of the repository; without it these tests must fail loudly, not skip.
    assert DATA.exists(), f"test data not found at {DATA} (data/ in the repository)"


def a_key_pair() -> tuple[bytes, bytes]:
    secret = os.urandom(32)
    return secret, sodium.derive_pk(secret)


def file_source(path: Path) -> HashingSource:
    fh = path.open("rb")
    return HashingSource(fh.read)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# -- accessions and keys ------------------------------------------------------------------------------


def test_an_accession_is_a_1mg_file_pid_and_the_same_on_every_replay() -> None:
    first = accession_for("FI", "GDI-FI-DATASET-001", SHA)

    assert re.fullmatch(PID_PATTERN, first)
    assert re.fullmatch(r"GDI-FI-FILE-[0-9]+", first)
    assert accession_for("FI", "GDI-FI-DATASET-001", SHA) == first


def test_the_same_bytes_in_another_dataset_get_another_accession() -> None:
    assert accession_for("FI", "GDI-FI-DATASET-001", SHA) != accession_for("FI", "GDI-FI-DATASET-002", SHA)


def test_archive_keys_are_content_addressed_by_the_ciphertext() -> None:
    assert archive_key_for("ab" + "0" * 62) == f"sha256/ab/ab{'0' * 62}.c4gh"


def qc(file_format: str, **metrics: Any) -> FileQcPassed:
    return FileQcPassed(file_id=uuid.uuid4(), dataset_id="GDI-FI-DATASET-001", format=file_format, metrics=metrics)


def test_indexes_are_looked_for_where_qc_says_then_by_format() -> None:
    assert index_keys_for("in/x.bam", qc("BAM")) == ["in/x.bam.bai", "in/x.bam.csi"]
    assert index_keys_for("in/x.vcf.gz", qc("VCF", index_key="in/x.vcf.gz.csi")) == [
        "in/x.vcf.gz.csi", "in/x.vcf.gz.tbi"]
    assert index_keys_for("in/x.fastq.gz", qc("FASTQ")) == []


def test_an_index_named_elsewhere_is_not_archived_or_deleted() -> None:
    assert index_keys_for("in/x.bam", qc("BAM", index_key="other/secret.bam")) == ["in/x.bam.bai", "in/x.bam.csi"]


def test_mismatches_name_what_differs() -> None:
    assert mismatches((1, "a", "b"), (1, "a", "b")) == []
    assert mismatches((1, "a", "b"), (2, "a", "c")) == ["size 1 != 2", "md5 b != c"]


# -- Crypt4GH streaming --------------------------------------------------------------------------------


def test_a_real_file_round_trips_through_crypt4gh_unchanged(tmp_path: Path) -> None:
    original = DATA / "variants" / "HG02102.vcf.gz"
    secret, public = a_key_pair()
    encrypted = tmp_path / "x.c4gh"

    with encrypted.open("wb") as out:
        plain, cipher = encrypt_stream(file_source(original), out, public)
    cipher_back, plain_back = decrypt_stream(file_source(encrypted), secret)

    assert plain.sha256 == plain_back.sha256 == sha256_of(original)
    assert plain.size == plain_back.size == original.stat().st_size
    assert cipher.facts() == cipher_back.facts()
    assert cipher.sha256 == sha256_of(encrypted) and cipher.size == encrypted.stat().st_size


def test_encryption_is_randomised_so_idempotency_cannot_rest_on_the_ciphertext(tmp_path: Path) -> None:
    _, public = a_key_pair()

    first = encrypt_stream(HashingSource(io.BytesIO(b"ACGT" * 1000).read), io.BytesIO(), public)[1]
    second = encrypt_stream(HashingSource(io.BytesIO(b"ACGT" * 1000).read), io.BytesIO(), public)[1]

    assert first.sha256 != second.sha256


def test_bobs_file_decrypts_to_the_published_vcf() -> None:
    # bob.sec is stored without a passphrase (kdf "none"), so no passphrase is asked for.
    secret = get_private_key(str(DATA / "crypt4gh" / "bob.sec"), None)

    _, plain = decrypt_stream(file_source(DATA / "crypt4gh" / "sample1-bcbio-cancer.vcf.gz.c4gh"), secret)

    assert plain.sha256 == sha256_of(DATA / "variants" / "sample1-bcbio-cancer.vcf.gz")


def test_a_source_giving_short_reads_still_encrypts_every_byte() -> None:
    secret, public = a_key_pair()
    payload = os.urandom(300_000)
    trickle = io.BytesIO(payload)
    out = io.BytesIO()

    encrypt_stream(HashingSource(lambda n: trickle.read(min(n, 1000))), out, public)
    _, plain = decrypt_stream(HashingSource(io.BytesIO(out.getvalue()).read), secret)

    assert plain.sha256 == hashlib.sha256(payload).hexdigest()


def test_a_read_failure_is_raised_not_swallowed_by_crypt4gh() -> None:
    secret, public = a_key_pair()
    out = io.BytesIO()
    encrypt_stream(HashingSource(io.BytesIO(os.urandom(200_000)).read), out, public)
    ciphertext = io.BytesIO(out.getvalue())

    def failing(n: int) -> bytes:
        if ciphertext.tell() > 100_000:
            raise ConnectionResetError("object store went away")
        return ciphertext.read(n)

    with pytest.raises(SourceError) as caught:
        decrypt_stream(HashingSource(failing, chunk=65_536), secret)
    assert isinstance(caught.value.__cause__, ConnectionResetError)


def test_encrypting_50_mb_keeps_memory_bounded(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with big.open("wb") as fh:
        for _ in range(50):
            fh.write(os.urandom(1 << 20))
    _, public = a_key_pair()

    tracemalloc.start()
    try:
        with (tmp_path / "big.c4gh").open("wb") as out:
            plain, _ = encrypt_stream(file_source(big), out, public)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert plain.size == 50 << 20
    assert peak < 64 << 20, f"peak {peak / 2**20:.1f} MiB"


# -- the node's key pair -----------------------------------------------------------------------------


def test_a_local_node_gets_one_passphrase_protected_key_pair(tmp_path: Path) -> None:
    (tmp_path / "secrets.json").write_text(json.dumps({"postgres_password": "kept"}))
    settings = Settings(data_dir=tmp_path)

    creds = ensure_archive_keys(tmp_path, json.loads((tmp_path / "secrets.json").read_text()))
    first = load_archive_keys(settings)
    ensure_archive_keys(tmp_path, creds)

    stored = json.loads((tmp_path / "secrets.json").read_text())
    assert stored["postgres_password"] == "kept" and stored["archive_key_passphrase"]
    assert load_archive_keys(settings) == first
    assert sodium.derive_pk(first[0]) == first[1]
    with pytest.raises(ArchiveKeyError, match="passphrase"):
        load_archive_keys(Settings(data_dir=tmp_path, archive_key_passphrase="wrong-passphrase"))


def test_a_node_without_keys_says_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(ArchiveKeyError, match="genomebus up"):
        load_archive_keys(Settings(data_dir=tmp_path))


def test_production_refuses_to_run_without_archive_key_paths() -> None:
    with pytest.raises(ValueError, match="archive_secret_key_path, archive_public_key_path"):
        Settings(profile="production")
