"""The engine's part, played over real HTTP for the workflow tests (no engine process).

``Driver`` POSTs execution requests to the SDK's serve endpoint the way the
wire reference (§5, §6) says an engine does (memo map, stack, attempts,
targeted steps) and applies the answers. It keeps every call, so tests can
count how often the body was replayed and a step re-ran. ``FakeEngine``
answers the engine's event and REST routes with runs driven by ``Driver``;
``ServerThread`` serves either on an ephemeral loopback port.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException, Request
from tests.harness.servers import LiveServer

# inngest 0.5.19 defines a pydantic model with a class-based Config; the deprecation warning fires once,
# at import, and is not ours to fix (pytest turns warnings into errors).
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import inngest
    import inngest.fast_api  # noqa: F401

SERVE_PATH = "/api/workflows/inngest"


class ServerThread(LiveServer):
    """A uvicorn server for ``app`` on an ephemeral loopback port, in a thread, with the ``Driver`` aimed at it."""

    def __init__(self, app: FastAPI) -> None:
        super().__init__(app, proxy_headers=True, access_log=True)
        self.driver: Driver | None = None


@dataclass
class RunResult:
    status: str
    output: Any
    calls: list[dict[str, Any]] = field(default_factory=list)
    memos: dict[str, Any] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)


class Driver:
    """Drive one function run against the SDK's HTTP handler, like an engine would."""

    def __init__(self, base_url: str, app_id: str = "agentcmd") -> None:
        self.url = base_url + SERVE_PATH
        self.app_id = app_id
        self.http = httpx.Client(timeout=60)

    def run(self, workflow_id: str, data: dict[str, Any] | None = None, *, trigger: str | None = None,
            max_attempts: int = 1, events: dict[str, dict[str, Any] | None] | None = None,
            run_id: str | None = None, max_calls: int = 80,
            on_step: Callable[[RunResult], None] | None = None,
            cancelled: Callable[[], bool] | None = None) -> RunResult:
        event = {"name": trigger or f"agentcmd/workflow.{workflow_id}", "data": data or {},
                 "id": uuid.uuid4().hex, "ts": int(time.time() * 1000), "user": {}}
        run_id = run_id or f"run-{uuid.uuid4().hex[:12]}"
        steps: dict[str, Any] = {}
        stack: list[str] = []
        result = RunResult("Running", None)
        attempt, target = 0, "step"

        def save(op: dict[str, Any], memo: Any) -> None:
            steps[op["id"]] = memo
            stack.append(op["id"])
            name = op.get("displayName") or op["name"]
            result.names.append(name)
            failed = isinstance(memo, dict) and "error" in memo
            result.steps.append({"step_id": op["id"], "name": name, "op": op["op"], "attempt": attempt,
                                 "status": "Failed" if failed else "Completed",
                                 "output": memo.get("data") if isinstance(memo, dict) and not failed else memo,
                                 "error": memo["error"] if failed else None,
                                 "started_at": None, "ended_at": None})
            if on_step is not None:
                on_step(result)

        for _ in range(max_calls):
            if cancelled is not None and cancelled():
                result.status = "Cancelled"
                break
            body = {"event": event, "events": [event], "steps": {k: steps[k] for k in stack},
                    "ctx": {"run_id": run_id, "attempt": attempt, "max_attempts": max_attempts,
                            "disable_immediate_execution": False, "use_api": False,
                            "stack": {"stack": list(stack), "current": len(stack)}},
                    "use_api": False, "version": 2}
            try:
                resp = self.http.post(self.url, params={"fnId": f"{self.app_id}-{workflow_id}", "stepId": target},
                                      content=json.dumps(body), headers={"content-type": "application/json"})
            except httpx.TransportError:
                if cancelled is not None and cancelled():
                    continue
                raise
            if cancelled is not None and cancelled():
                continue  # an engine drops answers that arrive for a finished run
            result.calls.append({"status": resp.status_code, "body": resp.json(), "target": target})
            no_retry = resp.headers.get("x-inngest-no-retry") == "true"
            if resp.status_code == 200:
                result.status, result.output = "Completed", resp.json()
                break
            if resp.status_code != 206:
                if no_retry or attempt + 1 >= max_attempts:
                    result.status, result.output = "Failed", resp.json()
                    break
                attempt += 1
                continue
            op = resp.json()[0]
            kind = op["op"]
            target = "step"
            if kind == "StepRun":
                save(op, {"data": op["data"]})
                attempt = 0
            elif kind == "StepPlanned":
                target, attempt = op["id"], 0
            elif kind == "Sleep":
                save(op, None)
            elif kind == "WaitForEvent":
                save(op, (events or {}).get(op["name"]))
            elif kind == "StepFailed" or (kind == "StepError" and (no_retry or attempt + 1 >= max_attempts)):
                save(op, {"error": op["error"]})
                attempt = 0
            elif kind == "StepError":
                attempt += 1
            else:
                raise AssertionError(f"driver: unexpected op {op}")
        else:
            raise AssertionError(f"run did not finish in {max_calls} calls: {result.calls[-3:]}")
        result.memos = steps
        return result


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class FakeEngine:
    """The engine's event API and REST API (docs/architecture.md), runs driven by ``Driver``.

    Stands in for the embedded engine until it lands; it answers the same
    routes with the same shapes, so the app API and the CLI are tested over
    real HTTP. It records the Authorization headers it saw.
    """

    def __init__(self) -> None:
        self.runs: dict[str, dict[str, Any]] = {}
        self.steps: dict[str, list[dict[str, Any]]] = {}
        self.event_runs: dict[str, list[str]] = {}
        self.events: list[dict[str, Any]] = []
        self.auth_seen: list[str | None] = []
        self.app_url: str | None = None
        self.threads: list[threading.Thread] = []
        self.app = self._build()

    def _start_runs(self, event: dict[str, Any]) -> None:
        assert self.app_url, "FakeEngine.app_url not set"
        workflows = httpx.get(self.app_url + "/api/workflows", timeout=10).json()["data"]
        for wf in workflows:
            if wf["trigger"] != event["name"]:
                continue
            run_id = f"run-{uuid.uuid4().hex[:16]}"
            self.runs[run_id] = {"run_id": run_id, "function_id": wf["function_id"],
                                 "function_slug": wf["function_id"], "app_id": "agentcmd",
                                 "event_id": event["id"], "status": "Running", "output": None, "error": None,
                                 "run_started_at": _now(), "ended_at": None, "attempt": 0}
            self.steps[run_id] = []
            self.event_runs.setdefault(event["id"], []).append(run_id)
            thread = threading.Thread(target=self._drive, args=(run_id, wf, event), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _drive(self, run_id: str, wf: dict[str, Any], event: dict[str, Any]) -> None:
        assert self.app_url
        driver = Driver(self.app_url)
        run = self.runs[run_id]

        def progress(result: RunResult) -> None:
            self.steps[run_id] = list(result.steps)

        try:
            result = driver.run(wf["id"], event["data"], trigger=event["name"], run_id=run_id,
                                max_attempts=(wf.get("retries") or 0) + 1, on_step=progress,
                                cancelled=lambda: run["status"] == "Cancelled")
        finally:
            driver.http.close()
        if run["status"] == "Cancelled":
            return
        self.steps[run_id] = list(result.steps)
        run["status"], run["ended_at"] = result.status, _now()
        if result.status == "Completed":
            run["output"] = result.output
        else:
            run["output"] = run["error"] = result.output

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def record_auth(request: Request, call_next: Any) -> Any:
            self.auth_seen.append(request.headers.get("authorization"))
            return await call_next(request)

        @app.post("/e/{key}")
        async def ingest(key: str, request: Request) -> dict[str, Any]:
            body = await request.json()
            events = body if isinstance(body, list) else [body]
            ids = []
            for event in events:
                event = {**event, "id": event.get("id") or uuid.uuid4().hex}
                self.events.append(event)
                ids.append(event["id"])
                threading.Thread(target=self._start_runs, args=(event,), daemon=True).start()
            return {"ids": ids, "status": 200}

        def found(run_id: str) -> dict[str, Any]:
            if run_id not in self.runs:
                raise HTTPException(404, "run not found")
            return self.runs[run_id]

        @app.get("/v1/events/{event_id}/runs")
        def event_runs(event_id: str) -> dict[str, Any]:
            return {"data": [self.runs[r] for r in self.event_runs.get(event_id, [])]}

        @app.get("/v1/runs")
        def list_runs(function_id: str | None = None, status: str | None = None, limit: int = 20) -> dict[str, Any]:
            runs = [r for r in reversed(self.runs.values())
                    if (not function_id or r["function_id"] == function_id) and (not status or r["status"] == status)]
            return {"data": runs[:limit], "metadata": {"next_cursor": None}}

        @app.get("/v1/runs/{run_id}")
        def get_run(run_id: str) -> dict[str, Any]:
            return {"data": found(run_id)}

        @app.get("/v1/runs/{run_id}/steps")
        def get_steps(run_id: str) -> dict[str, Any]:
            found(run_id)
            return {"data": self.steps.get(run_id, [])}

        @app.delete("/v1/runs/{run_id}")
        def cancel(run_id: str) -> dict[str, Any]:
            run = found(run_id)
            if run["status"] not in ("Completed", "Failed", "Cancelled"):
                run["status"], run["ended_at"] = "Cancelled", _now()
            return {"data": run}

        return app

    def wait_idle(self, timeout: float = 30) -> None:
        for thread in self.threads:
            thread.join(timeout)
