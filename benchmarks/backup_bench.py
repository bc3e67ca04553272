"""How long ``agentcmd backup`` takes, and what it costs a writer that keeps committing meanwhile.

    .venv/bin/python benchmarks/backup_bench.py [--runs 200000] [--seconds 2]

Builds an engine database (the real schema) with ``--runs`` runs, each with
two steps and three history rows, then starts a writer process that commits
one small transaction after another (WAL, ``synchronous=NORMAL``, as the
engine does) and measures each commit's latency: ``--seconds`` alone, then
for the whole of a backup (engine/store/backup.py, the code ``agentcmd backup`` runs).
Prints the database size, the backup's time and rate, and the writer's
commit latency p50/p99/max and commits per second in both phases.
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.synchronize
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from agentcmd.engine.store import DB_FILE_NAME, backup
from agentcmd.engine.store.sqlite import Database


def build(path: Path, runs: int) -> None:
    db = Database(path)
    db.open()
    conn = db.conn
    conn.execute("BEGIN")
    for i in range(runs):
        rid = f"01RUN{i:021d}"
        conn.execute("INSERT INTO runs (run_id, function_slug, app_id, event_id, first_event, events, status, "
                     "output, max_attempts, created_at) VALUES (?, 'app-fn', 'app', ?, '{}', '[]', 'Completed', "
                     "'{\"ok\": true}', 3, ?)", (rid, f"01EV{i:022d}", i))
        for s in range(2):
            conn.execute("INSERT INTO steps (run_id, step_id, seq, name, op, memo, status, attempt, started_at, "
                         "ended_at) VALUES (?, ?, ?, 'step', 'StepRun', ?, 'completed', 0, 0, 0)",
                         (rid, f"{s:040x}", s, '{"data": "' + "x" * 200 + '"}'))
        for t in ("started", "step", "finished"):
            conn.execute("INSERT INTO history (run_id, at, type) VALUES (?, ?, ?)", (rid, i, t))
    conn.execute("COMMIT")
    db.close()


def writer(path: str, seconds: float, stop: multiprocessing.synchronize.Event,
           out: multiprocessing.Queue) -> None:     # type: ignore[type-arg]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA busy_timeout = 5000")
    lat: list[float] = []
    start = time.monotonic()
    end = start + seconds
    while time.monotonic() < end and not stop.is_set():
        t0 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO history (run_id, at, type) VALUES ('bench', 0, 'tick')")
        conn.execute("COMMIT")
        lat.append(time.perf_counter() - t0)
    conn.close()
    out.put((lat, time.monotonic() - start))


def summary(lat: list[float], seconds: float) -> str:
    q = statistics.quantiles(lat, n=100)
    return (f"{len(lat) / seconds:8.0f} commits/s  p50 {q[49] * 1e3:.3f} ms  p99 {q[98] * 1e3:.3f} ms  "
            f"max {max(lat) * 1e3:.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200_000)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / DB_FILE_NAME
        build(path, args.runs)
        size = path.stat().st_size
        print(f"database: {args.runs} runs, {size / 2**20:.1f} MiB")
        for phase in ("alone", "during backup"):
            out: multiprocessing.Queue = multiprocessing.Queue()    # type: ignore[type-arg]
            stop = multiprocessing.Event()
            limit = args.seconds if phase == "alone" else 3600.0       # during: as long as the backup runs
            proc = multiprocessing.Process(target=writer, args=(str(path), limit, stop, out))
            proc.start()
            taken = ""
            if phase == "during backup":
                time.sleep(0.2)
                target = Path(tmp) / f"copy-{time.monotonic_ns()}.db"
                result = backup.backup(path, target)
                stop.set()
                taken = (f"  (backup: {result.seconds:.2f} s, {result.size / 2**20 / result.seconds:.0f} MiB/s, "
                         f"{result.facts.runs} runs, integrity check included)")
            lat, elapsed = out.get()
            proc.join()
            print(f"writer {phase:>13}: {summary(lat, elapsed)}{taken}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
