"""A researcher's or output checker's session with the node's processing APIs: TES tasks and the airlock.

The same session as ``AccessClient`` (a bearer token, refusals raised as ``AccessRefused`` with the
problem document's reasons), with the TES and airlock calls.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx

from genomebus.producers.access import AccessClient, AccessRefused
from genomebus.producers.commands import GatewayUnavailable

TERMINAL = {"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"}
TES = "/ga4gh/tes/v1"
WES = "/ga4gh/wes/v1"


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

    # -- WES ---------------------------------------------------------------------------------------------

    async def submit_run(self, workflow_url: str, params: dict[str, Any], *, version: str = "v1.2",
                         tags: dict[str, str] | None = None, engine_parameters: dict[str, str] | None = None) -> str:
        """``POST /ga4gh/wes/v1/runs`` as a multipart form (the spec's encoding); the run id."""
        form = {"workflow_url": workflow_url, "workflow_type": "CWL", "workflow_type_version": version,
                "workflow_params": json.dumps(params), "tags": json.dumps(tags or {}),
                "workflow_engine_parameters": json.dumps(engine_parameters or {})}
        files = {k: (None, v) for k, v in form.items()}  # (no file name): plain parts, multipart/form-data
        try:
            response = await self.http.post(f"{WES}/runs", files=files, headers=self.headers)
        except httpx.TransportError as exc:
            raise GatewayUnavailable(f"the gateway at {self.http.base_url} does not answer "
                                     f"({type(exc).__name__})") from exc
        if response.status_code >= 400:
            problem = response.json() if response.headers.get("content-type", "").startswith("application/") else {}
            raise AccessRefused(response.status_code, problem.get("msg") or response.reason_phrase, "",
                                problem.get("reasons") or [], None)
        return response.json()["run_id"]

    async def run_log(self, run_id: str) -> dict[str, Any]:
        return await self._call("GET", f"{WES}/runs/{run_id}")

    async def wait_run(self, run_id: str, *, timeout: float = 600) -> dict[str, Any]:
        """The run once it has ended (its step logs with it), or as it is at ``timeout``."""
        deadline = time.monotonic() + timeout
        delay = 0.1
        while True:
            run = await self.run_log(run_id)
            if run["state"] in TERMINAL or time.monotonic() > deadline:
                return run
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def cancel_run(self, run_id: str) -> None:
        await self._call("POST", f"{WES}/runs/{run_id}/cancel")

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
