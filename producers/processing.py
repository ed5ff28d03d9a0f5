"""A researcher's or output checker's session with the node's processing APIs: TES tasks and the airlock.

The same session as ``AccessClient`` (a bearer token, refusals raised as ``AccessRefused`` with the
problem document's reasons), with the TES and airlock calls.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from genomebus.producers.access import AccessClient, AccessRefused

TERMINAL = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"}
TES = "/ga4gh/tes/v1"


class ProcessingClient(AccessClient):
    # -- TES ---------------------------------------------------------------------------------------------

    async def submit_task(self, task: dict[str, Any]) -> str:
        return (await self._call("POST", f"{TES}/tasks", task))["id"]

    async def task(self, task_id: str, view: str = "FULL") -> dict[str, Any]:
        return await self._call("GET", f"{TES}/tasks/{task_id}", params={"view": view})

    async def tasks(self, **params: Any) -> dict[str, Any]:
        return await self._call("GET", f"{TES}/tasks", params={k: v for k, v in params.items() if v is not None})

    async def cancel_task(self, task_id: str) -> None:
        await self._call("POST", f"{TES}/tasks/{task_id}:cancel")

    async def wait_task(self, task_id: str, *, timeout: float = 300, states: set[str] = TERMINAL) -> dict[str, Any]:
        """The task once it is in one of ``states`` (by default: ended)."""
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            task = await self.task(task_id)
            if task["state"] in states or time.monotonic() > deadline:
                return task
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    async def drs_access_url(self, object_id: str, access_id: str = "https") -> str:
        return (await self._call("GET", f"/ga4gh/drs/v1/objects/{object_id}/access/{access_id}"))["url"]

    # -- the airlock -------------------------------------------------------------------------------------

    async def output_requests(self, *, state: str | None = None, limit: int = 100) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if state:
            params["state"] = state
        return await self._call("GET", "/airlock/requests", params=params)

    async def output_request(self, task_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/airlock/requests/{task_id}")

    async def wait_output_request(self, task_id: str, states: set[str], *, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                request = await self.output_request(task_id)
                if request["state"] in states or time.monotonic() > deadline:
                    return request
            except AccessRefused as exc:  # 404 until the task's outputs reach the airlock
                if exc.status != 404 or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.2)

    async def approve_output(self, task_id: str, note: str | None = None) -> dict[str, Any]:
        return await self._call("POST", f"/airlock/requests/{task_id}/approve", {"note": note})

    async def reject_output(self, task_id: str, reason: str) -> dict[str, Any]:
        return await self._call("POST", f"/airlock/requests/{task_id}/reject", {"reason": reason})
