"""The files of a run's kept stream: paths, step meta, segments, caps and reading them back.

``streamlog.py`` is the in-process side (seq, pending events, live readers);
this module is what it does on disk, always in a worker thread (or a
reader's ``asyncio.to_thread``). The layout and the caps are described in
``streamlog.py``'s docstring and docs/workflows.md, "Kept output and its caps".
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import json
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agentcmd.privatefs import FILE_MODE, ensure_private_dir
from agentcmd.safenames import is_plain_name

STEP_CAP_BYTES = 4 * 1024 * 1024
RUN_CAP_BYTES = 32 * 1024 * 1024
MIN_CAP_BYTES = 64 * 1024
SEGMENTS_PER_CAP = 8
"""A step's segment is at most ``step cap / SEGMENTS_PER_CAP``: dropping one loses at most that much."""
MAX_EVENT_BYTES = 256 * 1024
"""One event's line at most (and at most a segment): a longer ``text`` is cut, ``raw`` left out."""

_SEQ_AT_START = re.compile(rb'^\{"seq":(\d+)[,}]')
_SEGMENT = re.compile(r"^(\d{12})\.jsonl$")


class StreamError(ValueError):
    """A run id that cannot name a stream directory."""


# Paths ---------------------------------------------------------------------

def stream_dir(data_dir: Path, run_id: str) -> Path:
    """``<data_dir>/runs/<run_id>/stream``; ``StreamError`` unless ``run_id`` is one plain name."""
    if not isinstance(run_id, str) or not is_plain_name(run_id):
        raise StreamError(f"{run_id!r} is not a run id (letters, digits, '.', '_', '-' only)")
    return data_dir / "runs" / run_id / "stream"


def step_key(step_id: str) -> str:
    """A plain, unique file name for ``step_id`` (which may hold ``/`` and anything else)."""
    plain = re.sub(r"[^A-Za-z0-9_.-]+", "_", step_id).strip("._")[:80] or "step"
    return f"{plain}-{hashlib.sha256(step_id.encode('utf-8', 'surrogatepass')).hexdigest()[:16]}"


def segment_bytes(step_cap: int, run_cap: int) -> int:
    """The size of a segment (a slice a cap drops at once): an eighth of the smaller cap."""
    return max(MIN_CAP_BYTES, min(step_cap, run_cap)) // SEGMENTS_PER_CAP


def _segment_name(first_seq: int) -> str:
    return f"{first_seq:012d}.jsonl"


def _segments(step_dir: Path) -> list[tuple[int, Path]]:
    """A step's segments, oldest first: (first seq, path)."""
    try:
        names = os.listdir(step_dir)
    except OSError:
        return []
    found = [(int(m.group(1)), step_dir / n) for n in names if (m := _SEGMENT.match(n))]
    return sorted(found)


def _step_dirs(sdir: Path) -> list[Path]:
    try:
        return [sdir / "steps" / n for n in sorted(os.listdir(sdir / "steps"))]
    except OSError:
        return []


# Step meta -------------------------------------------------------------------

_meta_lock = threading.Lock()


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _write_meta(step_dir: Path, meta: dict[str, Any]) -> None:
    ensure_private_dir(step_dir)
    tmp = step_dir / f".meta.{os.getpid()}.{threading.get_ident()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        os.write(fd, json.dumps(meta, separators=(",", ":"), default=str).encode())
    finally:
        os.close(fd)
    os.replace(tmp, step_dir / "meta.json")


def _update_meta(step_dir: Path, step_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    with _meta_lock:
        meta = _read_json(step_dir / "meta.json") or {"step_id": step_id}
        meta.update(fields)
        meta["step_id"] = step_id
        _write_meta(step_dir, meta)
        return meta


def step_meta(data_dir: Path, run_id: str, step_id: str) -> dict[str, Any] | None:
    """The small record of one step's stream, or None: ``{"step_id", "agent", "session_id", "attempt",
    "ended", "events", "bytes", "last_seq", "dropped", "dropped_bytes"}`` (fields as written so far)."""
    return _read_json(stream_dir(data_dir, run_id) / "steps" / step_key(step_id) / "meta.json")


def set_step_meta(data_dir: Path, run_id: str, step_id: str, **fields: Any) -> None:
    """Merge ``fields`` into the step's meta (one small atomic replace; blocking: a thread from async code)."""
    _update_meta(stream_dir(data_dir, run_id) / "steps" / step_key(step_id), step_id, fields)


# Reading ---------------------------------------------------------------------

def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None  # a line torn by a crash
    return event if isinstance(event, dict) and isinstance(event.get("seq"), int) else None


def _step_events(step_dir: Path, after: int) -> Iterator[dict[str, Any]]:
    """One step's kept events with seq > ``after``, by seq, one segment in memory at a time."""
    segs = _segments(step_dir)
    for i, (_first, path) in enumerate(segs):
        if i + 1 < len(segs) and segs[i + 1][0] - 1 <= after:
            continue  # every event of this segment is at or before ``after``
        try:
            data = path.read_bytes()
        except OSError:
            continue  # dropped by a cap meanwhile
        for line in data.split(b"\n"):
            event = _parse(line) if line else None
            if event is not None and event["seq"] > after:
                yield event


def _marker(meta: dict[str, Any], run_id: str) -> dict[str, Any]:
    count, size = int(meta.get("dropped") or 0), int(meta.get("dropped_bytes") or 0)
    reasons = " and ".join(meta.get("dropped_reasons") or []) or "cap"
    return {"seq": int(meta["dropped_seq"]), "ts": meta.get("dropped_ts"), "run_id": run_id,
            "step_id": meta.get("step_id"), "attempt": meta.get("dropped_attempt"), "agent": meta.get("agent"),
            "kind": "dropped", "text": f"{count} earlier events ({fmt_bytes(size)}) dropped: {reasons}",
            "count": count, "bytes": size}


def read_events(data_dir: Path, run_id: str, *, after: int = 0, step_id: str | None = None,
                limit: int | None = None) -> list[dict[str, Any]]:
    """The kept events with seq > ``after`` (of one step, or all), by seq, with one ``dropped``
    marker per step where a cap cut its oldest events. Blocking: call through ``asyncio.to_thread``."""
    sdir = stream_dir(data_dir, run_id)
    dirs = [sdir / "steps" / step_key(step_id)] if step_id is not None else _step_dirs(sdir)
    sources: list[Iterator[dict[str, Any]]] = []
    for d in dirs:
        meta = _read_json(d / "meta.json") or {}
        if int(meta.get("dropped_seq") or 0) > after and meta.get("dropped"):
            sources.append(iter([_marker(meta, run_id)]))
        sources.append(_step_events(d, after))
    out: list[dict[str, Any]] = []
    for event in heapq.merge(*sources, key=lambda e: int(e["seq"])):
        out.append(event)
        if limit is not None and len(out) >= limit:
            break
    return out


def dropped_total(data_dir: Path, run_id: str, step_id: str | None = None) -> int:
    """How many events the caps removed (of one step, or the run). Blocking."""
    sdir = stream_dir(data_dir, run_id)
    dirs = [sdir / "steps" / step_key(step_id)] if step_id is not None else _step_dirs(sdir)
    return sum(int((_read_json(d / "meta.json") or {}).get("dropped") or 0) for d in dirs)


def _last_seq_of(path: Path) -> int:
    """The seq of the last complete line of a segment (0 if none), reading from its end."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            window = 64 * 1024
            while True:
                start = max(0, size - window)
                fh.seek(start)
                data = fh.read(size - start)
                lines = data.split(b"\n")
                complete = lines[:-1]  # what follows the last newline is torn (or empty)
                if start > 0:
                    complete = complete[1:]  # the first piece may start mid-line
                for line in reversed(complete):
                    if (m := _SEQ_AT_START.match(line)) and _parse(line) is not None:
                        return int(m.group(1))
                if start == 0:
                    return 0
                window *= 4
    except OSError:
        return 0


def last_seq(data_dir: Path, run_id: str) -> int:
    """The highest seq this run's stream ever used (0 for none). Blocking."""
    best = 0
    for d in _step_dirs(stream_dir(data_dir, run_id)):
        meta = _read_json(d / "meta.json") or {}
        best = max(best, int(meta.get("last_seq") or 0), int(meta.get("dropped_seq") or 0))
        segs = _segments(d)
        if segs:
            best = max(best, segs[-1][0], _last_seq_of(segs[-1][1]))
    return best


def fmt_bytes(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n} bytes"


def _fmt_cap(n: int) -> str:
    mib, kib = 1024 * 1024, 1024
    return f"{n // mib} MiB" if n % mib == 0 else f"{n // kib} KiB" if n % kib == 0 else f"{n} bytes"


# Encoding --------------------------------------------------------------------

def _encode(event: dict[str, Any]) -> bytes:
    try:
        return json.dumps(event, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: keep it escaped
        return json.dumps(event, separators=(",", ":"), default=str).encode("ascii")


def fit_event(event: dict[str, Any], limit: int) -> bytes:
    """The event's line, cut to ``limit`` bytes: ``raw`` left out first, then ``text`` shortened."""
    line = _encode(event)
    if len(line) <= limit:
        return line
    if event.get("raw") is not None:
        event["raw"] = None
        event["truncated"] = True
        line = _encode(event)
    for field in ("text", "summary"):
        if len(line) <= limit:
            break
        value = event.get(field)
        if isinstance(value, str) and value:
            excess = len(line) - limit + 64
            keep = max(0, len(value) - excess)
            event[field] = value[:keep] + f" … [{len(value) - keep} characters cut]"
            event["truncated"] = True
            line = _encode(event)
    if len(line) > limit:   # only odd fields left too long: keep the envelope
        event = {k: event.get(k) for k in ("seq", "ts", "run_id", "step_id", "attempt", "agent", "kind")}
        event.update(text="(event too large to keep)", truncated=True)
        line = _encode(event)
    return line


# Writing (worker thread) ----------------------------------------------------

class StepFiles:
    """What the writer knows of one step's files."""

    def __init__(self, step_id: str, path: Path) -> None:
        self.step_id = step_id
        self.dir = path
        self.segments: list[list[Any]] = []   # [first_seq, path, size]
        self.checked_tail: set[Path] = set()
        meta = _read_json(path / "meta.json") or {}
        self.events = int(meta.get("events") or 0)
        self.dropped = int(meta.get("dropped") or 0)
        self.dropped_bytes = int(meta.get("dropped_bytes") or 0)
        self.dropped_seq = int(meta.get("dropped_seq") or 0)
        self.reasons: list[str] = list(meta.get("dropped_reasons") or [])
        for first, seg in _segments(path):
            with contextlib.suppress(OSError):
                self.segments.append([first, seg, seg.stat().st_size])

    @property
    def bytes(self) -> int:
        return sum(s[2] for s in self.segments)


def _first_step_id(step_dir: Path) -> str | None:
    """The step id in a step's first segment (a crash before its meta was written)."""
    for _first, path in _segments(step_dir):
        with contextlib.suppress(OSError), open(path, "rb") as fh:
            event = _parse(fh.readline(MAX_EVENT_BYTES + 2))
            if event is not None and isinstance(event.get("step_id"), str):
                return str(event["step_id"])
    return None


class RunFiles:
    """The writer's view of a run's files; used by one thread at a time (``StreamLog._disk_lock``)."""

    def __init__(self, sdir: Path, run_id: str) -> None:
        self.sdir = sdir
        self.run_id = run_id
        self.steps: dict[str, StepFiles] = {}
        for d in _step_dirs(sdir):
            sid = (_read_json(d / "meta.json") or {}).get("step_id") or _first_step_id(d)
            if isinstance(sid, str):
                self.steps[sid] = StepFiles(sid, d)

    def step(self, step_id: str) -> StepFiles:
        st = self.steps.get(step_id)
        if st is None:
            st = self.steps[step_id] = StepFiles(step_id, self.sdir / "steps" / step_key(step_id))
        return st

    def write(self, batch: list[tuple[str, int, int, float, bytes]], step_cap: int, run_cap: int) -> None:
        """Append ``batch`` (step_id, seq, attempt, ts, line) to the segments, then apply the caps."""
        seg_max = segment_bytes(step_cap, run_cap)
        by_step: dict[str, list[tuple[int, int, float, bytes]]] = {}
        for step_id, seq, attempt, ts, line in batch:
            by_step.setdefault(step_id, []).append((seq, attempt, ts, line))
        touched: dict[str, tuple[int, int]] = {}
        ensure_private_dir(self.sdir / "steps")
        for step_id, items in by_step.items():
            st = self.step(step_id)
            ensure_private_dir(st.dir)
            chunks: list[tuple[list[Any], bytearray]] = []
            for seq, _attempt, _ts, line in items:
                if not st.segments or (st.segments[-1][2] > 0 and st.segments[-1][2] + len(line) + 1 > seg_max):
                    st.segments.append([seq, st.dir / _segment_name(seq), 0])
                seg = st.segments[-1]
                if not chunks or chunks[-1][0] is not seg:
                    chunks.append((seg, bytearray()))
                chunks[-1][1].extend(line + b"\n")
                seg[2] += len(line) + 1
            for seg, data in chunks:
                self._append(st, seg[1], bytes(data))
            st.events += len(items)
            touched[step_id] = (items[-1][0], items[-1][1])
        for step_id in by_step:
            st = self.steps[step_id]
            while st.bytes > step_cap and st.segments:
                self._drop_oldest(st, f"step cap {_fmt_cap(step_cap)}")
        while sum(s.bytes for s in self.steps.values()) > run_cap:
            oldest = min((s for s in self.steps.values() if s.segments), key=lambda s: s.segments[0][0],
                         default=None)
            if oldest is None:
                break
            self._drop_oldest(oldest, f"run cap {_fmt_cap(run_cap)}")
            touched.setdefault(oldest.step_id, (0, 0))
        for step_id, (seq, attempt) in touched.items():
            st = self.steps[step_id]
            fields: dict[str, Any] = {"events": st.events, "bytes": st.bytes, "dropped": st.dropped,
                                      "dropped_bytes": st.dropped_bytes, "dropped_seq": st.dropped_seq,
                                      "dropped_reasons": st.reasons}
            if seq:
                fields.update(last_seq=seq, attempt=attempt)
            _update_meta(st.dir, step_id, fields)

    def _append(self, st: StepFiles, path: Path, data: bytes) -> None:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, FILE_MODE)
        try:
            if path not in st.checked_tail:
                st.checked_tail.add(path)
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    data = b"\n" + data  # a line torn by a crash stays alone
            os.write(fd, data)
        finally:
            os.close(fd)

    def _drop_oldest(self, st: StepFiles, reason: str) -> None:
        first, path, size = st.segments.pop(0)
        count, last, attempt, ts = 0, first, None, None
        try:
            data = path.read_bytes()
        except OSError:
            data = b""
        for line in data.split(b"\n"):
            event = _parse(line) if line else None
            if event is not None:
                count += 1
                last, attempt, ts = max(last, event["seq"]), event.get("attempt"), event.get("ts")
        with contextlib.suppress(OSError):
            path.unlink()
        st.events = max(0, st.events - count)
        st.dropped += count
        st.dropped_bytes += size
        st.dropped_seq = max(st.dropped_seq, last)
        if reason not in st.reasons:
            st.reasons.append(reason)
        _update_meta(st.dir, st.step_id, {"dropped_attempt": attempt, "dropped_ts": ts})
