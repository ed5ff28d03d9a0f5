"""Access timer: asks for every grant past its expiry to be ended, once.

- in: nothing from Kafka; every ``access_timer_interval_s`` (default 1 s; not a declared setting)
  it reads ``due_grants`` from the ``access`` read model: approved grants whose ``expires_at``
  passed (by ``GRACE``)
- out: ``access.expire_requested`` on ``genomebus.access.commands``, keyed by the application,
  actor ``worker:access-timer``, its id derived from the grant (``expire_command_id``); the access
  decider answers it with ``access.expired`` (or a rejection, if a veto, a revocation or a closing
  came first)
- decides: nothing: which grant is due is the read model's answer, whether it ends the decider's
- settings: none of its own; ``access_timer_interval_s`` if a deployment's settings have it.
  A transient failure (database, broker) waits for the next tick; any other error ends the
  process, which its supervisor restarts

It keeps no state worth keeping, so it survives restarts and never fires twice. The command's id
is the same for a grant however often and by whichever instance it is sent, and the decider's
ledger answers a command it has seen with the outcome it recorded, so sending it again (a tick
before the projector showed the grant expired, a restart, two timers running) re-publishes the
same ``access.expired``, which the read model recognises by its id. Between sending and seeing the
grant no longer due it remembers what it sent, only to send it again no more than once per
``RESEND_AFTER_S`` (in case that one was dead-lettered). Enforcement never waits for the timer:
``active_grant`` compares ``expires_at`` with the clock itself.

The one subtle case: the decider compares the grant's expiry with its own clock, and a command it
refused (``not_due``) is refused for ever under that id. So the timer asks only ``GRACE`` after
the expiry, by which time any clock of the node agrees that it passed.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

import asyncpg

from genomebus.infra import db, kafka, telemetry
from genomebus.infra.faults import TRANSIENT
from genomebus.infra.readmodels import access
from genomebus.infra.settings import Settings
from genomebus.schemas.access import AccessExpireRequested
from genomebus.schemas.envelope import Envelope, new_envelope

log = logging.getLogger("genomebus.access_timer")

ACTOR = "worker:access-timer"
INTERVAL_S = 1.0
GRACE = timedelta(seconds=2)
RESEND_AFTER_S = 60.0
BATCH = 100

_EXPIRY = uuid.UUID("0b6f4f0e-8d7c-5e52-9a3b-7c1d2e4f6a80")


def expire_command_id(grant_id: UUID) -> UUID:
    """The id of the one expiry command of a grant: the same for ever, so the decider decides it once."""
    return uuid.uuid5(_EXPIRY, str(grant_id))


def expire_command(grant: dict[str, Any], settings: Settings) -> Envelope[AccessExpireRequested]:
    """The command that asks the decider to end a due grant (a row of ``access.due_grants``)."""
    command_id = expire_command_id(grant["grant_id"])
    return new_envelope(AccessExpireRequested(application_id=grant["application_id"], dataset_id=grant["dataset_id"]),
                        source=settings.source, actor=ACTOR, subject=str(grant["application_id"]),
                        event_id=command_id, correlation_id=command_id)


class Sends(Protocol):
    async def publish(self, envelope: Envelope[Any]) -> Any: ...


class AccessTimer:
    """One tick reads the due grants and sends each one's expiry command (again only after ``resend_after_s``)."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool, publisher: Sends, *,
                 resend_after_s: float = RESEND_AFTER_S, monotonic: Callable[[], float] = time.monotonic,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.settings = settings
        self.pool = pool
        self.publisher = publisher
        self.resend_after_s = resend_after_s
        self.monotonic = monotonic
        self.clock = clock
        self.sent: dict[UUID, float] = {}  # grant id → when its command was last sent (this process only)

    async def tick(self) -> list[Envelope[AccessExpireRequested]]:
        """Send the expiry command of every grant due now; return what was sent."""
        async with self.pool.acquire() as conn:
            due = await access.due_grants(conn, self.clock() - GRACE, limit=BATCH)
        self.sent = {g["grant_id"]: self.sent[g["grant_id"]] for g in due if g["grant_id"] in self.sent}
        sent = []
        for grant in due:
            last = self.sent.get(grant["grant_id"])
            if last is not None and self.monotonic() - last < self.resend_after_s:
                continue  # sent already; the read model has not shown its outcome yet
            command = expire_command(grant, self.settings)
            await self.publisher.publish(command)
            self.sent[grant["grant_id"]] = self.monotonic()
            sent.append(command)
        return sent

    async def run(self, stop: asyncio.Event, interval_s: float = INTERVAL_S) -> None:
        """Tick until ``stop`` is set; a transient failure (database, broker) waits for the next tick."""
        while not stop.is_set():
            try:
                for command in await self.tick():
                    log.info("asked to end grant %s of %s (%s)", command.id, command.subject,
                             command.data.dataset_id)
            except TRANSIENT as exc:
                log.warning("access timer: transient failure, trying again at the next tick: %r", exc)
            await _sleep_or_stop(stop, interval_s)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass


async def main(settings: Settings, stop: asyncio.Event) -> None:
    telemetry.setup(settings, "access-timer")
    pool = await db.connect(settings, max_size=1)
    try:
        async with kafka.Publisher(settings) as publisher:
            await AccessTimer(settings, pool, publisher).run(
                stop, float(getattr(settings, "access_timer_interval_s", INTERVAL_S)))
    finally:
        await pool.close()
