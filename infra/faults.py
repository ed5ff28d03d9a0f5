"""Which errors are worth trying again: one list for every worker and the projector.

Anything not listed is a verdict on the event (a worker dead-letters it as ``handler_failed``;
the projector isolates it and dead-letters it as ``projection_failed``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import aiohttp
import asyncpg
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    LeaderNotAvailableError,
    NodeNotReadyError,
    NotLeaderForPartitionError,
    RequestTimedOutError,
)
from botocore.exceptions import ClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import ReadTimeoutError as BotoReadTimeoutError


class Transient(Exception):
    """Raised by a handler when the same event should be tried again later."""


TRANSIENT: tuple[type[BaseException], ...] = (
    Transient,
    ConnectionError,  # includes the builtin refused/reset/aborted errors; a plain OSError is not transient
    TimeoutError,  # includes asyncio timeouts and infra.projection.NotYetProjected
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    KafkaConnectionError,
    KafkaTimeoutError,
    RequestTimedOutError,
    NodeNotReadyError,
    LeaderNotAvailableError,
    NotLeaderForPartitionError,
    BotoConnectionError,  # endpoint unreachable, connection closed, connect timeout
    BotoReadTimeoutError,
    aiohttp.ClientConnectionError,
    aiohttp.ServerTimeoutError,
)
"""The errors worth trying again; anything else is a verdict on the event (``handler_failed``)."""

PROJECTOR_TRANSIENT: tuple[type[BaseException], ...] = (*TRANSIENT, OSError, KafkaError)
"""The projector waits out more: it may never skip an event, so any I/O or broker fault is retried, not judged."""


@contextlib.contextmanager
def object_store_faults() -> Iterator[None]:
    """Object-store errors: server-side and throttling ones are worth retrying (``Transient``); anything else is a verdict."""
    try:
        yield
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        code = exc.response.get("Error", {}).get("Code", "")
        if status >= 500 or status == 429 or code in {"SlowDown", "RequestTimeout", "Throttling", "InternalError"}:
            raise Transient(f"object store: {code or status}") from exc
        raise
