"""W10 over HTTP, over connect and on Restate, in one run, interleaved round by round.

    .venv/bin/pip install -e '.[bench]'      # restate-sdk + hypercorn (the Restate side only)
    .venv/bin/python benchmarks/connect_bench.py --rounds 3 --runs 320 --modes dev,production

W10 = one function of 10 sequential steps, each returning ~100 bytes, then a
return value (11 SDK calls per run on the official SDK). Three systems:

* ``http``: the official ``inngest`` SDK served by FastAPI under uvicorn
  (uvloop + httptools), synced to ``python -m agentcmd engine dev|start``;
  the engine calls it over HTTP.
* ``connect``: the same function in an ``inngest.connect`` worker process
  (``inngest.connect.connect([(client, fns)])``, uvloop as the event loop
  policy), which dials out to the same engine's connect gateway and gets its
  calls over the WebSocket. Same engine process as ``http`` (two apps, two
  event names), so the engine's CPU per call is directly comparable.
* ``restate``: Restate's server from npm and W10 as a ``restate-sdk``
  service with 10 ``ctx.run_typed`` steps, one worker process (hypercorn,
  h2c, uvloop), invoked through the ingress (see ``_restate.py``). Restate
  has one mode: always persistent (its log fsynced).

``dev`` = ``agentcmd engine dev`` (in memory); ``production`` =
``agentcmd engine start`` (SQLite WAL file, group fsync before any
acknowledgement, signed calls). All processes start once and stay up; each
round runs every (system, mode) once, in an order rotated each round, so a
busy shared machine's noise hits all alike. Per (system, mode) and round:

* c=1: ``--c1-runs`` runs one after the other; wall time from sending the
  event (``POST /e``; Restate: ``POST /Bench/run`` on the ingress) to the run
  known complete (the engine's REST API says ``Completed``; Restate: the
  ingress answers with the output). For the engine also ``received_at`` ->
  ``ended_at`` from its own timestamps;
* runs/s with ``--inflight`` runs in flight until ``--runs`` are done (the
  engine: a new event each time a run's body ends, then wait for the last to
  complete; Restate: ``--inflight`` clients each invoking again as soon as
  the ingress answered);
* CPU per call during that phase, from /proc: the server process (engine or
  restate-server) and the app/worker process, divided by runs x 11 (for
  Restate, whose worker gets one call per run, that is per step); in brackets
  the app's main thread alone (the connect worker runs its socket on a second
  thread), and both processes' CPU per run: on two cores, what bounds runs/s
  once the machine is otherwise idle.

Reported: medians over the rounds, and the ratios connect/http (same mode)
and connect/restate as medians of the per-round ratios (same round, same
machine load). ``--profile DIR`` records py-spy profiles (raw, per thread) of
the engine and the app/worker during the throughput phases of http and
connect (needs ``py-spy`` in the venv; it slows what it samples).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    MODES,
    W10_CALLS,
    App,
    Engine,
    RunNotifications,
    cpu_seconds,
    free_port,
    get_json,
    machine,
    median,
    post_events,
    sdk_client,
    serve,
    spawn,
    stop_children_on_exit,
    stop_process,
    table,
    w10_function,
    wait_no_run_running,
    wait_run_completed,
)

HERE = Path(__file__).resolve()
SYSTEMS = ("http", "connect", "restate")
EVENTS = {"http": "bench/http", "connect": "bench/connect"}
APP_IDS = {"http": "bench-http", "connect": "bench-connect"}
ACTIVE = "connect worker ACTIVE"


# --------------------------------------------------------------------------- child processes

def serve_http_app(port: int, engine_url: str, mode: str, notify_port: int) -> None:
    client = sdk_client(engine_url, mode, APP_IDS["http"])
    serve(port, client, [w10_function(client, EVENTS["http"], notify_port)])


def serve_connect_worker(engine_url: str, mode: str, notify_port: int, switch_interval: float | None = None) -> None:
    """An ``inngest.connect`` worker; prints ACTIVE once the gateway has accepted it.

    ``switch_interval``: ``sys.setswitchinterval`` for this process. The SDK reads the socket on one
    thread and runs the function on the main thread; a thread that wants the GIL waits up to the
    interval (CPython: 5 ms) for the one holding it to let go.
    """
    if switch_interval is not None:
        sys.setswitchinterval(switch_interval)
    import uvloop
    from inngest.connect import ConnectionState, connect

    client = sdk_client(engine_url, mode, APP_IDS["connect"])
    fn = w10_function(client, EVENTS["connect"], notify_port)
    # The SDK runs the socket on a thread with a loop of its own (asyncio.new_event_loop): the policy
    # makes that loop uvloop too, as the HTTP app's uvicorn has.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    async def main() -> None:
        conn = connect([(client, [fn])], instance_id=f"connect-bench-{os.getpid()}")
        started = asyncio.create_task(conn.start())
        active = asyncio.create_task(conn.wait_for_state(ConnectionState.ACTIVE))
        await asyncio.wait({started, active}, return_when=asyncio.FIRST_COMPLETED)
        if active.done():
            print(ACTIVE, flush=True)
        await started

    asyncio.run(main())


class ConnectWorker:
    """This script re-run as ``--serve-worker ENGINE_URL MODE NOTIFY_PORT``."""

    def __init__(self, engine: Engine, notify_port: int, switch_interval: float | None = None) -> None:
        self.log_path = engine.root / "connect-worker.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        extra = [] if switch_interval is None else [str(switch_interval)]
        self.proc = spawn([sys.executable, str(HERE), "--serve-worker", engine.url, engine.mode, str(notify_port),
                           *extra],
                          stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def wait_active(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ACTIVE in self.log_path.read_text(errors="replace"):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"the connect worker exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.02)
        raise RuntimeError(f"the connect worker did not become ACTIVE within {timeout:.0f} s: does this engine "
                           f"have a connect gateway (POST /v0/connect/start)? Worker log:\n{self.log()}")

    def stop(self) -> None:
        stop_process(self.proc, 15)   # the SDK drains: pause, wait for in-flight requests, close
        self._log.close()


class RestateWorker:
    """This script re-run as ``--serve-restate PORT``: the restate-sdk service under hypercorn."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.log_path = root / "restate-worker.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = spawn([sys.executable, str(HERE), "--serve-restate", str(self.port)],
                          stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def failed(self) -> str | None:
        if self.proc.poll() is None:
            return None
        return f"exit {self.proc.returncode}:\n{self.log_path.read_text(errors='replace')[-3000:]}"

    def stop(self) -> None:
        stop_process(self.proc, 15)
        self._log.close()


# --------------------------------------------------------------------------- one phase = one (system, mode) in a round

@dataclass
class Phase:
    """What one (system, mode) measured in one round."""

    c1_ms: float
    runs_per_s: float
    server_cpu_ms_per_call: float
    app_cpu_ms_per_call: float
    c1_engine_ms: float = float("nan")
    app_main_thread_cpu_ms_per_call: float = float("nan")   # the rest of the app's CPU: its other threads


@dataclass
class Target:
    """A system under test: how to run W10 once and many at once, and whose CPU to read."""

    system: str
    mode: str
    server_pid: int
    app_pid: int
    one: Callable[[aiohttp.ClientSession], Any]                       # -> (wall ms, engine ms)
    many: Callable[[aiohttp.ClientSession, int, int], Any]            # (runs, inflight) -> seconds
    phases: list[Phase] = field(default_factory=list)


def engine_target(system: str, engine: Engine, app_pid: int, notes: RunNotifications) -> Target:
    event = EVENTS[system]

    async def one(session: aiohttp.ClientSession) -> tuple[float, float]:
        notes.drain()
        t = time.perf_counter()
        [eid] = await post_events(session, engine, [{"name": event, "data": {}}])
        await notes.next()
        run = await wait_run_completed(session, engine, eid)
        wall = (time.perf_counter() - t) * 1000
        received = (await get_json(session, engine, f"/v1/events/{eid}"))["data"]["received_at"]
        return wall, (_epoch_ms(str(run["ended_at"])) - _epoch_ms(str(received)))

    async def many(session: aiohttp.ClientSession, runs: int, inflight: int) -> float:
        notes.drain()
        t = time.perf_counter()
        batch = [{"name": event, "data": {"n": i}} for i in range(min(inflight, runs))]
        first = await post_events(session, engine, batch)
        sent, done, last = len(first), 0, first[-1]
        while done < runs:
            await notes.next()
            done += 1
            if sent < runs:
                [last] = await post_events(session, engine, [{"name": event, "data": {"n": sent}}])
                sent += 1
        await wait_run_completed(session, engine, last)
        await wait_no_run_running(session, engine)
        return time.perf_counter() - t

    return Target(system, engine.mode, engine.proc.pid, app_pid, one, many)


def restate_target(server: Any, worker: RestateWorker) -> Target:
    url = server.ingress_url + "/Bench/run"

    async def invoke(session: aiohttp.ClientSession) -> None:
        async with session.post(url, json={}) as r:
            body = await r.text()
            if r.status != 200:
                raise RuntimeError(f"restate ingress answered {r.status}: {body[:500]}")

    async def one(session: aiohttp.ClientSession) -> tuple[float, float]:
        t = time.perf_counter()
        await invoke(session)
        return (time.perf_counter() - t) * 1000, float("nan")

    async def many(session: aiohttp.ClientSession, runs: int, inflight: int) -> float:
        left = [runs]

        async def client() -> None:
            while left[0] > 0:
                left[0] -= 1
                await invoke(session)

        t = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(min(inflight, runs))))
        return time.perf_counter() - t

    return Target("restate", "persistent", server.proc.pid, worker.proc.pid, one, many)


def _epoch_ms(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000


async def measure(target: Target, session: aiohttp.ClientSession, c1_runs: int, runs: int, inflight: int,
                  profile_dir: Path | None) -> Phase:
    walls, engine_ms = [], []
    for _ in range(c1_runs):
        wall, eng = await target.one(session)
        walls.append(wall)
        engine_ms.append(eng)
    spies = _py_spy(profile_dir, target) if profile_dir and target.system != "restate" else []
    try:
        server0, app0 = cpu_seconds(target.server_pid), cpu_seconds(target.app_pid)
        main0 = thread_cpu_seconds(target.app_pid, target.app_pid)
        elapsed = await target.many(session, runs, inflight)
        server1, app1 = cpu_seconds(target.server_pid), cpu_seconds(target.app_pid)
        main1 = thread_cpu_seconds(target.app_pid, target.app_pid)
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                spy.wait(60)
    calls = runs * W10_CALLS
    return Phase(c1_ms=median(walls), runs_per_s=runs / elapsed,
                 server_cpu_ms_per_call=(server1 - server0) / calls * 1000,
                 app_cpu_ms_per_call=(app1 - app0) / calls * 1000, c1_engine_ms=median(engine_ms),
                 app_main_thread_cpu_ms_per_call=(main1 - main0) / calls * 1000)


def thread_cpu_seconds(pid: int, tid: int) -> float:
    """user+sys of one thread (the connect worker runs its socket on a second thread: how the CPU splits)."""
    fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _py_spy(profile_dir: Path, target: Target) -> list[subprocess.Popen[bytes]]:
    spy = Path(sys.executable).parent / "py-spy"
    if not spy.exists():
        raise SystemExit(f"--profile needs py-spy in the venv: {Path(sys.executable).parent / 'pip'} install py-spy")
    profile_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%H%M%S")
    procs = []
    for name, pid in (("engine", target.server_pid), ("app", target.app_pid)):
        out = profile_dir / f"{target.system}-{target.mode}-{name}-{stamp}.txt"
        procs.append(spawn([str(spy), "record", "--nonblocking", "--threads", "-r", "200", "-f", "raw",
                            "-o", str(out), "-p", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True))
    time.sleep(0.5)   # py-spy attaches before the phase starts (not a synchronisation: a head start)
    return procs


# --------------------------------------------------------------------------- the run

async def run(args: argparse.Namespace) -> dict[str, Any]:
    systems = args.systems
    modes = args.modes
    stoppers: list[Callable[[], None]] = []
    notes_all: list[RunNotifications] = []
    targets: list[Target] = []
    try:
        if "restate" in systems:
            import _restate

            _restate.check_sdk()
            cache = Path(args.restate_cache) if args.restate_cache else _restate.default_cache()
            server = _restate.RestateServer(cache)
            stoppers.append(server.stop)
            worker = RestateWorker(server.root)
            stoppers.append(worker.stop)
            server.register(worker.uri, worker.failed)
            restate = restate_target(server, worker)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=args.inflight * 2)) as session:
            for mode in modes:
                if not {"http", "connect"} & set(systems):
                    break
                # The gateway's port given, not left to "engine port + 1", which another program may hold
                # on a shared machine (the engine then runs without a gateway).
                engine = Engine(mode, extra_args=["--connect-port", str(free_port())] if "connect" in systems else [])
                stoppers.append(engine.stop)
                if "http" in systems:
                    notes = await RunNotifications.open()
                    notes_all.append(notes)
                    app = App(HERE, engine, extra=[str(notes.port)])
                    stoppers.append(app.stop)
                    await app.sync(session)
                    targets.append(engine_target("http", engine, app.proc.pid, notes))
                if "connect" in systems:
                    notes = await RunNotifications.open()
                    notes_all.append(notes)
                    connect = ConnectWorker(engine, notes.port, args.worker_switch_interval)
                    stoppers.append(connect.stop)
                    await asyncio.to_thread(connect.wait_active)
                    targets.append(engine_target("connect", engine, connect.proc.pid, notes))
            if "restate" in systems:
                targets.append(restate)
            for target in targets:          # warm-up: imports, first connections, caches
                for _ in range(args.warmup):
                    await target.one(session)
            for r in range(args.rounds):
                order = targets[r % len(targets):] + targets[:r % len(targets)]
                for target in order:
                    phase = await measure(target, session, args.c1_runs, args.runs, args.inflight, args.profile)
                    target.phases.append(phase)
                    print(f"round {r + 1}/{args.rounds} {target.system:8} {target.mode:10} c=1 {phase.c1_ms:6.1f} ms"
                          f"  {phase.runs_per_s:6.0f} runs/s  CPU/call server {phase.server_cpu_ms_per_call:.3f} ms"
                          f" app {phase.app_cpu_ms_per_call:.3f} ms", file=sys.stderr, flush=True)
    finally:
        for notes in notes_all:
            notes.close()
        for stop in reversed(stoppers):
            with contextlib.suppress(Exception):
                stop()
    return summarise(targets)


def summarise(targets: Sequence[Target]) -> dict[str, Any]:
    rows = {}
    for t in targets:
        rows[f"{t.system}/{t.mode}"] = {
            "system": t.system, "mode": t.mode,
            "c1_ms": median([p.c1_ms for p in t.phases]),
            "c1_engine_ms": median([p.c1_engine_ms for p in t.phases]),
            "runs_per_s": median([p.runs_per_s for p in t.phases]),
            "runs_per_s_rounds": [round(p.runs_per_s) for p in t.phases],
            "server_cpu_ms_per_call": median([p.server_cpu_ms_per_call for p in t.phases]),
            "app_cpu_ms_per_call": median([p.app_cpu_ms_per_call for p in t.phases]),
            "app_main_thread_cpu_ms_per_call": median([p.app_main_thread_cpu_ms_per_call for p in t.phases]),
        }
    by = {(t.system, t.mode): t for t in targets}
    restate = by.get(("restate", "persistent"))
    ratios = {}
    for (system, mode), t in by.items():
        if system != "connect":
            continue
        r: dict[str, float] = {}
        http = by.get(("http", mode))
        if http:
            r["runs_per_s_vs_http"] = _ratio(t, http, lambda p: p.runs_per_s)
            r["c1_vs_http"] = _ratio(t, http, lambda p: p.c1_ms)
        if restate:
            r["runs_per_s_vs_restate"] = _ratio(t, restate, lambda p: p.runs_per_s)
            r["c1_vs_restate"] = _ratio(t, restate, lambda p: p.c1_ms)
        ratios[mode] = r
    return {"rows": rows, "ratios": ratios}


def _ratio(a: Target, b: Target, value: Callable[[Phase], float]) -> float:
    """Median of the per-round ratios a/b (the two measured in the same round)."""
    return median([value(pa) / value(pb) for pa, pb in zip(a.phases, b.phases, strict=False) if value(pb)])


def report(result: dict[str, Any], args: argparse.Namespace, started: str) -> str:
    rows = []
    for r in result["rows"].values():
        engine = "" if r["c1_engine_ms"] != r["c1_engine_ms"] else f" ({r['c1_engine_ms']:.1f})"
        rows.append([r["system"], r["mode"], f"{r['c1_ms']:.1f}{engine}",
                     f"{r['runs_per_s']:.0f} ({', '.join(str(x) for x in r['runs_per_s_rounds'])})",
                     f"{r['server_cpu_ms_per_call']:.3f}",
                     f"{r['app_cpu_ms_per_call']:.3f} ({r['app_main_thread_cpu_ms_per_call']:.3f})",
                     f"{(r['server_cpu_ms_per_call'] + r['app_cpu_ms_per_call']) * W10_CALLS:.1f}"])
    out = [f"W10 (10 steps of ~100 bytes, {W10_CALLS} calls/run), medians of {args.rounds} rounds; "
           f"c=1 over {args.c1_runs} runs, then {args.runs} runs with {args.inflight} in flight"
           + ("" if args.worker_switch_interval is None
              else f"; connect worker switch interval {args.worker_switch_interval:g} s"),
           f"started {started}; ended: {machine()}", "",
           table(["system", "mode", "c=1 ms/run (engine's own)", f"runs/s @{args.inflight} (rounds)",
                  "server CPU ms/call", "app/worker CPU ms/call (its main thread)", "both, CPU ms/run"], rows)]
    if result["ratios"]:
        ratio_rows = []
        for mode, r in result["ratios"].items():
            ratio_rows.append([mode, _fmt(r.get("runs_per_s_vs_http")), _fmt(r.get("c1_vs_http")),
                               _fmt(r.get("runs_per_s_vs_restate")), _fmt(r.get("c1_vs_restate"))])
        out += ["", "Ratios (medians of per-round ratios; runs/s: > 1 = connect faster; c=1: < 1 = connect faster):",
                "", table(["connect mode", "runs/s connect/http", "c=1 connect/http", "runs/s connect/restate",
                           "c=1 connect/restate"], ratio_rows)]
    return "\n".join(out)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each measures every (system, mode) once")
    parser.add_argument("--runs", type=int, default=320, help="runs per throughput phase")
    parser.add_argument("--c1-runs", type=int, default=20, help="runs one at a time per phase (c=1 latency)")
    parser.add_argument("--inflight", type=int, default=32, help="runs in flight in the throughput phase")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured runs per system and mode first")
    parser.add_argument("--modes", default="dev,production", help="engine modes: dev, production or both")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="http, connect, restate (comma-separated)")
    parser.add_argument("--restate-cache", default=None,
                        help="where npm installs restate-server (default ~/.cache/agentcmd-bench/restate-VERSION)")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="record py-spy profiles of engine and app/worker in the throughput phases into DIR")
    parser.add_argument("--worker-switch-interval", type=float, default=None, metavar="SECONDS",
                        help="sys.setswitchinterval of the connect worker (default: CPython's, 0.005)")
    parser.add_argument("--json", action="store_true", help="print the raw numbers as JSON instead of tables")
    args = parser.parse_args(argv)
    args.modes = [m for m in args.modes.split(",") if m]
    args.systems = [s for s in args.systems.split(",") if s]
    bad = [m for m in args.modes if m not in MODES] + [s for s in args.systems if s not in SYSTEMS]
    if args.worker_switch_interval is not None and args.worker_switch_interval <= 0:
        parser.error("--worker-switch-interval takes seconds > 0, e.g. 0.0005")
    if bad or not args.systems or min(args.rounds, args.runs, args.c1_runs, args.inflight) < 1:
        parser.error(f"--modes takes {','.join(MODES)}, --systems {','.join(SYSTEMS)}, and counts must be >= 1"
                     + (f" (not {', '.join(bad)})" if bad else ""))
    return args


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-app":
        serve_http_app(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-worker":
        serve_connect_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]),
                             float(sys.argv[5]) if len(sys.argv) > 5 else None)
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-restate":
        import _restate_worker

        _restate_worker.serve(int(sys.argv[2]))
        return
    args = parse_args()
    stop_children_on_exit(sigint=True)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
        result = asyncio.run(run(args))
    except Exception as exc:
        name = type(exc).__name__
        if name == "RestateUnavailable":
            raise SystemExit(f"connect_bench: {exc}") from None
        raise
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(report(result, args, started))


if __name__ == "__main__":
    main()
