"""Upcasters lift stored events of an old schema version to the current one.

Events on the log are never edited. When an event model changes shape, its
``schema_version`` goes up and one upcaster per old version is registered
here; readers then see only the current shape, however old the message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Raw = dict[str, Any]
Upcaster = Callable[[Raw], Raw]


class UpcastError(ValueError):
    """A stored event whose version no upcaster can bring to the current one."""


class Upcasters:
    def __init__(self) -> None:
        self._steps: dict[tuple[str, int], Upcaster] = {}

    def register(self, event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Register ``fn(data) -> data`` lifting ``event_type`` data from ``from_version`` to the next."""

        def add(fn: Upcaster) -> Upcaster:
            key = (event_type, from_version)
            if key in self._steps:
                raise ValueError(f"an upcaster for {event_type} v{from_version} is already registered")
            self._steps[key] = fn
            return fn

        return add

    def upcast(self, envelope: Raw, current_version: int) -> Raw:
        """Return ``envelope`` (a decoded JSON object) with data at ``current_version``."""
        event_type = envelope.get("type")
        version = envelope.get("schema_version")
        # bool is a subclass of int, but JSON ``true`` is no version
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise UpcastError(f"schema_version must be a positive integer, got {version!r}")
        if version > current_version:
            raise UpcastError(f"{event_type} v{version} is newer than this reader (v{current_version})")
        data = envelope.get("data")
        while version < current_version:
            step = self._steps.get((event_type, version))  # type: ignore[arg-type]
            if step is None:
                raise UpcastError(f"no upcaster for {event_type} from v{version}")
            data = step(dict(data))  # type: ignore[arg-type]
            version += 1
        return {**envelope, "data": data, "schema_version": version}


UPCASTERS = Upcasters()
"""The registry the bus uses; upcasters live next to the event they lift."""
