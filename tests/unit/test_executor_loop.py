"""The executor's runner loop: a run ending while a tick looks at the active runs does not stop the loop,
and a tick's unforeseen fault is logged, not fatal (found by bench/bench_processing.py: 16 runs left queued)."""

from __future__ import annotations

import asyncio
from typing import Any

from genomebus.consumers.executor import Executor
from genomebus.infra.settings import Settings


class Runs:
    """Stands in for the runs table: two active runs, one of which ends during the cancel check."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.claims = 0

    async def lapsed(self) -> list[Any]:
        return []

    async def renew(self, task_ids: list[str]) -> set[str]:
        return set(task_ids)

    async def cancelled(self, task_id: str) -> bool:
        self.executor.active.pop("task-b", None)  # its run_one finished meanwhile
        await asyncio.sleep(0)
        return False

    async def claim(self, n: int) -> list[Any]:
        self.claims += 1
        if self.claims == 1:
            raise ValueError("a fault nobody foresaw")
        return []


def executor() -> Executor:
    ex = Executor(Settings(node_id="FI"), pool=None, publisher=None, backend=None, archive=None,  # type: ignore[arg-type]
                  s3_client=None, public_key=b"")
    ex.runs = Runs(ex)  # type: ignore[assignment]
    return ex


async def test_a_run_ending_during_a_tick_does_not_break_it() -> None:
    ex = executor()
    ex.active = {"task-a": asyncio.Event(), "task-b": asyncio.Event()}
    ex.runs.claims = 1  # type: ignore[attr-defined] - no fault in this test
    await ex.tick()
    assert list(ex.active) == ["task-a"]


async def test_the_loop_outlives_a_faulty_tick_and_wakes_when_told() -> None:
    ex = executor()
    stop = asyncio.Event()
    loop = asyncio.create_task(ex.loop(stop))
    await asyncio.sleep(0.05)
    ex.wake.set()
    await asyncio.sleep(0.05)
    assert not loop.done() and ex.runs.claims >= 2  # type: ignore[attr-defined] - the fault was the first
    stop.set()
    await asyncio.wait_for(loop, 2)
