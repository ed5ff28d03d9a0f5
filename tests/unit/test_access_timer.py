"""The access timer: due grants in, one expiry command per grant out, the same one for ever."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from genomebus.consumers import access_timer
from genomebus.consumers.access_timer import GRACE, AccessTimer, expire_command_id
from genomebus.infra.settings import Settings
from genomebus.schemas.access import AccessExpireRequested, grant_id_of
from genomebus.schemas.envelope import Envelope, decode, encode
from genomebus.schemas.topics import topic_for

NOW = datetime(2030, 6, 1, 8, 0, tzinfo=UTC)
APPLICATION = uuid.UUID("00000000-0000-4000-8000-0000000000b2")
TRIOS = "GDI-FI-DATASET-001"


def grant(application_id: uuid.UUID = APPLICATION, dataset_id: str = TRIOS) -> dict[str, Any]:
    return {"grant_id": grant_id_of(application_id, dataset_id), "application_id": application_id,
            "dataset_id": dataset_id, "expires_at": NOW - timedelta(minutes=1)}


class ReadModel:
    """Patches ``access.due_grants``: answers ``due`` (or raises ``failing`` once); remembers each ``now`` asked."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *due: dict[str, Any]) -> None:
        self.due = list(due)
        self.asked: list[datetime] = []
        self.failing: BaseException | None = None
        monkeypatch.setattr(access_timer.access, "due_grants", self.due_grants)

    async def due_grants(self, conn: Any, now: datetime, limit: int = 100) -> list[dict[str, Any]]:
        self.asked.append(now)
        if self.failing is not None:
            failing, self.failing = self.failing, None
            raise failing
        return self.due[:limit]


class Pool:
    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[object]:
        yield object()


class Publisher:
    def __init__(self) -> None:
        self.sent: list[Envelope[Any]] = []

    async def publish(self, envelope: Envelope[Any]) -> None:
        decode(encode(envelope))  # what the real publisher checks before sending
        self.sent.append(envelope)


class Clock:
    def __init__(self) -> None:
        self.seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds


@pytest.fixture
def settings() -> Settings:
    return Settings(topic_prefix=f"t{uuid.uuid4().hex[:6]}.")


def timer(settings: Settings, publisher: Publisher, monotonic: Clock | None = None) -> AccessTimer:
    return AccessTimer(settings, Pool(), publisher,  # type: ignore[arg-type]
                       monotonic=monotonic or Clock(), clock=lambda: NOW)


async def test_a_due_grant_gets_one_expiry_command_derived_from_it(monkeypatch: pytest.MonkeyPatch,
                                                                   settings: Settings) -> None:
    model = ReadModel(monkeypatch, grant())
    publisher = Publisher()

    [command] = await timer(settings, publisher).tick()

    assert publisher.sent == [command]
    assert isinstance(command.data, AccessExpireRequested)
    assert (command.data.application_id, command.data.dataset_id) == (APPLICATION, TRIOS)
    assert command.id == expire_command_id(grant_id_of(APPLICATION, TRIOS))
    assert (command.subject, command.actor, command.source) == (str(APPLICATION), "worker:access-timer",
                                                                settings.source)
    assert topic_for(command.data).context == "access.commands"
    assert model.asked == [NOW - GRACE]  # only once every clock agrees that the expiry passed


async def test_a_grant_is_asked_for_once_until_the_resend_delay_then_with_the_same_id(
        monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    ReadModel(monkeypatch, grant())
    publisher, clock = Publisher(), Clock()
    ticking = timer(settings, publisher, clock)

    first = await ticking.tick()
    assert await ticking.tick() == []  # the projector has not shown it expired yet: no second command
    clock.seconds += access_timer.RESEND_AFTER_S
    again = await ticking.tick()

    assert [c.id for c in again] == [c.id for c in first]
    assert len(publisher.sent) == 2


async def test_a_restarted_timer_sends_the_very_same_command(monkeypatch: pytest.MonkeyPatch,
                                                             settings: Settings) -> None:
    ReadModel(monkeypatch, grant())
    [before] = await timer(settings, Publisher()).tick()
    [after] = await timer(settings, Publisher()).tick()  # a new process: nothing remembered
    assert after.id == before.id and after.data == before.data and after.subject == before.subject


async def test_a_grant_no_longer_due_is_forgotten_and_each_grant_has_its_own_command(
        monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    other = grant(uuid.uuid4(), "GDI-FI-DATASET-002")
    model = ReadModel(monkeypatch, grant(), other)
    ticking = timer(settings, Publisher())

    sent = await ticking.tick()
    model.due = [other]
    assert await ticking.tick() == []

    assert len({c.id for c in sent}) == 2
    assert set(ticking.sent) == {other["grant_id"]}


async def test_run_ticks_until_stopped_and_outlives_a_transient_failure(monkeypatch: pytest.MonkeyPatch,
                                                                        settings: Settings) -> None:
    model = ReadModel(monkeypatch, grant())
    model.failing = ConnectionResetError("database restarting")
    publisher = Publisher()
    stop = asyncio.Event()
    running = asyncio.create_task(timer(settings, publisher).run(stop, interval_s=0.001))

    async with asyncio.timeout(5):
        while not publisher.sent:
            await asyncio.sleep(0.001)
    stop.set()
    await asyncio.wait_for(running, 5)

    assert len(model.asked) >= 2 and len(publisher.sent) == 1


async def test_any_other_failure_ends_the_timer_for_its_supervisor_to_restart(monkeypatch: pytest.MonkeyPatch,
                                                                              settings: Settings) -> None:
    model = ReadModel(monkeypatch, grant())
    model.failing = RuntimeError("a bug")
    with pytest.raises(RuntimeError, match="a bug"):
        await asyncio.wait_for(timer(settings, Publisher()).run(asyncio.Event(), interval_s=0.001), 5)
