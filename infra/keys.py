"""The node's Crypt4GH archive key pair: every archived file is encrypted for its public key.

Production names both key files explicitly (``archive_secret_key_path``,
``archive_public_key_path``) and, when the secret key is passphrase-protected
(it should be), ``archive_key_passphrase``. The local profile defaults to
``<data_dir>/keys/archive.sec|.pub``, generated once by ``genomebus up``
with a passphrase kept beside the other generated credentials in
``<data_dir>/secrets.json`` (mode 0600). Losing the secret key loses the
archive, so nothing here ever replaces an existing key file.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import tempfile
from base64 import b64encode
from pathlib import Path

from crypt4gh import sodium
from crypt4gh.keys import c4gh, get_private_key, get_public_key

from genomebus.infra.settings import Settings

SECRETS_FILE = "secrets.json"  # written by infra.stack.load_secrets
PASSPHRASE_SECRET = "archive_key_passphrase"
_COMMENT = b"genomebus archive key"


class ArchiveKeyError(RuntimeError):
    """The archive key pair is missing, unreadable, or does not match its passphrase."""


def local_key_paths(data_dir: Path) -> tuple[Path, Path]:
    keys = data_dir / "keys"
    return keys / "archive.sec", keys / "archive.pub"


def archive_key_paths(settings: Settings) -> tuple[Path, Path]:
    """(secret, public) key paths: explicit settings (production requires them), else the local defaults."""
    default_sec, default_pub = local_key_paths(settings.data_dir)
    return settings.archive_secret_key_path or default_sec, settings.archive_public_key_path or default_pub


def ensure_archive_keys(data_dir: Path, stack_secrets: dict[str, str]) -> dict[str, str]:
    """Give a local node its archive key pair once; return the secrets with the key's passphrase.

    The passphrase is added to ``secrets.json`` when missing (existing values are kept),
    then the pair is generated if neither file exists. A secret key without its public
    half gets the public half back; a public key alone is an error (the archive would
    be unreadable), never silently replaced.
    """
    if PASSPHRASE_SECRET not in stack_secrets:
        stack_secrets = {**stack_secrets, PASSPHRASE_SECRET: secrets.token_urlsafe(32)}
        _write_private(data_dir / SECRETS_FILE, json.dumps(stack_secrets).encode())
    passphrase = stack_secrets[PASSPHRASE_SECRET]
    sec, pub = local_key_paths(data_dir)
    sec.parent.mkdir(mode=0o700, exist_ok=True)
    if sec.exists() and not pub.exists():
        _write_public(pub, _derive_public(sec, passphrase))
    elif pub.exists() and not sec.exists():
        raise ArchiveKeyError(f"{pub} exists without its secret key {sec}; restore the secret key")
    elif not sec.exists():
        # Generate into temporary names, then move into place: a crash never leaves half a pair.
        with tempfile.TemporaryDirectory(dir=sec.parent) as tmp:
            tmp_sec, tmp_pub = Path(tmp) / "archive.sec", Path(tmp) / "archive.pub"
            c4gh.generate(str(tmp_sec), str(tmp_pub), passphrase=passphrase.encode(), comment=_COMMENT)
            os.replace(tmp_pub, pub)
            os.replace(tmp_sec, sec)
    return stack_secrets


def load_archive_keys(settings: Settings) -> tuple[bytes, bytes]:
    """(secret_key, public_key) as raw 32-byte Curve25519 keys, ready for crypt4gh."""
    # crypt4gh logs derived keys and session keys at DEBUG: whoever holds the archive key never does.
    logging.getLogger("crypt4gh").setLevel(logging.WARNING)
    sec, pub = archive_key_paths(settings)
    for path in (sec, pub):
        if not path.exists():
            raise ArchiveKeyError(f"no archive key at {path}; `genomebus up` generates a local pair, "
                                  "production sets archive_secret_key_path / archive_public_key_path")
    passphrase = _passphrase(settings)
    secret_key = _load_secret(sec, passphrase)
    public_key = get_public_key(str(pub))
    if sodium.derive_pk(secret_key) != public_key:
        raise ArchiveKeyError(f"{sec} and {pub} are not one key pair")
    return secret_key, public_key


def _passphrase(settings: Settings) -> str | None:
    if settings.archive_key_passphrase is not None:
        return settings.archive_key_passphrase.get_secret_value()
    if settings.profile == "local":
        path = settings.data_dir / SECRETS_FILE
        if path.exists():
            return json.loads(path.read_text()).get(PASSPHRASE_SECRET)
    return None


def _load_secret(path: Path, passphrase: str | None) -> bytes:
    def ask() -> str:
        if passphrase is None:
            raise ArchiveKeyError(f"{path} is passphrase-protected; set archive_key_passphrase")
        return passphrase

    try:
        return get_private_key(str(path), ask)
    except SystemExit as exc:  # crypt4gh exits the process on a wrong passphrase
        raise ArchiveKeyError(f"cannot open {path}: wrong passphrase or not a Crypt4GH key") from exc


def _derive_public(sec: Path, passphrase: str) -> bytes:
    return sodium.derive_pk(_load_secret(sec, passphrase))


def _write_public(path: Path, key: bytes) -> None:
    path.write_bytes(b"-----BEGIN CRYPT4GH PUBLIC KEY-----\n" + b64encode(key)
                     + b"\n-----END CRYPT4GH PUBLIC KEY-----\n")


def _write_private(path: Path, content: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)
    os.replace(tmp, path)
