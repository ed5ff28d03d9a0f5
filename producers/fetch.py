"""Fetching archived data as a researcher: a whole object over DRS, a region over htsget, a Crypt4GH copy.

``FetchClient`` talks to the node's gateway with the researcher's bearer token (none is needed for
a public dataset); ``genomebus fetch`` is a thin shell around it.

- ``download``: ``GET /ga4gh/drs/v1/objects/{id}``, its ``https`` access method
  (``GET .../access/https`` with the token) gives a short-lived URL and the headers to send with it;
  the bytes stream to ``<path>.part``, hashed on the way, and only a file whose size and SHA-256 are
  the DRS object's is renamed into place. A mismatch removes the partial file and raises
  ``IntegrityError``; so does any failure or interruption (nothing half-written is ever left under
  the final name, and no ``.part`` either).
- ``region``: htsget. The object's media type says reads (BAM, CRAM) or variants (VCF, BCF); the
  ticket's URLs are followed in order (``data:`` URIs decoded, others fetched with the ticket's
  headers) and concatenated: the result is a file of the object's format holding the records that
  overlap the region (whole records and compressed blocks: possibly a few more than asked).
- ``crypt4gh``: the ``c4gh`` access method, with the reader's Crypt4GH public key in the
  ``Htsget-Context-Public-Key`` header (base64 of the ``.pub`` file, as htsget-rs reads it): a copy
  only that key's owner can decrypt. Its header is made for the key; its body is the archive's, so
  the body's size is checked against the plaintext size the DRS object gives.

Regions are written as samtools writes them, 1-based and inclusive: ``chr1:1000-2000`` is the
thousand-and-one bases from 1000 to 2000; ``chr1:1000`` runs to the reference's end; ``chr1``
alone is the whole reference; a name with a colon in it goes in braces (``{HLA-A*01:01}:1-100``). htsget counts from 0 and excludes its end, so that region is asked
as ``start=999&end=2000`` (``to_htsget``).

Errors: the gateway's answers are ``FetchRefused`` (status 401, 403, 404, ... and the problem's
detail, from a DRS, htsget or RFC 7807 body); bytes that are not what the DRS object promised are
``IntegrityError``; a gateway that does not answer is ``GatewayUnavailable``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote_to_bytes

import httpx

from genomebus.infra.settings import Settings
from genomebus.producers.commands import GatewayUnavailable

DRS = "/ga4gh/drs/v1"
HTSGET = "/htsget/v1"
PUBLIC_KEY_HEADER = "Htsget-Context-Public-Key"
"""The header carrying the reader's Crypt4GH public key, as htsget-rs names it (the gateway reads the same)."""

READS = {"application/vnd.ga4gh.bam": "BAM", "application/vnd.ga4gh.cram": "CRAM"}
VARIANTS = {"application/vnd.ga4gh.vcf": "VCF", "application/vnd.ga4gh.bcf": "BCF"}
_SUFFIXES = ((".bam", "reads", "BAM"), (".cram", "reads", "CRAM"), (".vcf.gz", "variants", "VCF"),
             (".vcf.bgz", "variants", "VCF"), (".bcf", "variants", "BCF"))

SEGMENT_SIZE = 65536
"""Crypt4GH: plaintext per segment; each encrypted segment adds a 12-byte nonce and a 16-byte MAC."""
SEGMENT_OVERHEAD = 28
CHUNK = 1 << 20

Progress = Callable[[int, int | None], None]
"""Called with (bytes written so far, total bytes or None when not known in advance)."""


class FetchRefused(Exception):
    """The gateway answered with an error: ``status`` (401, 403, 404, ...) and its ``detail``."""

    def __init__(self, status: int, detail: str, what: str = "") -> None:
        super().__init__(f"{what}: {detail}" if what else detail)
        self.status = status
        self.detail = detail
        self.what = what


class IntegrityError(Exception):
    """The bytes received are not the object the DRS record describes; the partial file was removed."""


class InvalidRegion(ValueError):
    """A region that is not ``chr``, ``chr:start`` or ``chr:start-end`` (1-based, inclusive)."""


class NoSuchAccess(Exception):
    """The object offers no access method of the kind asked for (``https``, ``c4gh``)."""


@dataclass(frozen=True)
class Region:
    """A region as the user writes it: 1-based, inclusive; ``start``/``end`` None mean the reference's ends."""

    reference: str
    start: int | None = None
    end: int | None = None

    def to_htsget(self) -> dict[str, str]:
        """htsget's query: ``start`` 0-based, ``end`` exclusive (so 1-based inclusive N is N in both)."""
        params = {"referenceName": self.reference}
        if self.start is not None:
            params["start"] = str(self.start - 1)
        if self.end is not None:
            params["end"] = str(self.end)
        return params

    def __str__(self) -> str:
        name = f"{{{self.reference}}}" if ":" in self.reference else self.reference
        if self.start is None:
            return name
        return f"{name}:{self.start}" + (f"-{self.end}" if self.end is not None else "")


HOW = "write chr, chr:start or chr:start-end (1-based, inclusive), e.g. chr20:1000-2000"
_POSITIONS = re.compile(r"^(?P<start>[0-9][0-9,]*)(?:-(?P<end>[0-9][0-9,]*))?$")


def parse_region(text: str) -> Region:
    """``chr1``, ``chr1:1000`` or ``chr1:1,000-2,000`` (1-based, inclusive, as samtools), or ``InvalidRegion``.

    A reference name that holds a colon goes in braces, as in samtools: ``{HLA-A*01:01}:100-200``,
    ``{HLA-A*01:01}``. Without braces, what follows the last colon is the positions when it looks
    like positions.
    """
    text = text.strip()
    reference, positions = text, None
    if text.startswith("{"):
        name, closed, rest = text[1:].partition("}")
        if not closed or (rest and not rest.startswith(":")):
            raise InvalidRegion(f"{text!r}: a braced name is {{name}} or {{name}}:start-end")
        reference, positions = name, rest[1:] if rest else None
    elif ":" in text:
        head, tail = text.rsplit(":", 1)
        if re.match(r"^[0-9,-]+$", tail):
            reference, positions = head, tail
        elif "-" in tail:  # meant as positions, but they are not numbers
            raise InvalidRegion(f"{text!r}: the positions must be numbers; {HOW} (a reference name with a colon "
                                "goes in braces: {{name}}:start-end)")
    if not reference or any(c.isspace() for c in reference) or reference == "*":
        raise InvalidRegion(f"{text!r} is not a region; {HOW}")
    if positions is None:
        return Region(reference)
    match = _POSITIONS.match(positions)
    if match is None:
        raise InvalidRegion(f"{text!r}: the positions must be start or start-end; write e.g. {reference}:1000-2000")
    start = int(match["start"].replace(",", ""))
    end = int(match["end"].replace(",", "")) if match["end"] else None
    if start < 1:
        raise InvalidRegion(f"{text!r}: positions count from 1, as in samtools; {HOW}")
    if end is not None and end < start:
        raise InvalidRegion(f"{text!r}: the end is before the start; {HOW}")
    if (end or start) > 2**32 - 1:
        raise InvalidRegion(f"{text!r}: positions beyond 4294967295 are not a genome's; {HOW}")
    return Region(reference, start, end)


def decode_data_uri(url: str) -> bytes:
    """The bytes of a ``data:`` URI (RFC 2397): base64 when it says ``;base64``, else percent-encoded."""
    meta, sep, data = url[len("data:"):].partition(",")
    if not url.startswith("data:") or not sep:
        raise IntegrityError(f"a ticket URL is not a valid data: URI ({url[:40]}…)")
    if meta.endswith(";base64"):
        try:
            return base64.b64decode(data, validate=True)
        except ValueError as exc:
            raise IntegrityError("a ticket's data: URI is not valid base64") from exc
    return unquote_to_bytes(data)


def kind_of(obj: dict[str, Any]) -> tuple[str, str]:
    """``("reads" | "variants", htsget format)`` of a DRS object, from its media type or else its name."""
    mime = str(obj.get("mime_type") or "").split(";")[0].strip().lower()
    if mime in READS:
        return "reads", READS[mime]
    if mime in VARIANTS:
        return "variants", VARIANTS[mime]
    name = str(obj.get("name") or "").lower()
    for suffix, endpoint, fmt in _SUFFIXES:
        if name.endswith(suffix):
            return endpoint, fmt
    raise NoSuchAccess(f"{obj.get('id')} is neither reads (BAM, CRAM) nor variants (VCF, BCF): "
                       "htsget serves no region of it; download it whole")


def sha256_of(obj: dict[str, Any]) -> str | None:
    """The SHA-256 a DRS object names (``checksums`` of type ``sha-256``, or ``sha256`` as some servers write)."""
    for checksum in obj.get("checksums") or ():
        if str(checksum.get("type", "")).lower() in ("sha-256", "sha256"):
            return str(checksum.get("checksum", "")).lower()
    return None


def crypt4gh_body_size(plaintext_size: int) -> int:
    """The size of the Crypt4GH body that encrypts ``plaintext_size`` bytes: 28 more per 64 KiB segment."""
    segments = -(-plaintext_size // SEGMENT_SIZE)
    return plaintext_size + segments * SEGMENT_OVERHEAD


def crypt4gh_header_size(head: bytes) -> int | None:
    """The length of the Crypt4GH header at the start of ``head`` (magic, version, packets), or None if short."""
    if len(head) < 16:
        return None
    if head[:8] != b"crypt4gh" or struct.unpack("<I", head[8:12])[0] != 1:
        raise IntegrityError("the copy does not start with a Crypt4GH version 1 header")
    offset, count = 16, struct.unpack("<I", head[12:16])[0]
    for _ in range(count):
        if len(head) < offset + 4:
            return None
        length = struct.unpack("<I", head[offset:offset + 4])[0]
        if length < 4:
            raise IntegrityError("the copy's Crypt4GH header has a packet shorter than its own length field")
        offset += length
    return offset if len(head) >= offset else None


def public_key_header(key_file: bytes) -> str:
    """The header value for a ``crypt4gh keygen`` ``.pub`` file: its bytes in base64, as htsget-rs expects."""
    text = key_file.strip()
    if not text.startswith(b"-----BEGIN CRYPT4GH PUBLIC KEY-----"):
        raise ValueError("not a Crypt4GH public key file (-----BEGIN CRYPT4GH PUBLIC KEY-----)")
    return base64.b64encode(text + b"\n").decode("ascii")


@dataclass(frozen=True)
class Fetched:
    """What was written: where, how many bytes, their SHA-256; ``verified`` when it matched the DRS record."""

    path: Path
    size: int
    sha256: str
    verified: bool


class FetchClient:
    """A researcher's session with the node's DRS and htsget APIs."""

    def __init__(self, settings: Settings, token: str | None = None, *,
                 http: httpx.AsyncClient | None = None) -> None:
        self._own = http is None
        self.http = http or httpx.AsyncClient(base_url=settings.gateway_url,
                                              timeout=httpx.Timeout(60.0, connect=10.0))
        self.auth = {"Authorization": f"Bearer {token}"} if token else {}

    async def __aenter__(self) -> FetchClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._own:
            await self.http.aclose()

    # -- DRS ------------------------------------------------------------------------------------

    async def drs_object(self, object_id: str) -> dict[str, Any]:
        """The DRS object (``GET /objects/{id}``): name, size, checksums, media type, access methods."""
        return (await self._get(f"{DRS}/objects/{_segment(object_id)}", f"object {object_id}")).json()

    async def access_url(self, object_id: str, access_id: str,
                         headers: dict[str, str] | None = None) -> tuple[str, dict[str, str]]:
        """The URL and headers of an access method (``GET /objects/{id}/access/{access_id}``)."""
        body = (await self._get(f"{DRS}/objects/{_segment(object_id)}/access/{_segment(access_id)}",
                                f"object {object_id}", headers=headers)).json()
        url = body.get("url")
        if not isinstance(url, str) or not url:
            raise IntegrityError(f"the gateway's access URL for {object_id} has no url")
        return url, _header_lines(body.get("headers"))

    async def download(self, object_id: str, path: Path | str, *, progress: Progress | None = None,
                       overwrite: bool = False, obj: dict[str, Any] | None = None) -> Fetched:
        """The whole object, verified against the DRS record's size and SHA-256, at ``path``."""
        path = Path(path)
        _refuse_existing(path, overwrite)
        obj = obj or await self.drs_object(object_id)
        expected_sha, expected_size = sha256_of(obj), obj.get("size")
        if expected_sha is None or not isinstance(expected_size, int):
            raise IntegrityError(f"{object_id} has no SHA-256 or size in its DRS record: nothing to verify against")
        url, headers = await self.access_url(object_id, _method(obj, "https", object_id))
        async with _partial(path, overwrite) as part:
            digest, size = await self._stream_to(part, url, headers, expected_size, progress, f"object {object_id}")
            if size != expected_size:
                raise IntegrityError(f"{object_id}: received {size} bytes, the DRS record says {expected_size}")
            if digest != expected_sha:
                raise IntegrityError(f"{object_id}: the SHA-256 of what was received is {digest}, "
                                     f"the DRS record says {expected_sha}")
        return Fetched(path, size, digest, verified=True)

    async def crypt4gh(self, object_id: str, path: Path | str, public_key: bytes, *,
                       progress: Progress | None = None, overwrite: bool = False,
                       obj: dict[str, Any] | None = None) -> Fetched:
        """A Crypt4GH copy for ``public_key`` (a ``.pub`` file's bytes), its body's size checked."""
        path = Path(path)
        _refuse_existing(path, overwrite)
        key_header = {PUBLIC_KEY_HEADER: public_key_header(public_key)}
        obj = obj or await self.drs_object(object_id)
        url, headers = await self.access_url(object_id, _method(obj, "c4gh", object_id), key_header)
        async with _partial(path, overwrite) as part:
            digest, size = await self._stream_to(part, url, headers, None, progress, f"object {object_id}")
            with part.open("rb") as written:
                header_size = crypt4gh_header_size(written.read(1 << 16))
            if header_size is None:
                raise IntegrityError(f"{object_id}: the Crypt4GH copy ends inside its header")
            if isinstance(obj.get("size"), int) and size - header_size != crypt4gh_body_size(obj["size"]):
                raise IntegrityError(f"{object_id}: the Crypt4GH body has {size - header_size} bytes, "
                                     f"{crypt4gh_body_size(obj['size'])} encrypt {obj['size']}")
        return Fetched(path, size, digest, verified=False)

    # -- htsget ---------------------------------------------------------------------------------

    async def region(self, object_id: str, region: str | Region, path: Path | str, *,
                     progress: Progress | None = None, overwrite: bool = False,
                     obj: dict[str, Any] | None = None) -> Fetched:
        """The records of ``region`` (``chr:start-end``, 1-based inclusive) as a file of the object's format."""
        path = Path(path)
        wanted = region if isinstance(region, Region) else parse_region(region)
        _refuse_existing(path, overwrite)
        obj = obj or await self.drs_object(object_id)
        endpoint, fmt = kind_of(obj)
        what = f"{object_id} {wanted}"
        ticket = (await self._get(f"{HTSGET}/{endpoint}/{_segment(object_id)}", what,
                                  params={**wanted.to_htsget(), "format": fmt})).json()
        urls = (ticket.get("htsget") or {}).get("urls")
        if not isinstance(urls, list) or not urls:
            raise IntegrityError(f"{what}: the htsget ticket lists no URLs")
        digest = hashlib.sha256()
        async with _partial(path, overwrite) as part:
            with part.open("wb") as out:
                written = 0
                for block in urls:
                    async for chunk in self._ticket_block(block, what):
                        out.write(chunk)
                        digest.update(chunk)
                        written += len(chunk)
                        if progress:
                            progress(written, None)
        return Fetched(path, written, digest.hexdigest(), verified=False)

    async def _ticket_block(self, block: dict[str, Any], what: str) -> AsyncIterator[bytes]:
        url = block.get("url") if isinstance(block, dict) else None
        if not isinstance(url, str):
            raise IntegrityError(f"{what}: a ticket URL is missing")
        if url.startswith("data:"):
            yield decode_data_uri(url)
            return
        headers = {str(k): str(v) for k, v in (block.get("headers") or {}).items()}
        async for chunk in self._stream(url, headers, what):
            yield chunk

    # -- the wire -------------------------------------------------------------------------------

    async def _get(self, path: str, what: str, *, params: dict[str, str] | None = None,
                   headers: dict[str, str] | None = None) -> httpx.Response:
        try:
            response = await self.http.get(path, params=params, headers={**self.auth, **(headers or {})})
        except httpx.TransportError as exc:
            raise GatewayUnavailable(f"the gateway at {self.http.base_url} does not answer "
                                     f"({type(exc).__name__})") from exc
        if response.status_code >= 400:
            raise FetchRefused(response.status_code, _problem_detail(response), what)
        return response

    async def _stream(self, url: str, headers: dict[str, str], what: str) -> AsyncIterator[bytes]:
        """The bytes of a data URL, sent with its own headers only (never the bearer token: it may be elsewhere)."""
        try:
            async with self.http.stream("GET", url, headers=headers) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise FetchRefused(response.status_code, _problem_detail(response), what)
                async for chunk in response.aiter_bytes(CHUNK):
                    yield chunk
        except httpx.TransportError as exc:
            raise GatewayUnavailable(f"the download from {httpx.URL(url).host or 'the gateway'} broke off "
                                     f"({type(exc).__name__}); fetch it again") from exc

    async def _stream_to(self, part: Path, url: str, headers: dict[str, str], total: int | None,
                         progress: Progress | None, what: str) -> tuple[str, int]:
        digest, size = hashlib.sha256(), 0
        with part.open("wb") as out:
            if progress:
                progress(0, total)
            async for chunk in self._stream(url, headers, what):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                if total is not None and size > total:
                    raise IntegrityError(f"{what}: more bytes arrived than the DRS record's {total}")
                if progress:
                    progress(size, total)
        return digest.hexdigest(), size


def _segment(value: str) -> str:
    return quote(value, safe="")


def _method(obj: dict[str, Any], access_id: str, object_id: str) -> str:
    if obj.get("contents"):
        members = ", ".join(str(c.get("id")) for c in obj["contents"][:5]) + (", …" if len(obj["contents"]) > 5 else "")
        raise NoSuchAccess(f"{object_id} is a dataset (a DRS bundle) of {len(obj['contents'])} files; fetch each "
                           f"by its own id ({members})")
    for method in obj.get("access_methods") or ():
        if method.get("access_id") == access_id:
            return access_id
    offered = ", ".join(str(m.get("access_id") or m.get("type")) for m in obj.get("access_methods") or ()) or "none"
    raise NoSuchAccess(f"{object_id} offers no {access_id!r} access (offered: {offered})")


def _header_lines(headers: Any) -> dict[str, str]:
    """DRS ``AccessURL.headers``: a list of ``Name: value`` strings (a JSON object is taken too)."""
    if isinstance(headers, dict):
        return {str(k): str(v) for k, v in headers.items()}
    out: dict[str, str] = {}
    for line in headers or ():
        name, sep, value = str(line).partition(":")
        if sep and name.strip():
            out[name.strip()] = value.strip()
    return out


def _problem_detail(response: httpx.Response) -> str:
    """The message of a DRS error (``msg``), an htsget error (``htsget.message``) or a problem (``detail``)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        htsget = body.get("htsget")
        if isinstance(htsget, dict) and htsget.get("message"):
            return str(htsget["message"])
        for key in ("detail", "msg", "title"):
            if body.get(key):
                return " ".join(str(body[key]).split())
    return response.reason_phrase or f"HTTP {response.status_code}"


def _refuse_existing(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists")
    if path.exists() and not path.is_file():
        raise IsADirectoryError(f"{path} is not a regular file")


@contextlib.asynccontextmanager
async def _partial(path: Path, overwrite: bool) -> AsyncIterator[Path]:
    """``<path>.part`` to write into, renamed to ``path`` on success and removed on any failure."""
    part = path.with_name(path.name + ".part")
    try:
        yield part
        _refuse_existing(path, overwrite)  # someone may have put a file there meanwhile
        os.replace(part, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
        raise
