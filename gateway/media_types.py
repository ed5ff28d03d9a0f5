"""Media types and download names of archived objects, as DRS describes them and the data endpoint serves them.

None of the genomics formats has an IANA registration, so they take the ``vnd.ga4gh`` types the
htsget specification uses in its own examples (``data:application/vnd.ga4gh.vcf;base64,...``):

| format | media type |
|---|---|
| BAM | ``application/vnd.ga4gh.bam`` |
| CRAM | ``application/vnd.ga4gh.cram`` |
| VCF (bgzipped) | ``application/vnd.ga4gh.vcf`` |
| BCF | ``application/vnd.ga4gh.bcf`` |
| FASTQ | ``application/gzip`` when gzipped (IANA, RFC 6713), else ``text/plain`` |

A Crypt4GH copy is ``application/octet-stream`` (Crypt4GH registers no media type) and is named
``<file name>.c4gh``, as ``crypt4gh encrypt`` users name theirs.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

MEDIA_TYPES = {
    "BAM": "application/vnd.ga4gh.bam",
    "CRAM": "application/vnd.ga4gh.cram",
    "VCF": "application/vnd.ga4gh.vcf",
    "BCF": "application/vnd.ga4gh.bcf",
}
CRYPT4GH_MEDIA_TYPE = "application/octet-stream"
OCTET_STREAM = "application/octet-stream"


def media_type(obj: dict[str, Any]) -> str:
    """The media type of an archived object's plaintext, from its format (and for FASTQ its name)."""
    fmt = obj.get("format")
    if fmt in MEDIA_TYPES:
        return MEDIA_TYPES[fmt]
    if fmt == "FASTQ":
        return "application/gzip" if str(obj.get("filename", "")).endswith((".gz", ".bgz")) else "text/plain"
    return OCTET_STREAM


_OUTPUT_TYPES = {".tsv": "text/tab-separated-values", ".csv": "text/csv", ".txt": "text/plain",
                 ".json": "application/json", ".gz": "application/gzip", ".pdf": "application/pdf",
                 ".png": "image/png", ".svg": "image/svg+xml", ".html": "text/plain"}


def output_media_type(filename: str) -> str:
    """The media type of a task's released output, from its name; HTML is served as text, never rendered."""
    suffix = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return _OUTPUT_TYPES.get(suffix, OCTET_STREAM)


def content_disposition(filename: str) -> str:
    """``attachment`` with the file name, as RFC 6266 says: an ASCII fallback and the UTF-8 name."""
    fallback = "".join(c if 0x20 <= ord(c) < 0x7f and c not in '"\\' else "_" for c in filename) or "download"
    value = f'attachment; filename="{fallback}"'
    if fallback != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value
