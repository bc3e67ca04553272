"""Engine rows written straight into a real store's tables, as the engine would have stored them.

``Seeder`` hands out ULIDs with increasing times from ``BASE_MS`` so
"newest first" is deterministic.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ulid import ULID

from agentcmd.engine.store import Store

BASE_MS = 1_790_000_000_000  # 2026-09-21


@dataclass
class Seeder:
    """Writes engine rows straight into the store's tables."""

    store: Store
    clock: int = BASE_MS

    def _tick(self, ms: int = 1000) -> int:
        self.clock += ms
        return self.clock

    def _ulid(self, at: int) -> str:
        return str(ULID.from_timestamp(at / 1000))

    def write(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        return self.store.db.write_sync(fn)

    def app(self, app_id: str = "agentcmd", url: str = "http://127.0.0.1:9/api/workflows/inngest",
            error: str | None = None) -> str:
        at = self._tick()
        self.write(lambda c: c.execute("INSERT INTO apps (app_id, url, sdk, framework, error, synced_at) "
                                       "VALUES (?,?,?,?,?,?)", (app_id, url, "py:v0.5.19", "fastapi", error, at)))
        return app_id

    def function(self, slug: str = "agentcmd-build", app_id: str = "agentcmd", name: str = "build",
                 event: str = "app/build.requested") -> str:
        config = {"id": slug, "name": name, "triggers": [{"event": event}]}
        at = self._tick()
        self.write(lambda c: c.execute(
            "INSERT INTO functions (slug, uuid, app_id, name, url, config, updated_at) VALUES (?,?,?,?,?,?,?)",
            (slug, f"uuid-{slug}", app_id, name, "http://127.0.0.1:9/x", json.dumps(config), at)))
        return slug

    def event(self, name: str = "app/build.requested", data: dict[str, Any] | None = None,
              at: int | None = None) -> str:
        at = at if at is not None else self._tick()
        eid = self._ulid(at)
        body = {"name": name, "data": data or {}, "id": eid, "ts": at, "user": {}}
        self.write(lambda c: c.execute("INSERT INTO events (internal_id, name, body, user_id, ts, received_at) "
                                       "VALUES (?,?,?,?,?,?)", (eid, name, json.dumps(body), None, at, at)))
        return eid

    def run(self, slug: str = "agentcmd-build", event_id: str | None = None, status: str = "Completed",
            output: Any = None, error: str | None = None, duration_ms: int = 4200, at: int | None = None,
            app_id: str = "agentcmd") -> str:
        at = at if at is not None else self._tick()
        event_id = event_id or self.event(at=at)
        run_id = self._ulid(at)
        events = self.write(lambda c: c.execute("SELECT body FROM events WHERE internal_id=?",
                                                (event_id,)).fetchone())
        ended = at + duration_ms if status in ("Completed", "Failed", "Cancelled") else None
        self.write(lambda c: c.execute(
            "INSERT INTO runs (run_id, function_slug, app_id, event_id, first_event, events, status, output, error, "
            "max_attempts, attempt, created_at, started_at, ended_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (run_id, slug, app_id, event_id, events[0] if events else "{}", f"[{events[0]}]" if events else "[]",
             status,
             None if output is None else json.dumps(output), error, 4, 0, at, at, ended)))
        return run_id

    def step(self, run_id: str, name: str, memo: Any, status: str = "completed", op: str = "StepRun",
             started: int | None = None, duration_ms: int = 1500, attempt: int = 0) -> str:
        started = started if started is not None else self._tick(10)
        step_id = f"hash-{name}"
        self.write(lambda c: c.execute(
            "INSERT INTO steps (run_id, step_id, seq, name, op, memo, status, attempt, started_at, ended_at) "
            "VALUES (?, ?, (SELECT COALESCE(MAX(seq), -1) + 1 FROM steps WHERE run_id=?), ?,?,?,?,?,?,?)",
            (run_id, step_id, run_id, name, op, json.dumps(memo), status, attempt, started, started + duration_ms)))
        return step_id

    def sleep(self, run_id: str, step_id: str, until: int) -> None:
        self.write(lambda c: c.execute("INSERT INTO queue (kind, run_id, step_id, ready_at) VALUES ('sleep',?,?,?)",
                                       (run_id, step_id, until)))

    def in_flight(self, run_id: str, since: int) -> None:
        self.write(lambda c: c.execute("INSERT INTO queue (kind, run_id, step_id, ready_at, lease_until) "
                                       "VALUES ('step',?,'step',?,?)", (run_id, since, since + 60_000)))

    def wait(self, run_id: str, step_id: str, event_name: str, expires_at: int, expression: str | None = None
             ) -> None:
        self.write(lambda c: c.execute(
            "INSERT INTO pauses (kind, run_id, step_id, event_name, expression, after_event, expires_at) "
            "VALUES ('wait',?,?,?,?,?,?)", (run_id, step_id, event_name, expression, "0", expires_at)))

    def history(self, run_id: str, type_: str, detail: str | None = None, step_id: str | None = None) -> None:
        at = self._tick(5)
        self.write(lambda c: c.execute("INSERT INTO history (run_id, at, type, step_id, attempt, detail) "
                                       "VALUES (?,?,?,?,?,?)", (run_id, at, type_, step_id, 0, detail)))
