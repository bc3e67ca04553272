"""The kept stream of a run: what its agent and command steps printed, bounded, in order.

A step that streams (``step.agent``'s parsed events, ``step.cli``'s output
lines) hands each event to ``StreamLog.append`` as it arrives. The store
gives it a ``seq`` (strictly increasing per run, also across app restarts:
it is the SSE id a browser resumes from), keeps it on disk so a page opened
late or after a restart shows everything kept so far, and hands it to the
live readers of this process (``subscribe``). Nothing of it goes into the
engine's step memo.

Layout, under ``<data_dir>/runs/<run_id>/stream/`` (0700 directories, 0600
files, like ``steprecords.py``)::

    steps/<key>/meta.json            {"step_id", "agent", "session_id", "attempt", "ended",
                                      "events", "bytes", "last_seq", "dropped", ...}
    steps/<key>/000000000017.jsonl   a segment: one JSON event per line, named by its first seq

``<key>`` is the step id made a plain file name plus a hash (step ids hold
``/``). Segments are at most an eighth of the step cap, so a cap is kept by
deleting a step's oldest segment (never rewriting a file): the step cap
per step, then the run cap over the run's oldest segments. What was
deleted is counted in the step's meta, and readers see one ``dropped``
marker per step where its events were cut (its ``seq`` is the last dropped
event's, so it sorts into place and resumes like any event).

``append`` never touches the disk on the event loop (after ``ready()``):
events wait in memory and a flush task writes them in a worker thread
every ``FLUSH_SECONDS``, on ``flush()``, and at app shutdown
(``flush_all``). A crash loses at most the last ``FLUSH_SECONDS`` of
events; a line torn by it is skipped by readers and never glued to the
next one.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from agentcmd.workflows.streamfiles import (
    MAX_EVENT_BYTES,
    MIN_CAP_BYTES,
    RUN_CAP_BYTES,
    SEGMENTS_PER_CAP,
    STEP_CAP_BYTES,
    RunFiles,
    StreamError,
    dropped_total,
    fit_event,
    fmt_bytes,
    last_seq,
    read_events,
    segment_bytes,
    set_step_meta,
    step_key,
    step_meta,
    stream_dir,
)

__all__ = ["MAX_EVENT_BYTES", "MIN_CAP_BYTES", "RUN_CAP_BYTES", "SEGMENTS_PER_CAP", "STEP_CAP_BYTES", "StreamError",
           "StreamLog", "Subscription", "configure", "dropped_total", "flush_all", "fmt_bytes", "known_log",
           "last_seq", "read_events", "segment_bytes", "set_step_meta", "step_key", "step_meta", "stream_dir",
           "stream_log", "subscribe"]

log = logging.getLogger("agentcmd.streams")

FLUSH_SECONDS = 0.05
READER_QUEUE = 2000
"""Events a live reader may have waiting; past that it re-reads from disk instead."""
CATCH_UP_BATCH = 500
REGISTRY_SIZE = 256
"""Idle logs kept in the registry; an evicted one recovers its state from disk when used again."""



# Live readers ----------------------------------------------------------------

class Subscription:
    """Events of one run as they are appended in this process, after stored ones past ``after``.

    Registered when created (nothing appended after that is missed). It
    holds at most ``READER_QUEUE`` events; a reader that falls further
    behind re-reads from disk (``read_events``) instead of growing memory.
    With ``data_dir`` and ``after`` it first yields the stored events
    after ``after``: stored, then live, each event once, by seq.
    """

    def __init__(self, run_id: str, *, data_dir: Path | None = None, after: int | None = None) -> None:
        self.run_id = run_id
        self.data_dir = data_dir
        self.last_seq = after or 0
        self._queue: collections.deque[dict[str, Any]] = collections.deque()
        self._ready: list[dict[str, Any]] = []
        self._catch_up = after is not None and data_dir is not None
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._closed = False
        _readers.setdefault(run_id, set()).add(self)

    def _push(self, event: dict[str, Any]) -> None:
        if self._closed:
            return
        if len(self._queue) >= READER_QUEUE:
            self._queue.clear()
            self._catch_up = True  # too slow: what it missed is on disk
        else:
            self._queue.append(event)
        self._wake.set()

    def notify(self, event: dict[str, Any]) -> None:
        try:
            same = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            same = False
        if same:
            self._push(event)
        else:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._push, event)

    def close(self) -> None:
        self._closed = True
        readers = _readers.get(self.run_id)
        if readers is not None:
            readers.discard(self)
            if not readers:
                _readers.pop(self.run_id, None)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __aiter__(self) -> Subscription:
        return self

    async def _read_disk(self) -> list[dict[str, Any]]:
        log_ = _by_run.get(self.run_id)
        data_dir = self.data_dir or (log_.data_dir if log_ is not None else None)
        if log_ is not None:
            await log_.flush()
        if data_dir is None:
            return []
        return await asyncio.to_thread(read_events, data_dir, self.run_id, after=self.last_seq,
                                       limit=CATCH_UP_BATCH)

    async def __anext__(self) -> dict[str, Any]:
        """The next event (cancel-safe: an event is only taken when it is returned)."""
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._ready:
                event = self._ready.pop(0)
                self.last_seq = max(self.last_seq, int(event["seq"]))
                return event
            if self._catch_up:
                self._catch_up = False
                try:
                    events = await self._read_disk()
                except BaseException:
                    self._catch_up = True
                    raise
                if len(events) >= CATCH_UP_BATCH:
                    self._catch_up = True
                self._ready = [e for e in events if int(e["seq"]) > self.last_seq]
                continue
            while self._queue:
                event = self._queue.popleft()
                if int(event["seq"]) > self.last_seq:
                    self.last_seq = int(event["seq"])
                    return event
            self._wake.clear()
            await self._wake.wait()

    async def next_batch(self, limit: int = 500) -> list[dict[str, Any]]:
        """The next event and every one already waiting behind it (up to ``limit``), in one list.

        A busy stream is sent in one write per batch rather than one per event (cancel-safe
        like ``__anext__``: the first event is taken only when it is returned, the rest without awaiting).
        """
        batch = [await self.__anext__()]
        while len(batch) < limit:
            if self._ready:
                event = self._ready.pop(0)
            elif self._queue and not self._catch_up:
                event = self._queue.popleft()
            else:
                break
            if int(event["seq"]) > self.last_seq:
                self.last_seq = int(event["seq"])
                batch.append(event)
        return batch

    async def drain(self) -> list[dict[str, Any]]:
        """Everything appended so far that this reader has not had yet (flushed and read back)."""
        out: list[dict[str, Any]] = [e for e in self._ready if int(e["seq"]) > self.last_seq]
        self._ready = []
        if out:
            self.last_seq = int(out[-1]["seq"])
        while True:
            events = [e for e in await self._read_disk() if int(e["seq"]) > self.last_seq]
            if not events:
                break
            out.extend(events)
            self.last_seq = int(events[-1]["seq"])
        pending = [e for e in self._queue if int(e["seq"]) > self.last_seq]
        self._queue.clear()
        out.extend(pending)
        if pending:
            self.last_seq = int(pending[-1]["seq"])
        return out


_readers: dict[str, set[Subscription]] = {}


def subscribe(run_id: str, *, data_dir: Path | None = None, after: int | None = None) -> Subscription:
    """Live events of ``run_id`` appended in this process from now on (``async for``; ``close()`` or
    ``with`` when done). With ``data_dir`` and ``after``, the stored events after ``after`` first."""
    return Subscription(run_id, data_dir=data_dir, after=after)


# The log ---------------------------------------------------------------------

class StreamLog:
    """One run's stream in this process: seq, pending events, the flush task. Get it from ``stream_log``."""

    def __init__(self, data_dir: Path, run_id: str, step_cap_bytes: int, run_cap_bytes: int) -> None:
        self.data_dir = data_dir
        self.run_id = run_id
        self.dir = stream_dir(data_dir, run_id)
        self.step_cap_bytes = step_cap_bytes
        self.run_cap_bytes = run_cap_bytes
        self._seq: int | None = None
        self._pending: list[tuple[str, int, int, float, bytes]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._disk: RunFiles | None = None
        self._disk_lock = threading.Lock()
        self._seq_lock = threading.Lock()

    # seq -----------------------------------------------------------------
    def _recover(self) -> int:
        with self._seq_lock:
            if self._seq is None:
                self._seq = last_seq(self.data_dir, self.run_id)
            return self._seq

    async def ready(self) -> StreamLog:
        """Recover the last seq from disk in a thread, so that no ``append`` ever reads the disk."""
        if self._seq is None:
            await asyncio.to_thread(self._recover)
        return self

    @property
    def idle(self) -> bool:
        return not self._pending and self._timer is None and (self._task is None or self._task.done())

    # append --------------------------------------------------------------
    def append(self, step_id: str, attempt: int, event: dict[str, Any]) -> dict[str, Any]:
        """Give ``event`` its seq, ts, run_id, step_id and attempt; queue its write; tell live readers.

        Synchronous and never blocks on the disk once ``ready()`` ran (before
        that, the first call reads the last seq: a few small reads).
        """
        if self._seq is None:
            self._recover()
        with self._seq_lock:
            assert self._seq is not None
            self._seq += 1
            seq = self._seq
        ts = event.get("ts")
        full = {"seq": seq, "ts": ts if isinstance(ts, int | float) and not isinstance(ts, bool) else
                round(time.time(), 3), "run_id": self.run_id, "step_id": step_id, "attempt": attempt}
        full.update({k: v for k, v in event.items() if k not in full})
        limit = min(MAX_EVENT_BYTES, segment_bytes(self.step_cap_bytes, self.run_cap_bytes))
        line = fit_event(full, limit)
        self._pending.append((step_id, seq, attempt, float(full["ts"]), line))
        for reader in list(_readers.get(self.run_id, ())):
            reader.notify(full)
        self._schedule()
        return full

    def _schedule(self) -> None:
        if self._timer is not None or (self._task is not None and not self._task.done()):
            return  # the running flush looks again when it is done
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write(self._take())  # no loop (a script, a thread): write now
            return
        self._timer = loop.call_later(FLUSH_SECONDS, self._start_flush)

    def _start_flush(self) -> None:
        self._timer = None
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        while self._pending:
            await asyncio.to_thread(self._write, self._take())

    def _take(self) -> list[tuple[str, int, int, float, bytes]]:
        batch, self._pending = self._pending, []
        return batch

    def _write(self, batch: list[tuple[str, int, int, float, bytes]]) -> None:
        if not batch:
            return
        with self._disk_lock:
            try:
                if self._disk is None:
                    self._disk = RunFiles(self.dir, self.run_id)
                self._disk.write(batch, self.step_cap_bytes, self.run_cap_bytes)
            except OSError as exc:   # a full or read-only disk never fails the step
                self._disk = None
                log.warning("could not keep %d stream event(s) of run %s: %s", len(batch), self.run_id, exc)

    async def flush(self) -> None:
        """Write everything appended so far (in a thread) and return when it is on disk."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        task = self._task
        if task is not None and not task.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(task)
        if self._pending:
            await asyncio.to_thread(self._write, self._take())

    def flush_sync(self) -> None:
        """The blocking flush, for a loop that is going away."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._write(self._take())


_registry: collections.OrderedDict[tuple[str, str], StreamLog] = collections.OrderedDict()
_by_run: dict[str, StreamLog] = {}
_caps: dict[str, int] = {}


def configure(step_cap_bytes: int | None = None, run_cap_bytes: int | None = None) -> None:
    """The caps new logs get (the app server passes the ``streams`` setting at startup)."""
    if step_cap_bytes is not None:
        _caps["step"] = int(step_cap_bytes)
    if run_cap_bytes is not None:
        _caps["run"] = int(run_cap_bytes)


def _default_caps() -> tuple[int, int]:
    if "step" not in _caps or "run" not in _caps:
        try:
            from agentcmd.config import load_settings

            streams = load_settings().streams
            _caps.setdefault("step", streams.step_cap_bytes)
            _caps.setdefault("run", streams.run_cap_bytes)
        except Exception:   # a broken config must not break streaming: the defaults
            _caps.setdefault("step", STEP_CAP_BYTES)
            _caps.setdefault("run", RUN_CAP_BYTES)
    return _caps["step"], _caps["run"]


def stream_log(data_dir: Path, run_id: str, *, step_cap_bytes: int | None = None,
               run_cap_bytes: int | None = None) -> StreamLog:
    """The process-wide log of ``run_id`` (one per run); ``StreamError`` for a run id that is no name."""
    key = (str(data_dir), run_id)
    found = _registry.get(key)
    if found is None:
        step_cap, run_cap = _default_caps()
        found = StreamLog(data_dir, run_id, step_cap, run_cap)
        _registry[key] = found
        for old_key in list(_registry)[:-REGISTRY_SIZE] if len(_registry) > REGISTRY_SIZE else []:
            if _registry[old_key].idle:
                old = _registry.pop(old_key)
                if _by_run.get(old.run_id) is old:
                    del _by_run[old.run_id]
    else:
        _registry.move_to_end(key)
    if step_cap_bytes is not None:
        found.step_cap_bytes = step_cap_bytes
    if run_cap_bytes is not None:
        found.run_cap_bytes = run_cap_bytes
    _by_run[run_id] = found
    return found


def known_log(run_id: str) -> StreamLog | None:
    """The log of ``run_id`` if this process appended to it."""
    return _by_run.get(run_id)


async def flush_all() -> None:
    """Write every pending event of every run (the app server's shutdown)."""
    for item in list(_registry.values()):
        with contextlib.suppress(Exception):
            await item.flush()


def forget_all() -> None:
    """Drop the registry and the configured caps (tests: a fresh "process" that must recover from disk)."""
    _registry.clear()
    _by_run.clear()
    _caps.clear()


async def events_iter(data_dir: Path, run_id: str, after: int = 0) -> AsyncIterator[dict[str, Any]]:
    """Stored events after ``after``, read in batches off the loop."""
    while True:
        batch = await asyncio.to_thread(read_events, data_dir, run_id, after=after, limit=CATCH_UP_BATCH)
        for event in batch:
            yield event
        if len(batch) < CATCH_UP_BATCH:
            return
        after = int(batch[-1]["seq"])
