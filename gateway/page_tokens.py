"""Opaque page tokens for the GA4GH list endpoints that page by token (TES, WES): an offset, base64url."""

from __future__ import annotations

import base64
import binascii

from genomebus.gateway.problems import Problem


def page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o{offset}".encode()).decode().rstrip("=")


def offset_of(token: str | None) -> int:
    """The offset a token this server gave stands for (0 without one); any other token is a 400."""
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if text.startswith("o") and text[1:].isdigit() and int(text[1:]) < 2**31:
            return int(text[1:])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise Problem(400, "bad-page-token", "page_token is not one this server gave; start again without it")
