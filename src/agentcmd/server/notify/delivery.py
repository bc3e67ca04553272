"""Delivery in the background: a bounded queue, a few workers, retries with exponential backoff.

``Deliveries.offer(notice)`` is synchronous and quick (the run that told
must never wait): it picks the targets that want the notice
(``NotificationSettings.targets_for``) and queues one job per target. A
job whose (run, event, question, target) already has a final entry in the
run's ``notifications.json`` is not sent again, also after a restart; one
already queued or retrying here is not queued twice.

Each attempt has ``timeout_seconds``; a failed one is tried again after
``backoff_seconds`` x 1, 2, 4, ... until ``attempts`` attempts were made
(defaults 5 attempts, 1 s first delay: 1 + 2 + 4 + 8 = 15 s of waiting),
then the entry says ``failed`` with the last error. A 4xx answer (other than
408/429) is final at once. Waiting retries hold no worker. A full queue
(``QUEUE_MAX`` jobs) drops the notice, recorded as ``dropped``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from agentcmd.config.notifications import NotificationSettings, WorkflowRule
from agentcmd.server.notify import store
from agentcmd.server.notify.targets import Notice, Outcome, send

log = logging.getLogger("agentcmd.notify")

QUEUE_MAX = 1000
WORKERS = 4
Key = tuple[str, str, str, str]   # run id, event, question, target


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class _RedactSecrets(logging.Filter):
    """httpx logs each request's URL at INFO: the target URLs become their host."""

    def __init__(self, settings: NotificationSettings) -> None:
        super().__init__()
        self.secrets = settings.secrets()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a broken record is not ours to fix
            return True
        if any(s in text for s in self.secrets):
            for secret in self.secrets:
                text = text.replace(secret, "<redacted>")
            record.msg, record.args = text, None
        return True


class Deliveries:
    """The queue and its workers for one app server."""

    def __init__(self, settings: NotificationSettings, data_dir: Path,
                 rule_of: Callable[[str | None], WorkflowRule | None] | None = None) -> None:
        self.settings = settings
        self.data_dir = data_dir
        self.rule_of = rule_of   # a workflow's own define_workflow(notify=...) rule (the settings' wins)
        self.secrets = settings.secrets()
        self.queue: asyncio.Queue[tuple[Notice, str, int]] = asyncio.Queue(QUEUE_MAX)
        self.active: set[Key] = set()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.client = httpx.AsyncClient(follow_redirects=False)
        self._filter = _RedactSecrets(settings)
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).addFilter(self._filter)

    def start(self) -> None:
        for _ in range(WORKERS):
            self._spawn(self._worker())
        self._spawn(self._resume())

    async def _resume(self) -> None:
        """Take up the deliveries a stop cut off (``pending.json``), with the notices they kept."""
        for entry in await asyncio.to_thread(store.unfinished, self.data_dir):
            notice = Notice.from_json(entry.get("notice"))
            name = str(entry.get("target"))
            if notice is None or name not in self.settings.targets:
                continue   # a target since removed from the settings: left as it was
            key: Key = (notice.run_id, notice.event, notice.question, name)
            if key not in self.active:
                self.active.add(key)
                self._spawn(self._admit(notice, name, key))

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=5)
        await self.client.aclose()
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).removeFilter(self._filter)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # Offering ------------------------------------------------------------------

    def offer(self, notice: Notice) -> None:
        """Queue ``notice`` for every target that wants it; never blocks, never raises."""
        code_rule = self.rule_of(notice.workflow_id) if self.rule_of is not None else None
        for name in self.settings.targets_for(notice.workflow_id, notice.event, code_rule):
            key: Key = (notice.run_id, notice.event, notice.question, name)
            if key in self.active:
                continue
            self.active.add(key)
            self._spawn(self._admit(notice, name, key))

    async def _admit(self, notice: Notice, name: str, key: Key) -> None:
        try:
            found = await asyncio.to_thread(store.find, self.data_dir, notice.run_id, key[1:])
            if found is not None and found.get("status") in store.FINAL:
                self.active.discard(key)
                return
            entry = self._entry(notice, name, "pending", attempts=int((found or {}).get("attempts") or 0))
            if self.queue.full():
                log.warning("notification queue full (%d): %s of run %s to %s dropped", QUEUE_MAX, notice.event,
                            notice.run_id, name)
                entry.update(status="dropped", error="the notification queue was full")
                await self._record(notice.run_id, entry)
                self.active.discard(key)
                return
            # Recorded before it is queued: a worker's later "delivered" must never be overwritten by "pending".
            await self._record(notice.run_id, entry)
            self.queue.put_nowait((notice, name, entry["attempts"]))
        except Exception:
            self.active.discard(key)
            log.exception("could not queue the %s notification of run %s to %s", notice.event, notice.run_id, name)

    # Delivering ------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            notice, name, attempts = await self.queue.get()
            try:
                await self._attempt(notice, name, attempts)
            except Exception:
                log.exception("notification of run %s to %s failed unexpectedly", notice.run_id, name)
                self.active.discard((notice.run_id, notice.event, notice.question, name))
            finally:
                self.queue.task_done()

    async def _attempt(self, notice: Notice, name: str, attempts: int) -> None:
        key: Key = (notice.run_id, notice.event, notice.question, name)
        target = self.settings.targets[name]
        attempts += 1
        started = time.monotonic()
        outcome: Outcome = await send(self.client, target, notice, self.settings.timeout_seconds, self.secrets)
        entry = self._entry(notice, name, "delivered", attempts=attempts)
        entry["last_attempt_at"] = now_iso()
        entry["elapsed_ms"] = int((time.monotonic() - started) * 1000)
        if outcome.ok:
            entry["delivered_at"] = entry["last_attempt_at"]
            log.info("notified %s (%s, %s) of %s of run %s", name, target.type, target.destination, notice.event,
                     notice.run_id)
        elif outcome.final or attempts >= self.settings.attempts:
            entry.update(status=outcome.status or "failed", error=outcome.error)
            if outcome.status != "unavailable":
                log.warning("notifying %s (%s) of %s of run %s failed after %d attempt(s): %s", name,
                            target.destination, notice.event, notice.run_id, attempts, outcome.error)
        else:
            delay = self.settings.backoff_seconds * 2 ** (attempts - 1)
            entry.update(status="retrying", error=outcome.error, next_attempt_in_s=round(delay, 3))
            log.info("notifying %s (%s) of %s of run %s: attempt %d failed (%s), again in %.1f s", name,
                     target.destination, notice.event, notice.run_id, attempts, outcome.error, delay)
            await self._record(notice.run_id, entry)
            self._spawn(self._later(delay, notice, name, attempts))
            return
        await self._record(notice.run_id, entry)
        self.active.discard(key)

    async def _later(self, delay: float, notice: Notice, name: str, attempts: int) -> None:
        await asyncio.sleep(delay)
        try:
            self.queue.put_nowait((notice, name, attempts))
        except asyncio.QueueFull:
            entry = self._entry(notice, name, "dropped", attempts=attempts)
            entry["error"] = "the notification queue was full"
            await self._record(notice.run_id, entry)
            self.active.discard((notice.run_id, notice.event, notice.question, name))

    def _entry(self, notice: Notice, name: str, status: str, attempts: int) -> dict[str, Any]:
        target = self.settings.targets[name]
        entry: dict[str, Any] = {"event": notice.event, "question": notice.question or None, "target": name,
                                 "type": target.type, "destination": target.destination, "status": status,
                                 "attempts": attempts, "error": None, "at": notice.at, "updated_at": now_iso(),
                                 "notice": notice.to_json()}
        return entry

    async def _record(self, run_id: str, entry: dict[str, Any]) -> None:
        await asyncio.to_thread(store.record, self.data_dir, run_id, entry)
