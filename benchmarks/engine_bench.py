"""Benchmark the embedded engine with the official SDK: 10 sequential step.run steps per run.

    .venv/bin/python benchmarks/engine_bench.py [--rounds 5] [--runs 320] [--modes dev,production]

For each mode (dev = in memory, production = SQLite WAL file, signed calls)
it starts ``python -m agentcmd engine dev|start`` and the SDK app
(``engine_bench_app.py``, FastAPI + uvicorn) as subprocesses and reports
medians over ``--rounds``:

* ready: process start -> first ``GET /health`` 200 (no apps to sync);
* c=1: one run at a time, event received -> run ended (engine timestamps)
  and the client's wall time from ``POST /e`` to seeing ``Completed``;
* runs/s with 32 runs in flight (a new event each time a run's body ends);
* engine CPU per SDK call (user+sys of the engine process / calls) in that phase,
  and the same for the SDK app's process (the protocol's floor).

``ENGINE_BENCH_PYSPY=DIR`` records py-spy profiles (raw, 200 Hz) of the engine
and of the SDK app during the 32-in-flight phase into DIR/<mode>-engine.txt and
DIR/<mode>-sdk.txt (py-spy installed in the venv by hand: not a dependency);
``ENGINE_BENCH_PROFILE=PREFIX`` runs the engine under cProfile. mode_bench.py
runs this once per mode per round, interleaved, and prints the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import RunNotifications as Notifications  # noqa: E402  (the app's "run body ended" datagrams)

SIGNING_KEY = "signkey-prod-36a1f3b2dec415623923fcb56949e180259e4cfc2b583737062f1506a3ad3652"
EVENT_KEY = "f409725ceb54cf9c9f10e5a2b42c8feb9fc41e77509369e27bbc786651654796"
CALLS_PER_RUN = 11


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ms(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000


class Engine:
    def __init__(self, mode: str, db_dir: Path, src: str | None = None) -> None:
        self.mode = mode
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        prof = os.environ.get("ENGINE_BENCH_PROFILE")
        cmd = [sys.executable, *(["-m", "cProfile", "-o", f"{prof}.{mode}"] if prof else []), "-m", "agentcmd",
               "engine", "dev" if mode == "dev" else "start", "--port",
               str(self.port)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("INNGEST_")}
        env["AGENTCMD_HOME"] = str(db_dir / "home")
        if src:     # another source tree's engine (mode_bench.py --baseline-src), ahead of the installed one
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
        if mode == "dev":
            cmd.append("--no-discovery")
        else:
            cmd += ["--sqlite-dir", str(db_dir)]
            env.update(INNGEST_SIGNING_KEY=SIGNING_KEY, INNGEST_EVENT_KEY=EVENT_KEY)
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.headers = {"Authorization": f"Bearer {SIGNING_KEY}"} if mode == "production" else {}
        self.key = EVENT_KEY if mode == "production" else "NO_EVENT_KEY_SET"

    def wait_ready(self) -> float:
        import urllib.request

        deadline = time.perf_counter() + 20
        while time.perf_counter() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - self.t0
            except OSError:
                time.sleep(0.005)
        raise RuntimeError(f"engine not ready: {self.proc.stderr.read() if self.proc.stderr else ''}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


async def send(session: aiohttp.ClientSession, engine: Engine, n: int = 1) -> list[str]:
    async with session.post(f"{engine.url}/e/{engine.key}",
                            json=[{"name": "bench/run", "data": {"n": i}} for i in range(n)]) as r:
        return list((await r.json())["ids"])


async def get(session: aiohttp.ClientSession, engine: Engine, path: str) -> dict[str, object]:
    async with session.get(engine.url + path, headers=engine.headers) as r:
        return dict(await r.json())


async def wait_completed(session: aiohttp.ClientSession, engine: Engine, event_id: str) -> dict[str, object]:
    while True:
        runs = (await get(session, engine, f"/v1/events/{event_id}/runs"))["data"]
        if runs and runs[0]["status"] == "Completed":  # type: ignore[index]
            return runs[0]  # type: ignore[no-any-return,index]
        if runs and runs[0]["status"] == "Failed":  # type: ignore[index]
            raise RuntimeError(f"run failed: {runs[0]}")  # type: ignore[index]
        await asyncio.sleep(0.0005)


async def bench_mode(mode: str, rounds: int, runs: int, inflight: int, src: str | None = None,
                     ready_rounds: int | None = None) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix=f"agentcmd-bench-{mode}-"))
    spy_dir = os.environ.get("ENGINE_BENCH_PYSPY")
    spy = str(Path(sys.executable).parent / "py-spy")
    ready = []
    for r in range(rounds if ready_rounds is None else ready_rounds):
        e = Engine(mode, tmp / f"ready-{r}", src)
        ready.append(e.wait_ready())
        e.stop()
    engine = Engine(mode, tmp / "main", src)
    engine.wait_ready()
    loop = asyncio.get_running_loop()
    notes = Notifications()
    transport, _ = await loop.create_datagram_endpoint(lambda: notes, local_addr=("127.0.0.1", 0))
    notify_port = transport.get_extra_info("sockname")[1]
    app_port = free_port()
    app = subprocess.Popen([sys.executable, str(HERE / "engine_bench_app.py"), str(app_port), engine.url, mode,
                            str(notify_port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    app_url = f"http://127.0.0.1:{app_port}/api/inngest"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.put(app_url, json={"url": app_url}, headers={
                            "X-Inngest-Server-Kind": "cloud" if mode == "production" else "dev"}) as r:
                        body = await r.json()
                        if r.status == 200 and "error" not in body:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError("app did not sync")
            # warm-up
            for _ in range(10):
                [eid] = await send(session, engine)
                await notes.queue.get()
                await wait_completed(session, engine, eid)
            c1_engine, c1_wall = [], []
            for _ in range(rounds):
                eng, wall = [], []
                for _ in range(20):
                    t = time.perf_counter()
                    [eid] = await send(session, engine)
                    await notes.queue.get()
                    run = await wait_completed(session, engine, eid)
                    wall.append((time.perf_counter() - t) * 1000)
                    event = (await get(session, engine, f"/v1/events/{eid}"))["data"]
                    eng.append(ms(str(run["ended_at"])) - ms(str(event["received_at"])))  # type: ignore[index]
                c1_engine.append(statistics.median(eng))
                c1_wall.append(statistics.median(wall))
            rates, cpu_per_call, sdk_cpu_per_call = [], [], []
            spies = [subprocess.Popen([spy, "record", "-r", "200", "-f", "raw", "-o", f"{spy_dir}/{mode}-{name}.txt",
                                       "-p", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for name, pid in (("engine", engine.proc.pid), ("sdk", app.pid))] if spy_dir else []
            for _ in range(rounds):
                cpu0 = cpu_seconds(engine.proc.pid)
                sdk0 = cpu_seconds(app.pid)
                t = time.perf_counter()
                last_ids: list[str] = []
                sent = done = 0
                first = await send(session, engine, inflight)
                sent += len(first)
                while done < runs:
                    await notes.queue.get()
                    done += 1
                    if sent < runs:
                        last_ids = await send(session, engine)
                        sent += 1
                await wait_completed(session, engine, last_ids[0] if last_ids else first[-1])
                while True:   # every run ended (the notify comes just before the engine's commit)
                    counts = (await get(session, engine, "/v1/runs?status=Running&limit=1"))["data"]
                    if not counts:
                        break
                    await asyncio.sleep(0.001)
                elapsed = time.perf_counter() - t
                rates.append(runs / elapsed)
                cpu_per_call.append((cpu_seconds(engine.proc.pid) - cpu0) / (runs * CALLS_PER_RUN) * 1000)
                sdk_cpu_per_call.append((cpu_seconds(app.pid) - sdk0) / (runs * CALLS_PER_RUN) * 1000)
            for s in spies:
                s.send_signal(2)
                s.wait(30)
    finally:
        transport.close()
        app.terminate()
        app.wait(10)
        engine.stop()
    return {"ready_ms": statistics.median(ready) * 1000 if ready else float("nan"),
            "c1_engine_ms": statistics.median(c1_engine), "c1_wall_ms": statistics.median(c1_wall),
            "runs_per_s": statistics.median(rates),
            "engine_cpu_ms_per_call": statistics.median(cpu_per_call),
            "sdk_cpu_ms_per_call": statistics.median(sdk_cpu_per_call)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=320, help="runs per throughput round")
    parser.add_argument("--inflight", type=int, default=32)
    parser.add_argument("--modes", default="dev,production")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {m: asyncio.run(bench_mode(m, args.rounds, args.runs, args.inflight)) for m in args.modes.split(",")}
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"10-step runs, official SDK {CALLS_PER_RUN} calls/run; medians of {args.rounds} rounds")
    print("| mode | ready (ms) | c=1 engine (ms/run) | c=1 wall (ms/run) | runs/s @32 | engine CPU ms/call "
          "| SDK app CPU ms/call |")
    print("|---|---|---|---|---|---|---|")
    for mode, r in results.items():
        print(f"| {mode} | {r['ready_ms']:.0f} | {r['c1_engine_ms']:.1f} | {r['c1_wall_ms']:.1f} | "
              f"{r['runs_per_s']:.0f} | {r['engine_cpu_ms_per_call']:.2f} | {r['sdk_cpu_ms_per_call']:.2f} |")


if __name__ == "__main__":
    main()
