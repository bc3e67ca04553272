"""Scale and load benchmarks of the embedded engine (issue 8), through the official ``inngest`` SDK.

    .venv/bin/python benchmarks/load_bench.py load   [--runs 10000] [--limit 10] [--modes dev,production]
    .venv/bin/python benchmarks/load_bench.py events [--seconds 3] [--rounds 3] [--clients 32]
    .venv/bin/python benchmarks/load_bench.py sleep  [--sleepers 200]

* ``load``: ``--runs`` events sent at once (batches of 100) to a 3-step function
  declared with ``concurrency=[inngest.Concurrency(limit=10)]``. The SDK app
  counts every step execution, so the table says whether all runs finished,
  whether one was lost (an event whose run never finished) and whether a step
  ran twice; it also reports the most step executions it saw at the same time
  (each step awaits ``--step-ms``, so an unenforced limit shows as > limit),
  throughput, and the engine's peak RSS (``VmHWM``). Sleep under load: just
  before the load, ``--load-sleepers`` runs start that sleep 1 s ``--sleeps``
  times each, and new ones replace those that end while the load lasts; every
  sleep due before the load's last run ended is a sample. Start probes: during
  the load, every 0.5 s, a run of that other function with no sleep; its delay
  from ``POST /e`` to its first step is reported.
* ``events``: events accepted per second on ``POST /e/{key}`` by ``--clients``
  concurrent aiohttp clients, batches of 1 and 100 events a request (no
  function matches them: ingest only). Median of ``--rounds`` rounds.
* ``sleep``: ``step.sleep`` of 1 s on an idle engine, ``--sleepers`` runs
  started 20 ms apart.

Sleep lateness = (time the step after the sleep ran) - (time just before
``step.sleep`` was called) - 1 s, all read in the app: the Python SDK turns
``step.sleep(id, 1 s)`` into ``sleep_until(now + 1 s)``, so that is how late
the function resumed. "engine fired" is the engine's part: the sleep step's
``ended_at`` from ``GET /v1/runs/{id}/steps`` minus the same target.

Each mode gets a fresh engine (``dev`` in memory; ``production`` =
``engine start`` on a SQLite file, signed calls) and a fresh app. Everything
is bounded: a load that makes no progress for ``--stall`` seconds stops and
is reported as stalled.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    App,
    Engine,
    count_runs,
    cpu_seconds,
    get_json,
    machine,
    median,
    percentile,
    post_events,
    sdk_client,
    serve,
    stop_children_on_exit,
    table,
)

HERE = Path(__file__).resolve()
LOAD_EVENT = "bench/load"
SLEEP_EVENT = "bench/sleep"
INGEST_EVENT = "bench/ingest"


# --------------------------------------------------------------------------- the SDK app (a subprocess)

def serve_app(port: int, engine_url: str, mode: str, limit: int, step_ms: float, which: str = "all") -> None:
    """The app: ``three-steps`` (concurrency-limited) and ``sleeper``, plus /bench/stats and /bench/reset.

    ``which``: ``all`` serves both; ``load`` and ``sleepers`` serve one each, as two apps
    (``--sleeper-app separate``).
    """
    import datetime

    import inngest

    client = sdk_client(engine_url, mode, "bench-sleepers" if which == "sleepers" else "bench-load")
    st: dict[str, Any] = {}

    def reset() -> None:
        st.update(executions=Counter(), finals=Counter(), done_n=Counter(), inflight=0, max_inflight=0,
                  started=set(), runs_inflight=0, max_runs_inflight=0, last_done=0.0, first_step=0.0,
                  plan={}, samples=[], recorded=set(), started_runs={}, sleepers_done=0, sleepers_started=0,
                  is_probe=[])

    reset()
    concurrency = [inngest.Concurrency(limit=limit)] if limit > 0 else None

    @client.create_function(fn_id="three-steps", trigger=inngest.TriggerEvent(event=LOAD_EVENT), retries=0,
                            concurrency=concurrency)  # type: ignore[untyped-decorator]
    async def three_steps(ctx: inngest.Context) -> dict[str, int]:
        for i in range(3):
            async def step(i: int = i) -> dict[str, object]:
                st["executions"][f"{ctx.run_id}:{i}"] += 1
                if i == 0 and ctx.run_id not in st["started"]:
                    st["started"].add(ctx.run_id)
                    st["runs_inflight"] += 1
                    st["max_runs_inflight"] = max(st["max_runs_inflight"], st["runs_inflight"])
                    st["first_step"] = st["first_step"] or time.time()
                st["inflight"] += 1
                st["max_inflight"] = max(st["max_inflight"], st["inflight"])
                try:
                    if step_ms > 0:
                        await asyncio.sleep(step_ms / 1000)
                finally:
                    st["inflight"] -= 1
                return {"i": i, "p": "x" * 90}

            await ctx.step.run(f"s{i}", step)
        st["finals"][ctx.run_id] += 1
        if st["finals"][ctx.run_id] == 1:
            st["runs_inflight"] -= 1
            st["done_n"][int(str(ctx.event.data["n"]))] += 1
        st["last_done"] = time.time()
        return {"steps": 3}

    @client.create_function(fn_id="sleeper", trigger=inngest.TriggerEvent(event=SLEEP_EVENT), retries=0)  # type: ignore[untyped-decorator]
    async def sleeper(ctx: inngest.Context) -> dict[str, int]:
        """``sleeps`` x (step.sleep 1 s, then a step that returns the time it ran)."""
        async def now() -> float:
            return time.time()

        before = await ctx.step.run("before", now)
        sleeps = int(str(ctx.event.data.get("sleeps", 1)))
        if ctx.run_id not in st["started_runs"]:
            st["started_runs"][ctx.run_id] = (before - float(str(ctx.event.data.get("sent") or before))) * 1000
            st["sleepers_started"] += 1 if sleeps else 0
            st["is_probe"].append(not sleeps)
        for i in range(sleeps):
            key = f"{ctx.run_id}:{i}"
            if key not in st["plan"]:
                st["plan"][key] = time.time()  # the SDK computes the wake time as now + 1 s inside sleep()
            await ctx.step.sleep(f"wait-{i}", datetime.timedelta(seconds=1))
            after = await ctx.step.run(f"after-{i}", now)
            if key not in st["recorded"]:
                st["recorded"].add(key)
                plan = st["plan"][key]
                st["samples"].append({"run": ctx.run_id, "i": i, "plan": plan, "late_ms": (after - plan - 1) * 1000})
        if sleeps:
            st["sleepers_done"] += 1
        return {"sleeps": sleeps}

    def routes(app: Any) -> None:
        @app.get("/bench/stats")  # type: ignore[untyped-decorator]
        async def stats() -> dict[str, Any]:
            ex: Counter[str] = st["executions"]
            return {
                "executions": sum(ex.values()), "distinct_steps": len(ex),
                "dup_steps": [k for k, v in ex.items() if v > 1][:20],
                "dup_finals": sum(1 for v in st["finals"].values() if v > 1),
                "done": len(st["done_n"]), "dup_n": [n for n, v in st["done_n"].items() if v > 1][:20],
                "done_ns": sorted(st["done_n"]),
                "max_inflight": st["max_inflight"], "max_runs_inflight": st["max_runs_inflight"],
                "first_step": st["first_step"], "last_done": st["last_done"],
                "sleepers_done": st["sleepers_done"], "samples": st["samples"],
                "start_delays_ms": list(st["started_runs"].values()),
                "sleepers_started": st["sleepers_started"], "start_is_probe": st["is_probe"],
            }

        @app.post("/bench/reset")  # type: ignore[untyped-decorator]
        async def do_reset() -> dict[str, bool]:
            reset()
            return {"ok": True}

    functions = {"all": [three_steps, sleeper], "load": [three_steps], "sleepers": [sleeper]}[which]
    serve(port, client, functions, routes)


# --------------------------------------------------------------------------- the benchmarks

class Apps:
    """The load app and the sleepers' app: one process (``--sleeper-app shared``) or two (``separate``)."""

    SLEEPER_KEYS = ("sleepers_done", "samples", "start_delays_ms", "sleepers_started", "start_is_probe")

    def __init__(self, load: App, sleepers: App | None) -> None:
        self.load = load
        self.sleepers = sleepers

    def all(self) -> list[App]:
        return [self.load] + ([self.sleepers] if self.sleepers else [])

    def stop(self) -> None:
        for app in self.all():
            app.stop()

    def cpu_s(self) -> list[float]:
        return [cpu_seconds(a.proc.pid) if a.proc.poll() is None else float("nan") for a in self.all()]


async def _start(mode: str, args: argparse.Namespace, session: aiohttp.ClientSession) -> tuple[Engine, Apps]:
    engine = Engine(mode)
    extra = [str(args.limit), str(args.step_ms)]
    separate = getattr(args, "sleeper_app", "shared") == "separate"
    if separate:
        apps = Apps(App(HERE, engine, [*extra, "load"]), App(HERE, engine, [*extra, "sleepers"], "sleepers-app.log"))
    else:
        apps = Apps(App(HERE, engine, extra), None)
    try:
        for app in apps.all():
            await app.sync(session)
    except Exception:
        apps.stop()
        engine.stop()
        raise
    return engine, apps


async def _stats(apps: Apps, session: aiohttp.ClientSession) -> dict[str, Any]:
    st = dict(await apps.load.get(session, "/bench/stats"))
    if apps.sleepers is not None:
        other = dict(await apps.sleepers.get(session, "/bench/stats"))
        st.update({k: other[k] for k in Apps.SLEEPER_KEYS})
    return st


async def _send_sleepers(engine: Engine, session: aiohttp.ClientSession, count: int, every_s: float,
                         sleeps: int, keep_going: Any = None) -> int:
    """Start ``count`` sleeper runs ``every_s`` apart, each doing ``sleeps`` 1 s sleeps (0: a start probe)."""
    sent = 0
    while sent < count and (keep_going is None or keep_going()):
        try:
            await post_events(session, engine, [{"name": SLEEP_EVENT,
                                                 "data": {"k": sent, "sleeps": sleeps, "sent": time.time()}}])
        except (aiohttp.ClientError, TimeoutError, RuntimeError):
            return sent  # the engine stopped answering: the load loop reports it
        sent += 1
        await asyncio.sleep(every_s)
    return sent


async def _healthy(session: aiohttp.ClientSession, engine: Engine) -> bool:
    try:
        async with session.get(engine.url + "/health", timeout=aiohttp.ClientTimeout(total=5)) as r:
            return r.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def _wait_app(app: Apps, session: aiohttp.ClientSession, done: Any, timeout: float) -> dict[str, Any]:
    """Poll the app's stats until ``done(stats)`` or the timeout; returns the last stats."""
    deadline = time.monotonic() + timeout
    while True:
        st = await _stats(app, session)
        if done(st) or time.monotonic() > deadline:
            return st
        await asyncio.sleep(0.2)


def _late_window(samples: list[dict[str, Any]], t0: float, over_ms: float = 50) -> dict[str, Any]:
    """How many sleeps were more than ``over_ms`` late, and when (seconds after the load was sent)."""
    late = sorted((x["plan"] + 1 - t0, x["late_ms"]) for x in samples if x["late_ms"] > over_ms)
    return {"count": len(late), "of": len(samples), "first_s": min((t for t, _ in late), default=float("nan")),
            "last_s": max((t for t, _ in late), default=float("nan")),
            "within_5s": sum(1 for t, _ in late if t <= 5),
            "due_s_late_ms": [[round(t, 1), round(ms)] for t, ms in late]}


def _iso_s(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def _lateness(session: aiohttp.ClientSession, engine: Engine, samples: list[dict[str, Any]]) -> dict[str, Any]:
    """App-side lateness, plus the engine's part: each sleep step's ``ended_at`` (when the engine fired it)."""
    late = [x["late_ms"] for x in samples]
    fired: list[float] = []
    steps_of: dict[str, dict[str, str]] = {}
    for x in samples:
        if x["run"] not in steps_of:
            steps = (await get_json(session, engine, f"/v1/runs/{x['run']}/steps"))["data"]
            steps_of[x["run"]] = {s["name"]: s["ended_at"] for s in steps if s["op"] == "Sleep" and s.get("ended_at")}
        end = steps_of[x["run"]].get(f"wait-{x['i']}")
        if end:
            fired.append((_iso_s(end) - x["plan"] - 1.0) * 1000)
    return {"samples": len(samples), "p50_ms": percentile(late, 50), "p99_ms": percentile(late, 99),
            "max_ms": max(late) if late else float("nan"), "fire_p50_ms": percentile(fired, 50),
            "fire_p99_ms": percentile(fired, 99)}


async def bench_load(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        engine, app = await _start(mode, args, session)
        try:
            n = args.runs
            # Sleepers first, so their sleeps fall inside the load; a feeder keeps --load-sleepers of
            # them going (each sleeps --sleeps times: the SDK replays every memoized step on each call,
            # so long-lived runs would get dearer) and sends a start probe (a run with no sleep) every 0.5 s.
            s_sent = await _send_sleepers(engine, session, args.load_sleepers, 0.05, args.sleeps)
            await _wait_app(app, session, lambda st: st["sleepers_started"] >= s_sent, 30)
            t0 = time.time()
            problem = ""
            for start in range(0, n, 100):
                try:
                    await post_events(session, engine, [{"name": LOAD_EVENT, "data": {"n": i}}
                                                        for i in range(start, min(n, start + 100))])
                except (aiohttp.ClientError, TimeoutError, RuntimeError) as exc:
                    problem = f"POST /e failed after {start} events: {type(exc).__name__} {exc}"
                    break
            enqueue_s = time.time() - t0
            progress = {"done": 0, "sleepers_done": 0}
            sent = {"sleepers": s_sent, "probes": 0}

            async def feeder() -> None:
                while progress["done"] < 0.9 * n:
                    sent["probes"] += await _send_sleepers(engine, session, 1, 0, 0)
                    missing = args.load_sleepers - (sent["sleepers"] - progress["sleepers_done"])
                    if missing > 0:
                        sent["sleepers"] += await _send_sleepers(engine, session, missing, 0, args.sleeps)
                    await asyncio.sleep(0.5)

            feeder_task = asyncio.create_task(feeder())
            stalled = bool(problem)
            last_change, last_done = time.monotonic(), -1
            deadline = time.monotonic() + args.timeout
            peak_rss = 0.0
            while not stalled:
                st = await _stats(app, session)
                progress["done"], progress["sleepers_done"] = st["done"], st["sleepers_done"]
                peak_rss = max(peak_rss, engine.rss_mb()) if engine.alive() else peak_rss
                if st["done"] >= n:
                    break
                if st["done"] != last_done:
                    last_done, last_change = st["done"], time.monotonic()
                if not engine.alive() or time.monotonic() - last_change > args.stall or time.monotonic() > deadline:
                    stalled = True
                    healthy = engine.alive() and await _healthy(session, engine)
                    problem = (f"no run finished for {args.stall:.0f} s" if time.monotonic() <= deadline
                               else f"not done after {args.timeout:.0f} s") + (
                        "" if healthy else "; the engine does not answer GET /health within 5 s")
                    break
                await asyncio.sleep(0.25)
            progress["done"] = n  # stops the feeder
            await feeder_task
            st = await _stats(app, session)
            load_end = st["last_done"] or time.time()
            total_sleepers = sent["sleepers"]
            st = await _wait_app(app, session, lambda st: st["sleepers_done"] >= total_sleepers and len(
                st["start_delays_ms"]) >= total_sleepers + sent["probes"], 5 if stalled else args.sleeps + 30)
            under_load = [x for x in st["samples"] if x["plan"] + 1 <= load_end]
            probe_delays = [d for d, is_probe in zip(st["start_delays_ms"], st["start_is_probe"], strict=True)
                            if is_probe]
            engine_counts: dict[str, int] = {}
            deadline = time.monotonic() + 30
            while engine.alive() and time.monotonic() < deadline:
                try:
                    engine_counts = await count_runs(session, engine, "three-steps")
                except (aiohttp.ClientError, TimeoutError, RuntimeError):
                    break
                if engine_counts.get("Completed", 0) >= n or stalled:
                    break
                await asyncio.sleep(0.5)
            try:
                sleep = await _lateness(session, engine, under_load)
            except (aiohttp.ClientError, TimeoutError, RuntimeError):
                sleep = {"samples": len(under_load), **dict.fromkeys(
                    ("p50_ms", "p99_ms", "max_ms", "fire_p50_ms", "fire_p99_ms"), float("nan"))}
            elapsed = (st["last_done"] or time.time()) - t0
            app_cpu = [*app.cpu_s(), float("nan")]      # the load app, then the sleepers' app if separate
            lost = n - len(set(st["done_ns"]) & set(range(n)))
            return {
                "mode": mode, "runs": n, "limit": args.limit, "stalled": stalled, "problem": problem,
                "done": st["done"], "lost": lost,
                "engine_completed": engine_counts.get("Completed", 0),
                "engine_other": {k: v for k, v in engine_counts.items() if k != "Completed"},
                "executions": st["executions"], "dup_steps": len(st["dup_steps"]), "dup_step_ids": st["dup_steps"],
                "dup_runs": len(st["dup_n"]), "dup_finals": st["dup_finals"],
                "max_inflight_steps": st["max_inflight"], "max_runs_inflight": st["max_runs_inflight"],
                "t0": t0, "enqueue_s": enqueue_s, "elapsed_s": elapsed,
                "runs_per_s": st["done"] / elapsed if elapsed else 0,
                "peak_rss_mb": engine.peak_rss_mb() if engine.alive() else peak_rss,
                "engine_cpu_s": engine.cpu_s() if engine.alive() else float("nan"),
                "app_cpu_s": app_cpu[0], "sleeper_app_cpu_s": app_cpu[1],
                "sleeper_app": "separate" if app.sleepers else "shared",
                "sleep": {"sleepers": total_sleepers, **sleep},
                "late_over_50ms": _late_window(under_load, t0),
                "probes": sent["probes"], "probes_started": len(probe_delays),
                "probe_start_p50_ms": percentile(probe_delays, 50), "probe_start_max_ms": max(probe_delays or [0]),
            }
        finally:
            app.stop()
            engine.stop()


async def bench_sleep(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        engine, app = await _start(mode, args, session)
        try:
            sent = await _send_sleepers(engine, session, args.sleepers, 0.02, 1)
            st = await _wait_app(app, session, lambda st: st["sleepers_done"] >= sent, 30)
            return {"mode": mode, "sleepers": sent, **(await _lateness(session, engine, st["samples"])),
                    "peak_rss_mb": engine.peak_rss_mb()}
        finally:
            app.stop()
            engine.stop()


async def _ingest_round(engine: Engine, clients: int, batch: int, seconds: float) -> tuple[float, list[float]]:
    events = [{"name": INGEST_EVENT, "data": {"i": i, "p": "x" * 50}} for i in range(batch)]
    payload = json.dumps(events).encode()
    url = f"{engine.url}/e/{engine.key}"
    accepted = 0
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        async def client() -> None:
            nonlocal accepted
            while time.perf_counter() < end:
                t = time.perf_counter()
                async with session.post(url, data=payload, headers={"Content-Type": "application/json"}) as r:
                    body = await r.json()
                    if r.status != 200:
                        raise RuntimeError(f"POST /e answered {r.status}: {body}")
                accepted += len(body["ids"])
                latencies.append((time.perf_counter() - t) * 1000)

        start = time.perf_counter()
        end = start + seconds
        await asyncio.gather(*(client() for _ in range(clients)))
        return accepted / (time.perf_counter() - start), latencies


async def _dispatch_backlog(engine: Engine, seconds: float = 5.0) -> dict[str, float]:
    """Accepted events whose dispatch row is still queued, and how fast an idle engine drains them.

    Read from the database file (WAL allows a reader beside the engine): the
    REST API has no queue depth. Production only: dev keeps it in memory.
    """
    import sqlite3

    def count() -> tuple[int, int]:
        conn = sqlite3.connect(f"file:{engine.root / 'db' / 'engine.db'}?mode=ro", uri=True, timeout=10)
        try:
            queued = conn.execute("SELECT count(*) FROM queue WHERE kind='event'").fetchone()[0]
            return int(queued), int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
        finally:
            conn.close()

    before, events = count()
    await asyncio.sleep(seconds)
    after, _ = count()
    return {"events": events, "queued": before, "drain_per_s": (before - after) / seconds}


async def bench_events(mode: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    engine = Engine(mode)
    out: list[dict[str, Any]] = []
    try:
        for batch in (1, 100):
            await _ingest_round(engine, args.clients, batch, 0.5)  # warm-up
            rates, lats = [], []
            for _ in range(args.rounds):
                rate, lat = await _ingest_round(engine, args.clients, batch, args.seconds)
                rates.append(rate)
                lats += lat
            out.append({"mode": mode, "batch": batch, "events_per_s": median(rates), "rounds": rates,
                        "req_p50_ms": percentile(lats, 50), "req_p99_ms": percentile(lats, 99),
                        "peak_rss_mb": engine.peak_rss_mb()})
        if mode == "production":
            out[-1]["backlog"] = await _dispatch_backlog(engine)
    finally:
        engine.stop()
    return out


# --------------------------------------------------------------------------- output

def _f(x: float, digits: int = 1) -> str:
    return "n/a" if x != x else f"{x:.{digits}f}"


def print_load(results: list[dict[str, Any]]) -> None:
    r0 = results[0]
    print(f"\n{r0['runs']} runs of a 3-step function, concurrency limit {r0['limit']}, all queued at once "
          f"(one round)")
    print(table(["mode", "finished (app/engine)", "lost", "steps run twice", "max steps in flight",
                 "runs/s", "engine peak RSS MB", "CPU s engine/app"],
                [[r["mode"], f"{r['done']}/{r['engine_completed']}" + (" STALLED" if r["stalled"] else ""),
                  r["lost"], r["dup_steps"], r["max_inflight_steps"], _f(r["runs_per_s"]),
                  _f(r["peak_rss_mb"], 0), f"{_f(r['engine_cpu_s'])}/{_f(r['app_cpu_s'])}"
                  + (f" (+{_f(r['sleeper_app_cpu_s'])} sleepers' app)" if r["sleeper_app"] == "separate" else "")]
                 for r in results]))
    for r in results:
        if r["problem"]:
            print(f"  {r['mode']}: STALLED: {r['problem']}")
        if r["engine_other"] or r["dup_runs"] or r["dup_finals"]:
            print(f"  {r['mode']}: other run states {r['engine_other']}, runs finished twice {r['dup_runs']}, "
                  f"final calls repeated {r['dup_finals']}")
        if r["limit"] and r["max_inflight_steps"] > r["limit"]:
            print(f"  {r['mode']}: concurrency limit {r['limit']} NOT enforced: {r['max_inflight_steps']} steps "
                  f"ran at once ({r['max_runs_inflight']} runs in progress at once)")
    print_sleep([{"mode": r["mode"], **r["sleep"]} for r in results],
                f"step.sleep(1 s) lateness during that load ({r0['sleep']['sleepers']} sleeper runs, "
                "the first started just before the load; sleeps due before the load's last run ended; "
                + ("served by a second app process" if r0["sleeper_app"] == "separate"
                   else "served by the load's own app process") + ")")
    for r in results:
        w = r["late_over_50ms"]
        if w["count"]:
            print(f"  {r['mode']}: {w['count']} of {w['of']} sleeps were over 50 ms late, {w['within_5s']} of them "
                  f"due in the first 5 s after the load was sent (when the 10,000 events are dispatched), the "
                  f"last {w['last_s']:.1f} s after")
    print("\nStart delay of another function's run, sent every 0.5 s during the load (event sent -> first step)")
    print(table(["mode", "probes (started)", "p50 ms", "max ms"],
                [[r["mode"], f"{r['probes']} ({r['probes_started']})", _f(r["probe_start_p50_ms"], 0),
                  _f(r["probe_start_max_ms"], 0)] for r in results]))


def print_sleep(results: list[dict[str, Any]], title: str) -> None:
    print(f"\n{title}")
    print(table(["mode", "sleeps measured", "late p50 ms", "late p99 ms", "late max ms", "engine fired p50/p99 ms"],
                [[r["mode"], r["samples"], _f(r["p50_ms"]), _f(r["p99_ms"]), _f(r["max_ms"]),
                  f"{_f(r['fire_p50_ms'])}/{_f(r['fire_p99_ms'])}"] for r in results]))


def print_events(results: list[dict[str, Any]], clients: int, rounds: int) -> None:
    print(f"\nPOST /e/{{key}}: events accepted per second, {clients} concurrent aiohttp clients, "
          f"median of {rounds} rounds")
    print(table(["mode", "events/request", "events/s", "rounds", "request p50 ms", "request p99 ms"],
                [[r["mode"], r["batch"], _f(r["events_per_s"], 0), " ".join(f"{x:.0f}" for x in r["rounds"]),
                  _f(r["req_p50_ms"]), _f(r["req_p99_ms"])] for r in results]))
    for r in results:
        if "backlog" in r:
            b = r["backlog"]
            print(f"  {r['mode']}: after the rounds, {b['queued']:.0f} of {b['events']:.0f} accepted events still "
                  f"wait for dispatch; an idle engine drains {b['drain_per_s']:.0f} a second")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-app":
        port, url, mode, limit, step_ms = sys.argv[2:7]
        serve_app(int(port), url, mode, int(limit), float(step_ms), sys.argv[7] if len(sys.argv) > 7 else "all")
        return
    stop_children_on_exit()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bench", choices=["load", "events", "sleep"])
    parser.add_argument("--modes", default="dev,production")
    parser.add_argument("--runs", type=int, default=10_000, help="load: runs queued at once")
    parser.add_argument("--limit", type=int, default=10, help="load: concurrency limit (0 = none)")
    parser.add_argument("--step-ms", type=float, default=2.0, help="load: time each step awaits")
    parser.add_argument("--sleepers", type=int, default=200, help="sleep: runs, 20 ms apart")
    parser.add_argument("--load-sleepers", type=int, default=20, help="load: runs kept sleeping during the load")
    parser.add_argument("--sleeps", type=int, default=10, help="load: 1 s sleeps per such run")
    parser.add_argument("--sleeper-app", choices=["shared", "separate"], default="shared",
                        help="load: serve the sleepers and start probes from the load's own app process "
                             "(shared, the default) or from a second app process (separate), so a CPU-bound "
                             "load app does not add its queueing to the measured lateness")
    parser.add_argument("--timeout", type=float, default=600, help="load: overall bound in seconds")
    parser.add_argument("--stall", type=float, default=60, help="load: give up after this long with no progress")
    parser.add_argument("--seconds", type=float, default=3.0, help="events: length of a round")
    parser.add_argument("--rounds", type=int, default=3, help="events: rounds per batch size")
    parser.add_argument("--clients", type=int, default=32, help="events: concurrent clients")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON too")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    started = time.time()
    if args.bench == "load":
        results: list[dict[str, Any]] = [asyncio.run(bench_load(m, args)) for m in modes]
        print_load(results)
    elif args.bench == "sleep":
        results = [asyncio.run(bench_sleep(m, args)) for m in modes]
        print_sleep(results, f"step.sleep(1 s) lateness, idle engine, {args.sleepers} runs started 20 ms apart")
    else:
        results = [r for m in modes for r in asyncio.run(bench_events(m, args))]
        print_events(results, args.clients, args.rounds)
    print(f"\n(total {time.time() - started:.0f} s; {machine()})")
    if args.json:
        print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
