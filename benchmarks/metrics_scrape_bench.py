"""What one ``/metrics`` scrape costs the engine's loop on a large database (store/queries/gauges.py).

    .venv/bin/python benchmarks/metrics_scrape_bench.py [--runs 1000000] [--queue 20000]

Builds a production database with ``--runs`` finished runs plus ``--queue``
runs in the queue (most sleeping until later, a few due, leased or waiting
for their app), then times ``read_gauges`` (the only database work of a
scrape; it runs on the engine's loop).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from ulid import ULID

from agentcmd.engine.store import open_store
from agentcmd.engine.store.queries.gauges import read_gauges

NOW = 10**12


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--queue", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "engine.db")
        conn = store.db.conn
        ids = [str(ULID()) for _ in range(args.runs)]
        queued = args.queue
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO runs (run_id, function_slug, app_id, event_id, first_event, events, status, max_attempts, "
            "created_at, wait_since) VALUES (?,?,?,?,?,?,?,?,?,?)",
            ((r, f"app-fn{i % 20}", "app", "e", "{}", "[]", "Running" if i < queued else "Completed", 1, 0,
              NOW if i < queued and i % 100 == 0 and i < 1000 else None) for i, r in enumerate(ids)))
        conn.executemany(   # the first 1000: due now (some leased); the rest: sleeping until later
            "INSERT INTO queue (kind, run_id, step_id, ready_at, lease_until) VALUES (?,?,?,?,?)",
            (("event" if i % 3 == 0 else "sleep", None if i % 3 == 0 else ids[i], "s",
              NOW - 1 if i < 1000 else NOW + 3_600_000 + i, NOW + 60_000 if i < 1000 and i % 7 == 0 else None)
             for i in range(queued)))
        conn.execute("COMMIT")
        times = []
        for _ in range(30):
            started = time.perf_counter()
            gauges = read_gauges(conn, NOW)
            times.append(time.perf_counter() - started)
        store.close()
    print(f"runs={args.runs} queue={queued}: read_gauges median {statistics.median(times) * 1000:.2f} ms, "
          f"p90 {sorted(times)[int(len(times) * 0.9)] * 1000:.2f} ms; waiting for app: {gauges.waiting_for_app}, "
          f"database {gauges.db_bytes / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
