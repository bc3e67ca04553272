"""Helpers of the connect-worker tests (tests/workers/conftest.py has the fixtures and the workflows)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
from tests.harness.engine import EngineProc
from tests.harness.processes import Child, clean_env, read_jsonl
from tests.polling import wait_for

TRIGGER = "agentcmd/workflow.record"


class WorkerProc(Child):
    """One ``agentcmd worker`` child."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        super().__init__(argv, env, log)
        self.name = name

    @property
    def pid(self) -> int:
        return int(self.proc.pid)


def worker_env(engine: EngineProc, home: Path, *, key: str | None = None) -> dict[str, str]:
    env = clean_env(home)
    env["PYTHONUNBUFFERED"] = "1"
    if engine.mode == "production":
        if key != "":   # "": no key at all
            env["INNGEST_SIGNING_KEY"] = key if key is not None else engine.signing_key
        env["INNGEST_EVENT_KEY"] = engine.event_key
    return env


def worker_argv(engine: EngineProc, project: Path, name: str, *extra: str) -> list[str]:
    """The engine's mode unless ``extra`` names one."""
    own = "--production" if engine.mode == "production" else "--dev"
    mode = [] if {"--dev", "--production"} & set(extra) else [own]
    return [sys.executable, "-m", "agentcmd", "worker", "--engine-url", engine.url, "--project", str(project),
            "--instance-id", name, *mode, *extra]


def app_workers(engine: EngineProc) -> list[dict[str, Any]]:
    apps = httpx.get(engine.url + "/v1/apps", headers=engine.headers, timeout=5).json()["data"]
    return [w for a in apps if a["id"] == "agentcmd" for w in a.get("workers", [])]


def ready_workers(engine: EngineProc, n: int, children: list[WorkerProc], timeout: float = 30) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = wait_for(
        lambda: (lambda ws: ws if len(ws) >= n else None)([w for w in app_workers(engine) if w["status"] == "ready"]),
        timeout, f"{n} ready workers on the engine", lambda: engine.output()[-2000:], children=children)
    return found


class Calls:
    """The steps' record file: which process ran which step of which run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def all(self, run_id: str | None = None, step: str | None = None) -> list[dict[str, Any]]:
        return [c for c in read_jsonl(self.path)
                if (run_id is None or c["run"] == run_id) and (step is None or c["step"] == step)]


def history_failures(engine: EngineProc, run_id: str) -> list[dict[str, Any]]:
    """The run's history entries that speak of a failure or a retry, or of a later attempt (none when no attempt
    was used)."""
    rows = httpx.get(f"{engine.url}/v1/runs/{run_id}/history", headers=engine.headers, timeout=5).json()["data"]
    return [r for r in rows if (r.get("attempt") or 0) > 0
            or any(word in str(r.get("type", "")).lower() for word in ("fail", "error", "retr"))]

