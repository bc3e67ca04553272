"""The app's own record of workflow steps: which one runs now, since when, in which process.

The engine only learns about a step when its answer arrives, so while a
step runs (minutes, for an agent) the engine's history still ends at the
previous step. The app knows better: it writes a line when a step's body
starts, when its command's process is up (its pid), and when it ends.

Storage: one append-only JSON-lines file per run,
``<data_dir>/runs/<run_id>/steps.jsonl``. Each line is the whole record of
one step attempt at that moment; the last line for a step id wins. Lines
are small and appended with one ``write`` (O_APPEND), so a crash leaves at
worst a torn last line, which readers skip. Writes run in a worker thread
(``asyncio.to_thread``): the event loop never waits on the disk.

While a step runs, the app touches the file every ``HEARTBEAT_SECONDS``
(its mtime is "the app was alive then"), so a step cut short by a crash
still shows roughly how long it ran.

Every line carries ``boot``, the id of the app server (``Runtime.boot_id``)
that wrote it. A record still ``running`` that an earlier app server wrote
was cut short by a restart or crash: readers report it ``interrupted``
(``effective``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

RUNNING, COMPLETED, FAILED, INTERRUPTED, CANCELLED = "running", "completed", "failed", "interrupted", "cancelled"
STATUSES = (RUNNING, COMPLETED, FAILED, INTERRUPTED, CANCELLED)

FILE_MODE = 0o600
HEARTBEAT_SECONDS = 5.0


def now_iso() -> str:
    """UTC, millisecond precision, ``Z``: the format the engine's REST API uses."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_ms(value: Any) -> int | None:
    """An ISO time (``Z`` or offset) as milliseconds since the epoch; None when it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return round(dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


def records_file(data_dir: Path, run_id: str) -> Path:
    return data_dir / "runs" / run_id / "steps.jsonl"


def _safe_run_id(run_id: str) -> bool:
    return bool(run_id) and "/" not in run_id and "\\" not in run_id and run_id not in (".", "..")


def append_sync(data_dir: Path, record: dict[str, Any]) -> None:
    """Append one record line (blocking: call through ``append``)."""
    run_id = str(record.get("run_id") or "")
    if not _safe_run_id(run_id):
        return
    path = records_file(data_dir, run_id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, FILE_MODE)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line  # a line torn by a crash stays alone: the new one is not glued to it
        os.write(fd, line)
    finally:
        os.close(fd)


async def append(data_dir: Path, record: dict[str, Any]) -> None:
    """Append one record line without blocking the loop; a disk problem never fails the step."""
    with contextlib.suppress(OSError):
        await asyncio.to_thread(append_sync, data_dir, dict(record))


def read_sync(data_dir: Path, run_id: str) -> list[dict[str, Any]]:
    """The latest record of each step of ``run_id``, in the order the steps first started."""
    if not _safe_run_id(run_id):
        return []
    path = records_file(data_dir, run_id)
    try:
        text = path.read_text(errors="replace")
        seen = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    except OSError:
        return []
    last_seen = seen.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    latest: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a torn last line after a crash
        if isinstance(rec, dict) and isinstance(rec.get("step_id"), str):
            latest[rec["step_id"]] = {**rec, "last_seen_at": last_seen}
    return list(latest.values())


async def read(data_dir: Path, run_id: str) -> list[dict[str, Any]]:
    return await asyncio.to_thread(read_sync, data_dir, run_id)


def effective(record: dict[str, Any], boot_id: str, now_ms: int | None = None) -> dict[str, Any]:
    """The record as the views show it: a ``running`` one from an earlier app process is
    ``interrupted``; ``elapsed_ms`` is up to now while running, else start to end."""
    rec = {k: record.get(k) for k in ("run_id", "step_id", "name", "phase", "status", "started_at",
                                       "ended_at", "pid", "attempt", "error")}
    now_ms = now_ms if now_ms is not None else round(dt.datetime.now(dt.UTC).timestamp() * 1000)
    start, end = iso_ms(rec["started_at"]), iso_ms(rec["ended_at"])
    if rec["status"] == RUNNING and record.get("boot") != boot_id:
        rec["status"] = INTERRUPTED
        rec["error"] = rec["error"] or "the app server stopped while this step ran; it runs again from its start"
        end = iso_ms(record.get("last_seen_at"))  # the last heartbeat: how long it ran, to within a few seconds
    if rec["status"] == RUNNING:
        rec["elapsed_ms"] = None if start is None else max(0, now_ms - start)
    else:
        rec["elapsed_ms"] = None if start is None or end is None else max(0, end - start)
        rec["pid"] = None
    return rec


class StepRecorder:
    """The record of one step attempt, written as it starts, gets a process and ends."""

    def __init__(self, data_dir: Path, run_id: str, step_id: str, phase: str | None, attempt: int,
                 boot_id: str) -> None:
        self._data_dir = data_dir
        name = step_id[len(phase) + 1:] if phase and step_id.startswith(f"{phase}/") else step_id
        self.record: dict[str, Any] = {"run_id": run_id, "step_id": step_id, "name": name, "phase": phase,
                                       "status": RUNNING, "started_at": now_iso(), "ended_at": None,
                                       "pid": None, "attempt": attempt, "error": None, "boot": boot_id}
        self._pending: set[asyncio.Task[None]] = set()
        self._heartbeat: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await append(self._data_dir, self.record)
        self._heartbeat = asyncio.get_running_loop().create_task(self._beat())

    async def _beat(self) -> None:
        path = records_file(self._data_dir, str(self.record["run_id"]))
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            with contextlib.suppress(OSError):
                await asyncio.to_thread(os.utime, path)

    def _stop_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()

    def process_started(self, pid: int) -> None:
        """Called (synchronously) when the step's command is spawned: record its pid."""
        self.record["pid"] = pid
        task = asyncio.get_running_loop().create_task(append(self._data_dir, self.record))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def end(self, status: str, error: str | None = None) -> None:
        self._stop_heartbeat()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)  # the pid line stays before the end
        self.record.update(status=status, ended_at=now_iso(), error=error)
        await append(self._data_dir, self.record)

    def end_sync(self, status: str, error: str | None = None) -> None:
        """For a body cancelled mid-step (shutdown): no awaiting, one small blocking write."""
        self._stop_heartbeat()
        self.record.update(status=status, ended_at=now_iso(), error=error)
        with contextlib.suppress(OSError):
            append_sync(self._data_dir, self.record)
