"""The reader's Crypt4GH public key, sent in a request header, for the copies re-encrypted for them.

The header is the one htsget-rs reads a client's key from, ``Htsget-Context-Public-Key``
(htsget-config ``storage/c4gh/header.rs``), so one client serves both: its value is the standard
base64 of the key file ``crypt4gh keygen`` writes (``-----BEGIN CRYPT4GH PUBLIC KEY-----`` …,
newlines included), as htsget-rs expects. The base64 of the raw 32-byte key is accepted too.

A key is only accepted if a header packet can be encrypted for it: a low-order Curve25519 point
(all zeroes, for one) fails the key exchange, and is refused here as bad input rather than
failing later while the answer is being written.
"""

from __future__ import annotations

import base64
import binascii
import os

import crypt4gh.header

from genomebus.gateway.problems import Problem

CLIENT_PUBLIC_KEY_HEADER = "Htsget-Context-Public-Key"
MAX_HEADER_CHARS = 1024


def parse_public_key(value: str) -> bytes:
    """The raw 32-byte key of a header value; ``ValueError`` (with a reason) when it is none."""
    if len(value) > MAX_HEADER_CHARS:
        raise ValueError("the value is too long for a Crypt4GH public key")
    try:
        decoded = base64.b64decode("".join(value.split()), validate=True)
    except binascii.Error:
        raise ValueError("the value is not base64") from None
    if len(decoded) != 32:
        lines = [line.strip() for line in decoded.splitlines() if line.strip()]
        if len(lines) < 3 or lines[0] != b"-----BEGIN CRYPT4GH PUBLIC KEY-----" \
                or lines[-1] != b"-----END CRYPT4GH PUBLIC KEY-----":
            raise ValueError("the value is neither a Crypt4GH public key file nor a raw 32-byte key")
        try:
            decoded = base64.b64decode(b"".join(lines[1:-1]), validate=True)
        except binascii.Error:
            raise ValueError("the key file's body is not base64") from None
        if len(decoded) != 32:
            raise ValueError("the key file does not hold a 32-byte key")
    try:
        list(crypt4gh.header.encrypt(b"\0" * 4, [(0, os.urandom(32), decoded)]))
    except Exception:  # noqa: BLE001 - libsodium only says that the exchange failed
        raise ValueError("the key is not a usable Curve25519 public key") from None
    return decoded


def recipient_of(headers: dict[str, str] | object) -> str:
    """The reader's key from ``CLIENT_PUBLIC_KEY_HEADER`` as base64 of its raw 32 bytes; 400 without a good one."""
    value = headers.get(CLIENT_PUBLIC_KEY_HEADER)  # type: ignore[attr-defined]
    if not value:
        raise Problem(400, "public-key-required", f"a Crypt4GH copy is encrypted for your key: send it in the "
                      f"{CLIENT_PUBLIC_KEY_HEADER} header (base64 of your `crypt4gh keygen` .pub file)")
    try:
        key = parse_public_key(value)
    except ValueError as exc:
        raise Problem(400, "invalid-public-key", f"the {CLIENT_PUBLIC_KEY_HEADER} header is not accepted: {exc}") \
            from None
    return base64.b64encode(key).decode("ascii")
