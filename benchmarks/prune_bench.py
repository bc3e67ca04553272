"""Pruning a big database while the engine works: sleep lateness and dispatch delay, with and without.

    .venv/bin/python benchmarks/prune_bench.py [--rows 1000000] [--seconds 60] [--json]

1. Builds an ``engine.db`` of at least ``--rows`` rows through the store's own
   transactions (``create_runs_txn``, ``save_step_txn``, ``finish_run_txn``):
   runs of 10 steps that ended 40 days ago, each with its event, 10 step
   memos of ~200 bytes, 12 history rows and its ``inngest/function.finished``
   event (25 rows a run, so 40,000 runs for 1,000,000 rows).
2. Runs the production engine (``engine start``, signed calls, WAL file) on a
   copy of it twice, ``--retention forever`` both times, with the same
   workload through the official SDK (``load_bench.py``'s app): every 0.2 s
   a run that sleeps 1 s twice (sleep lateness = when the step after the
   sleep ran minus when it was due, read in the app), every 0.2 s a start
   probe (dispatch delay = ``POST /e`` to its first step), every 0.1 s a short
   3-step run (about 75 SDK calls a second in all).
3. The first time nothing else happens ("no pruning"); the second time, 5 s
   into the workload, ``POST /v1/storage/prune {"older_than": "30d"}``
   removes every old run with the same code as the background pruner, while
   the workload goes on for ``--seconds`` or until 5 s after the prune ends.

The table gives lateness and delay percentiles per phase, the prune's
duration, batches and longest batch, and the file's size before and after.
Default runtime: 5-10 minutes on two shared cores (1-2 minutes to build,
a minute without pruning, then as long as the prune takes while the
workload runs: the pruner gives way to it). ``--rows 100000 --seconds 20``
is a quick check.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import App, Engine, machine, percentile, post_events, stop_children_on_exit, table

LOAD_BENCH = Path(__file__).resolve().parent / "load_bench.py"
SLEEP_EVENT, LOAD_EVENT = "bench/sleep", "bench/load"
DAY_MS = 86_400_000
ROWS_PER_RUN = 25


def build(path: Path, rows: int) -> dict[str, Any]:
    """An engine database of at least ``rows`` rows of old, finished runs, written through the store."""
    from ulid import ULID

    from agentcmd.engine.store import open_store, runs
    from agentcmd.engine.store.events import insert_events_txn
    from agentcmd.engine.store.models import MemoWrite, NewEvent, RunSpec, RunStatus

    started = time.perf_counter()
    store = open_store(path)
    total_runs = -(-rows // ROWS_PER_RUN)
    old = int(time.time() * 1000) - 40 * DAY_MS
    per_txn = 1000

    def chunk(first: int, count: int) -> Any:
        def txn(conn: sqlite3.Connection) -> None:
            for n in range(first, first + count):
                at = old + n * 10
                run_id, event_id = str(ULID()), str(ULID())
                insert_events_txn(conn, [NewEvent(event_id, "bench/old", {"name": "bench/old", "data": {"n": n}},
                                                  None, at)], at, dispatch=False)
                runs.create_runs_txn(conn, [RunSpec(run_id, "bench-old-fn", "bench-old", [
                    {"name": "bench/old", "data": {"n": n}, "id": event_id}], event_id, 1)], at, None)
                for i in range(10):
                    runs.save_step_txn(conn, run_id, MemoWrite(f"s{i}", f"step {i}", "StepRun",
                                                               {"data": {"i": i, "p": "x" * 180}}), at + i)
                    runs.history_txn(conn, run_id, at + i, "step_completed", f"s{i}", 0, None)
                runs.finish_run_txn(conn, run_id, RunStatus.COMPLETED, '{"ok": true}', None, now=at + 20)
            conn.execute("DELETE FROM queue")   # the old runs' finished events were dispatched long ago
        return txn

    try:
        for first in range(0, total_runs, per_txn):
            store.db.write_sync(chunk(first, min(per_txn, total_runs - first)))
        conn = store.db.conn
        counts = {t: int(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])
                  for t in ("runs", "steps", "history", "events", "queue")}
    finally:
        store.close()
    return {"runs": total_runs, "rows": sum(counts.values()), "counts": counts,
            "bytes": path.stat().st_size, "build_s": round(time.perf_counter() - started, 1)}


async def _feed(engine: Engine, session: aiohttp.ClientSession, stop: asyncio.Event) -> int:
    """The workload: a short 3-step run every 0.1 s, a sleeper (2 x 1 s) and a start probe every 0.2 s."""
    sent, n = 0, 0
    next_at = time.monotonic()
    while not stop.is_set():
        events: list[dict[str, Any]] = [{"name": LOAD_EVENT, "data": {"n": n}}]
        if n % 2 == 0:
            events += [{"name": SLEEP_EVENT, "data": {"k": n, "sleeps": 2, "sent": time.time()}},
                       {"name": SLEEP_EVENT, "data": {"k": n, "sleeps": 0, "sent": time.time()}}]
        try:
            await post_events(session, engine, events)
            sent += len(events)
        except (aiohttp.ClientError, TimeoutError, RuntimeError):
            pass
        n += 1
        next_at += 0.1
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    return sent


async def phase(name: str, template: Path, seconds: float, prune: bool) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix=f"agentcmd-prune-{'on' if prune else 'off'}-"))
    (root / "db").mkdir(parents=True)
    shutil.copy(template, root / "db" / "engine.db")
    engine = Engine("production", root, ["--retention", "forever"])
    app = App(LOAD_BENCH, engine, ["0", "0", "all"])
    timeout = aiohttp.ClientTimeout(total=3600)
    result: dict[str, Any] = {"phase": name}
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await app.sync(session)
            size = await _storage(session, engine)
            result["size_before"] = size["size_bytes"]
            stop = asyncio.Event()
            feeder = asyncio.create_task(_feed(engine, session, stop))
            t0 = time.monotonic()
            report = None
            if prune:
                await asyncio.sleep(5)
                async with session.post(f"{engine.url}/v1/storage/prune", json={"older_than": "30d"},
                                        headers=engine.headers) as r:
                    report = (await r.json())["data"]
                result["prune"] = report
            end = max(t0 + seconds, time.monotonic() + 5)
            await asyncio.sleep(max(0.0, end - time.monotonic()))
            stop.set()
            result["sent"] = await feeder
            result["seconds"] = round(time.monotonic() - t0, 1)
            await asyncio.sleep(3)             # the last sleepers' second sleep
            st = await app.get(session, "/bench/stats")
            size = await _storage(session, engine)
            result["size_after"] = size["size_bytes"]
    finally:
        app.stop()
        engine.stop()
        shutil.rmtree(root, ignore_errors=True)
    late = [s["late_ms"] for s in st["samples"]]
    delays = [d for d, probe in zip(st["start_delays_ms"], st["start_is_probe"], strict=False) if probe]
    result.update(sleeps=len(late), late_p50=percentile(late, 50), late_p99=percentile(late, 99),
                  late_max=max(late) if late else float("nan"), probes=len(delays),
                  delay_p50=percentile(delays, 50), delay_p99=percentile(delays, 99),
                  delay_max=max(delays) if delays else float("nan"), short_runs=st["done"])
    if report is not None:
        result["late_during_prune_p99"] = _during(st["samples"], report)
    return result


def _during(samples: list[dict[str, Any]], report: dict[str, Any]) -> float:
    """p99 lateness of the sleeps that were due while the prune ran."""
    from datetime import datetime

    def ts(iso: str) -> float:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()

    start, end = ts(report["started_at"]), ts(report["finished_at"])
    late = [s["late_ms"] for s in samples if start <= s["plan"] + 1 <= end]
    return percentile(late, 99)


async def _storage(session: aiohttp.ClientSession, engine: Engine) -> dict[str, Any]:
    async with session.get(f"{engine.url}/v1/storage", headers=engine.headers) as r:
        return dict((await r.json())["data"])


def _mb(n: float) -> str:
    return f"{n / 1024 / 1024:.0f} MB"


async def main_async(args: argparse.Namespace, template: Path) -> list[dict[str, Any]]:
    return [await phase("no pruning", template, args.seconds, False),
            await phase("pruning", template, args.seconds, True)]


def render(out: dict[str, Any]) -> str:
    rows = []
    for p in out["phases"]:
        pr = p.get("prune")
        rows.append([p["phase"], f"{p['seconds']:.0f} s", p["sleeps"], f"{p['late_p50']:.0f}", f"{p['late_p99']:.0f}",
                     f"{p['late_max']:.0f}",
                     f"{p['late_during_prune_p99']:.0f}" if "late_during_prune_p99" in p else "-",
                     f"{p['delay_p50']:.0f}", f"{p['delay_p99']:.0f}", p["short_runs"],
                     f"{pr['seconds']:.1f} s, {pr['rows']:,} rows, {pr['batches']} batches, longest "
                     f"{pr['longest_batch_ms']:.1f} ms" if pr else "-",
                     f"{_mb(p['size_before'])} -> {_mb(p['size_after'])}"])
    return table(["phase", "workload", "sleeps", "late p50 ms", "late p99 ms", "late max ms",
                  "late p99 ms while pruning", "dispatch p50 ms", "dispatch p99 ms", "short runs done", "prune",
                  "database"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of old finished runs to build (25 a run)")
    parser.add_argument("--seconds", type=float, default=60.0, help="workload per phase (at least the prune + 5 s)")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON too")
    args = parser.parse_args()
    stop_children_on_exit()
    work = Path(tempfile.mkdtemp(prefix="agentcmd-prune-bench-"))
    try:
        template = work / "engine.db"
        built = build(template, args.rows)
        print(f"built {built['rows']:,} rows ({built['runs']:,} runs) in {built['build_s']} s: {_mb(built['bytes'])}",
              file=sys.stderr, flush=True)
        out = {"machine": machine(), "built": built, "phases": asyncio.run(main_async(args, template))}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{out['machine']}; database: {out['built']['rows']:,} rows, {out['built']['runs']:,} runs")
    print(render(out))
    if args.json:
        print(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
