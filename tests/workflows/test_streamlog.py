"""The kept stream of a run (workflows/streamlog.py): seq, caps with their marker, restarts, torn lines,
file modes, and appends that never wait on the disk."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from agentcmd.workflows import streamlog
from agentcmd.workflows.streamlog import read_events, set_step_meta, step_meta, stream_log

KIB = 1024


@pytest.fixture(autouse=True)
def _fresh_registry() -> Any:
    streamlog.forget_all()
    yield
    streamlog.forget_all()


def _line(n: int, size: int = 100) -> dict[str, Any]:
    return {"agent": None, "kind": "output", "stream": "stdout", "text": f"{n:06d} " + "x" * size}


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_events_get_increasing_seq_and_come_back_in_order_across_steps(tmp_path: Path) -> None:
    async def go() -> list[dict[str, Any]]:
        log = await stream_log(tmp_path, "run-1").ready()
        out = [log.append("plan/review" if i % 2 else "build", 0, _line(i)) for i in range(10)]
        await log.flush()
        return out

    appended = _run(go())
    assert [e["seq"] for e in appended] == list(range(1, 11))
    assert appended[1]["run_id"] == "run-1" and appended[1]["step_id"] == "plan/review"
    events = read_events(tmp_path, "run-1")
    assert [e["seq"] for e in events] == list(range(1, 11))
    assert [e["seq"] for e in read_events(tmp_path, "run-1", step_id="plan/review")] == [2, 4, 6, 8, 10]
    assert [e["seq"] for e in read_events(tmp_path, "run-1", after=7, limit=2)] == [8, 9]
    assert isinstance(events[0]["ts"], float) and events[0]["text"].startswith("000000 ")


def test_the_step_cap_drops_the_oldest_events_with_one_marker_saying_how_many(tmp_path: Path) -> None:
    async def go() -> None:
        log = await stream_log(tmp_path, "run-cap", step_cap_bytes=64 * KIB, run_cap_bytes=1024 * KIB).ready()
        for i in range(2000):   # ~270 KiB into one step, ~0 into the other
            log.append("big", 0, _line(i))
        log.append("small", 0, _line(99999))
        await log.flush()

    _run(go())
    events = read_events(tmp_path, "run-cap", step_id="big")
    marker, kept = events[0], events[1:]
    assert marker["kind"] == "dropped" and marker["step_id"] == "big"
    assert marker["count"] + len(kept) == 2000
    assert marker["text"] == f"{marker['count']} earlier events ({streamlog.fmt_bytes(marker['bytes'])}) " \
                             "dropped: step cap 64 KiB"
    assert kept[-1]["text"].startswith("001999 ")   # the newest are kept, the oldest went
    assert [e["seq"] for e in kept] == list(range(kept[0]["seq"], 2001))
    assert marker["seq"] == kept[0]["seq"] - 1       # it sorts where the cut is
    size = sum(p.stat().st_size for p in (tmp_path / "runs/run-cap/stream/steps").glob("big-*/*.jsonl"))
    assert 64 * KIB * 7 // 8 - 200 <= size <= 64 * KIB
    meta = step_meta(tmp_path, "run-cap", "big")
    assert meta is not None and (meta["events"], meta["dropped"]) == (len(kept), marker["count"])
    assert read_events(tmp_path, "run-cap", step_id="small")[0]["kind"] == "output"   # its own cap
    whole = read_events(tmp_path, "run-cap")
    assert [e["kind"] for e in whole].count("dropped") == 1 and whole[-1]["step_id"] == "small"
    assert read_events(tmp_path, "run-cap", after=marker["seq"])[0]["seq"] == kept[0]["seq"]


def test_the_run_cap_drops_the_oldest_steps_events_first(tmp_path: Path) -> None:
    async def go() -> None:
        log = await stream_log(tmp_path, "run-rc", step_cap_bytes=128 * KIB, run_cap_bytes=160 * KIB).ready()
        for step in ("first", "second"):
            for i in range(500):   # ~95 KiB each: within the step cap, together past the run cap
                log.append(step, 1, _line(i))
            await log.flush()

    _run(go())
    first = read_events(tmp_path, "run-rc", step_id="first")
    second = read_events(tmp_path, "run-rc", step_id="second")
    assert first[0]["kind"] == "dropped" and first[0]["text"].endswith("dropped: run cap 160 KiB")
    assert first[0]["attempt"] == 1
    assert all(e["kind"] == "output" for e in second) and len(second) == 500
    total = sum(p.stat().st_size for p in (tmp_path / "runs/run-rc/stream").rglob("*.jsonl"))
    assert total <= 160 * KIB


def test_seq_continues_after_a_restart_and_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    async def first_life() -> None:
        log = await stream_log(tmp_path, "run-r").ready()
        for i in range(5):
            log.append("s", 0, _line(i))
        await log.flush()

    _run(first_life())
    [segment] = (tmp_path / "runs/run-r/stream/steps").glob("s-*/*.jsonl")
    with open(segment, "ab") as fh:
        fh.write(b'{"seq":6,"ts":1.0,"run_id":"run-r","step_id":"s","kind":"out')   # a crash mid-write
    streamlog.forget_all()   # a new app process

    async def second_life() -> dict[str, Any]:
        log = await stream_log(tmp_path, "run-r").ready()
        event = log.append("s", 1, _line(7))
        await log.flush()
        return event

    event = _run(second_life())
    assert event["seq"] == 6   # the torn line had no complete seq: 5 was the last kept
    events = read_events(tmp_path, "run-r")
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5, 6] and events[-1]["attempt"] == 1
    assert segment.read_bytes().count(b"\n") == 7   # the new line was not glued to the torn one


def test_seq_recovers_even_when_every_kept_event_was_dropped(tmp_path: Path) -> None:
    async def go() -> int:
        log = await stream_log(tmp_path, "run-d", step_cap_bytes=64 * KIB).ready()
        for i in range(1000):
            log.append("s", 0, _line(i))
        await log.flush()
        return int(log.append("s", 0, _line(0))["seq"])

    _run(go())
    for seg in (tmp_path / "runs/run-d/stream/steps").glob("s-*/*.jsonl"):
        seg.unlink()   # as if the cap had taken them all
    streamlog.forget_all()
    assert streamlog.last_seq(tmp_path, "run-d") >= 1000
    assert stream_log(tmp_path, "run-d").append("s", 0, _line(1))["seq"] > 1000


def test_files_are_0600_in_0700_directories(tmp_path: Path) -> None:
    async def go() -> None:
        log = stream_log(tmp_path, "run-m")
        log.append("plan/x", 0, _line(1))
        await log.flush()

    old = os.umask(0o022)
    try:
        _run(go())
        set_step_meta(tmp_path, "run-m", "plan/x", session_id="sess-1", agent="claude")
    finally:
        os.umask(old)
    sdir = tmp_path / "runs/run-m/stream"
    for path in [sdir, *sdir.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
    meta = step_meta(tmp_path, "run-m", "plan/x")
    assert meta is not None and meta["session_id"] == "sess-1" and meta["events"] == 1
    assert meta["step_id"] == "plan/x" and meta["agent"] == "claude"


def test_hostile_run_ids_never_name_a_path(tmp_path: Path) -> None:
    for bad in ("..", "../x", "a/b", "", "/etc", ".", "x\x00"):
        with pytest.raises(streamlog.StreamError):
            stream_log(tmp_path, bad)
        with pytest.raises(streamlog.StreamError):
            read_events(tmp_path, bad)


def test_append_never_writes_on_the_loop_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writers: list[str] = []
    real = streamlog.RunFiles.write

    def spy(self: Any, *args: Any) -> None:
        writers.append(threading.current_thread().name)
        real(self, *args)

    monkeypatch.setattr(streamlog.RunFiles, "write", spy)
    opened: list[str] = []
    real_open = os.open

    async def go() -> None:
        log = await stream_log(tmp_path, "run-t").ready()
        loop_thread = threading.current_thread().name

        def watch_open(path: Any, *a: Any, **k: Any) -> int:
            if threading.current_thread().name == loop_thread:
                opened.append(str(path))
            return real_open(path, *a, **k)

        monkeypatch.setattr(os, "open", watch_open)
        for i in range(300):
            log.append("s", 0, _line(i))
        assert writers == []   # queued, not written
        await log.flush()
        monkeypatch.setattr(os, "open", real_open)
        assert writers and loop_thread not in writers

    _run(go())
    assert opened == []
    assert len(read_events(tmp_path, "run-t")) == 300


def test_the_flush_task_writes_by_itself_within_a_moment(tmp_path: Path) -> None:
    async def go() -> None:
        log = await stream_log(tmp_path, "run-f").ready()
        log.append("s", 0, _line(1))
        for _ in range(200):
            if read_events(tmp_path, "run-f"):
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the event was never written")

    _run(go())


def test_an_oversized_event_is_cut_not_lost(tmp_path: Path) -> None:
    async def go() -> dict[str, Any]:
        log = stream_log(tmp_path, "run-big")
        event = log.append("s", 0, {"kind": "tool_result", "text": "y" * (2 * 1024 * KIB), "raw": {"a": "b"}})
        await log.flush()
        return event

    _run(go())
    [event] = read_events(tmp_path, "run-big")
    assert event["truncated"] is True and event["raw"] is None and "characters cut]" in event["text"]
    assert len(json.dumps(event)) <= streamlog.MAX_EVENT_BYTES


def test_a_live_reader_gets_new_events_and_a_slow_one_rereads_from_disk(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streamlog, "READER_QUEUE", 50)

    async def go() -> tuple[list[int], list[int]]:
        log = await stream_log(tmp_path, "run-live").ready()
        log.append("s", 0, _line(0))
        await log.flush()
        fast = streamlog.subscribe("run-live")
        slow = streamlog.subscribe("run-live", data_dir=tmp_path, after=0)
        got_fast: list[int] = []
        for i in range(1, 31):
            log.append("s", 0, _line(i))
            got_fast.append(int((await anext(fast))["seq"]))
        for i in range(31, 400):   # the slow reader reads nothing meanwhile: far past its queue
            log.append("s", 0, _line(i))
        got_slow = [int((await anext(slow))["seq"]) for _ in range(400)]
        assert len(slow._queue) <= 50
        fast.close()
        slow.close()
        return got_fast, got_slow

    got_fast, got_slow = _run(go())
    assert got_fast == list(range(2, 32))
    assert got_slow == list(range(1, 401))   # stored, missed, then live: each once, in order
    assert streamlog._readers == {}


def test_the_caps_come_from_the_streams_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTCMD_STREAMS__STEP_CAP_BYTES", str(128 * KIB))
    log = stream_log(tmp_path, "run-s")
    assert (log.step_cap_bytes, log.run_cap_bytes) == (128 * KIB, streamlog.RUN_CAP_BYTES)
    streamlog.forget_all()
    monkeypatch.setenv("AGENTCMD_STREAMS__RUN_CAP_BYTES", "1000")
    from agentcmd.config import load_settings
    from agentcmd.errors import ConfigError

    with pytest.raises(ConfigError, match=r"AGENTCMD_STREAMS__RUN_CAP_BYTES.*greater than or equal to 65536"):
        load_settings()
    assert stream_log(tmp_path, "run-s2").run_cap_bytes == streamlog.RUN_CAP_BYTES   # a broken setting: defaults
