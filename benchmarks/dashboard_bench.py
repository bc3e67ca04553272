"""Render the dashboard's runs page with 10,000 runs in the database; print median server times.

    .venv/bin/python benchmarks/dashboard_bench.py [--runs 10000] [--requests 60]

A real engine store (WAL file in a temp dir) gets N runs across 5
functions and 4 statuses, each with its event and 3 steps; the dashboard is
served by uvicorn on an ephemeral loopback port. Each case is requested
many times, on two servers: one that counts runs per status on every
request (the honest cost, and the number checked against the target) and
one with the dashboard's default ``CountCache``. "server" is the page's own
``Server-Timing: app;dur=`` (queries + rendering), "wall" the client's round
trip. Target: runs page median server time under 50 ms. Paging is in SQL, so
the deep page costs the same as the first.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI
from ulid import ULID

from agentcmd.engine.dashboard import DashboardConfig, create_router
from agentcmd.engine.dashboard.reads import CountCache, DashboardReads
from agentcmd.engine.store import Store, open_store
from agentcmd.mode import Mode
from agentcmd.webauth.guard import WebAuth


class NoCountCache(CountCache):
    """Count on every request: the honest cost of the runs page."""

    COST_FACTOR = 0


STATUSES = ("Completed", "Completed", "Completed", "Failed", "Running", "Cancelled")


def fill(store: Store, n: int) -> list[str]:
    start = int(time.time() * 1000) - n * 1000
    run_ids: list[str] = []

    def txn(conn: object) -> None:
        import sqlite3

        assert isinstance(conn, sqlite3.Connection)
        conn.execute("INSERT INTO apps (app_id, url, synced_at) VALUES ('agentcmd', 'http://127.0.0.1:9/x', ?)",
                     (start,))
        for i in range(5):
            conn.execute("INSERT INTO functions (slug, uuid, app_id, name, url, config, updated_at) "
                         "VALUES (?,?,?,?,?,?,?)", (f"agentcmd-wf{i}", f"uuid-{i}", "agentcmd", f"workflow {i}",
                                                    "http://127.0.0.1:9/x",
                                                    json.dumps({"triggers": [{"event": f"app/wf{i}"}]}), start))
        events, runs, steps = [], [], []
        for i in range(n):
            at = start + i * 1000
            eid, rid = str(ULID.from_timestamp(at / 1000)), str(ULID.from_timestamp(at / 1000))
            body = json.dumps({"name": f"app/wf{i % 5}", "data": {"i": i}, "id": eid, "ts": at, "user": {}})
            events.append((eid, f"app/wf{i % 5}", body, at, at))
            status = STATUSES[i % len(STATUSES)]
            runs.append((rid, f"agentcmd-wf{i % 5}", "agentcmd", eid, body, f"[{body}]", status, '{"ok":true}', 4,
                         at, at, None if status == "Running" else at + 900))
            for s in range(3):
                steps.append((rid, f"h{s}", s, f"step {s}", "StepRun", '{"data":"x"}', "completed", 0, at + s * 300,
                              at + s * 300 + 250))
            run_ids.append(rid)
        conn.executemany("INSERT INTO events (internal_id, name, body, ts, received_at) VALUES (?,?,?,?,?)", events)
        conn.executemany("INSERT INTO runs (run_id, function_slug, app_id, event_id, first_event, events, status, "
                         "output, max_attempts, created_at, started_at, ended_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                         runs)
        conn.executemany("INSERT INTO steps (run_id, step_id, seq, name, op, memo, status, attempt, started_at, "
                         "ended_at) VALUES (?,?,?,?,?,?,?,?,?,?)", steps)

    store.db.write_sync(txn)
    return run_ids


def serve(app: FastAPI) -> tuple[uvicorn.Server, threading.Thread, str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise SystemExit("the benchmark server did not start")
        time.sleep(0.01)
    return server, thread, f"http://127.0.0.1:{sock.getsockname()[1]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "engine.db")
        t0 = time.perf_counter()
        run_ids = fill(store, args.runs)
        fill_s = time.perf_counter() - t0
        config = DashboardConfig(Mode.PRODUCTION, WebAuth.build(Mode.PRODUCTION, "127.0.0.1"), store.describe())
        cold_app, warm_app = FastAPI(), FastAPI()
        cold_app.include_router(create_router(DashboardReads(store, NoCountCache()), config))
        warm_app.include_router(create_router(DashboardReads(store), config))
        servers = {"every request counts": serve(cold_app), "counts reused (CountCache)": serve(warm_app)}
        deep = run_ids[60]  # the last pages: everything newer is skipped by the index
        cases = {
            "runs page (/runs, 50 rows)": "/runs",
            "runs twin (/runs.json)": "/runs.json",
            "runs page, status=Failed": "/runs?status=Failed",
            "runs page, one function": "/runs?function=agentcmd-wf3",
            "runs page, deep page (before=...)": f"/runs?before={deep}",
            "run page (3 steps)": f"/runs/{run_ids[-1]}",
        }
        print(f"{args.runs} runs ({fill_s:.1f} s to insert), {args.requests} requests per case, 2-core machine")
        worst = 0.0
        for label, (server, thread, base) in servers.items():
            print(f"\n{label}\n{'case':40} {'server median':>14} {'server p90':>11} {'wall median':>12}")
            with httpx.Client(base_url=base) as client:
                for name, path in cases.items():
                    for _ in range(5):  # warm up
                        client.get(path).raise_for_status()
                    server_ms, wall_ms = [], []
                    for _ in range(args.requests):
                        t = time.perf_counter()
                        response = client.get(path)
                        wall_ms.append((time.perf_counter() - t) * 1000)
                        response.raise_for_status()
                        server_ms.append(float(response.headers["server-timing"].split("dur=")[1]))
                    med = statistics.median(server_ms)
                    p90 = statistics.quantiles(server_ms, n=10)[-1]
                    if label == "every request counts" and name.startswith("runs page (/runs"):
                        worst = med
                    print(f"{name:40} {med:11.2f} ms {p90:8.2f} ms {statistics.median(wall_ms):9.2f} ms")
            server.should_exit = True
            thread.join(10)
        store.close()
    print(f"\nruns page median server time, counting on every request: {worst:.2f} ms (target < 50 ms): "
          f"{'OK' if worst < 50 else 'TOO SLOW'}")
    return 0 if worst < 50 else 1


if __name__ == "__main__":
    sys.exit(main())
