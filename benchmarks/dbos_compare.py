"""The same 10-step workflow on DBOS (SQLite system database) and on ``agentcmd engine start``, side by side.

    .venv/bin/pip install -e '.[bench]'    # dbos
    .venv/bin/python benchmarks/dbos_compare.py [--rounds 5] [--c1-runs 20] [--runs 160] [--inflight 32]

Workflow: 10 sequential steps, each returning ~100 bytes, then a return value.

* DBOS: ``@DBOS.workflow`` calling a ``@DBOS.step`` ten times, its system
  database a SQLite file in a temp dir (DBOS's defaults for SQLite otherwise),
  in a child process of its own. c=1: wall time of one workflow call.
  32 in flight: sync workflows on 32 threads, and async workflows with 32
  tasks (both reported; the better one is the one the ratio uses).
* agentcmd: ``python -m agentcmd engine start`` (SQLite WAL file, signed
  SDK calls) and an app serving the official ``inngest`` SDK (uvicorn) with the
  10-step function. c=1: wall time from ``POST /e`` to the engine's REST API
  answering ``Completed`` for the run. 32 in flight: a new event each time a
  run's body ends (the app says so over UDP), until ``--runs`` have completed.

Rounds alternate (a DBOS round in a fresh child process, then an agentcmd
round on the same engine), so both see the same background load on a shared
machine. Medians of ``--rounds`` rounds; ratios are medians of the per-round
ratios, agentcmd relative to DBOS (throughput: agentcmd/best DBOS variant;
latency: DBOS/agentcmd), so > 1 means agentcmd is faster either way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    App,
    Engine,
    cpu_seconds,
    get_json,
    machine,
    median,
    post_events,
    sdk_client,
    serve,
    stop_children_on_exit,
    table,
)

HERE = Path(__file__).resolve()
STEPS = 10
PAYLOAD = "x" * 90
EVENT = "bench/ten"


# --------------------------------------------------------------------------- DBOS side (child process)

def dbos_child(rounds: int, c1_runs: int, runs: int, inflight: int) -> dict[str, Any]:
    import logging
    from concurrent.futures import ThreadPoolExecutor

    from dbos import DBOS

    logging.getLogger("dbos").setLevel(logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="agentcmd-dbos-"))
    DBOS(config={"name": "bench", "system_database_url": f"sqlite:///{tmp}/dbos.sqlite", "log_level": "WARNING"})

    @DBOS.step()
    def step(i: int) -> dict[str, object]:
        return {"i": i, "p": PAYLOAD}

    @DBOS.workflow()
    def ten_steps() -> dict[str, int]:
        for i in range(STEPS):
            step(i)
        return {"steps": STEPS}

    @DBOS.step()
    async def astep(i: int) -> dict[str, object]:
        return {"i": i, "p": PAYLOAD}

    @DBOS.workflow()
    async def aten_steps() -> dict[str, int]:
        for i in range(STEPS):
            await astep(i)
        return {"steps": STEPS}

    DBOS.launch()
    try:
        for _ in range(10):
            ten_steps()
        c1, threads, tasks = [], [], []
        for _ in range(rounds):
            times = []
            for _ in range(c1_runs):
                t = time.perf_counter()
                ten_steps()
                times.append((time.perf_counter() - t) * 1000)
            c1.append(median(times))
        with ThreadPoolExecutor(max_workers=inflight) as pool:
            for _ in range(rounds):
                t = time.perf_counter()
                futures = [pool.submit(ten_steps) for _ in range(runs)]
                for f in futures:
                    assert f.result() == {"steps": STEPS}
                threads.append(runs / (time.perf_counter() - t))

        async def async_round() -> float:
            sem = asyncio.Semaphore(inflight)

            async def one() -> None:
                async with sem:
                    assert await aten_steps() == {"steps": STEPS}

            t = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(runs)))
            return runs / (time.perf_counter() - t)

        async def async_rounds() -> list[float]:
            for _ in range(3):
                await aten_steps()
            return [await async_round() for _ in range(rounds)]

        tasks = asyncio.run(async_rounds())
    finally:
        DBOS.destroy()
        shutil.rmtree(tmp, ignore_errors=True)
    import dbos

    return {"version": getattr(dbos, "__version__", None) or _dist_version("dbos"), "c1_ms": c1,
            "threads_runs_per_s": threads, "async_runs_per_s": tasks}


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def run_dbos(args: argparse.Namespace, rounds: int) -> dict[str, Any]:
    """``rounds`` DBOS rounds in a fresh child process (DBOS is a per-process singleton)."""
    try:
        import dbos  # noqa: F401
    except ImportError:
        return {"error": "dbos is not installed: .venv/bin/pip install -e '.[bench]'"}
    proc = subprocess.run([sys.executable, str(HERE), "--dbos-child", str(rounds), str(args.c1_runs),
                           str(args.runs), str(args.inflight)], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        return {"error": f"DBOS child failed ({proc.returncode}): {proc.stderr[-2000:]}"}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


# --------------------------------------------------------------------------- agentcmd side

def serve_app(port: int, engine_url: str, mode: str, notify_port: int) -> None:
    import inngest

    client = sdk_client(engine_url, mode, "bench-dbos")
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    @client.create_function(fn_id="ten-steps", trigger=inngest.TriggerEvent(event=EVENT), retries=0)  # type: ignore[untyped-decorator]
    async def ten_steps(ctx: inngest.Context) -> dict[str, int]:
        for i in range(STEPS):
            async def step(i: int = i) -> dict[str, object]:
                return {"i": i, "p": PAYLOAD}

            await ctx.step.run(f"step-{i}", step)
        udp.sendto(ctx.run_id.encode(), ("127.0.0.1", notify_port))
        return {"steps": STEPS}

    serve(port, client, [ten_steps])


class _Notes(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.queue.put_nowait(data.decode())


async def _wait_completed(session: aiohttp.ClientSession, engine: Engine, event_id: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = (await get_json(session, engine, f"/v1/events/{event_id}/runs"))["data"]
        if runs and runs[0]["status"] == "Completed":
            return
        if runs and runs[0]["status"] in ("Failed", "Cancelled"):
            raise RuntimeError(f"run failed: {runs[0]}")
        await asyncio.sleep(0.0005)
    raise RuntimeError(f"run of event {event_id} not completed after {timeout} s")


async def _no_running(session: aiohttp.ClientSession, engine: Engine, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for status in ("Running", "Queued"):
            if (await get_json(session, engine, f"/v1/runs?status={status}&limit=1"))["data"]:
                break
        else:
            return
        await asyncio.sleep(0.001)
    raise RuntimeError(f"runs still running after {timeout} s")


async def _next(notes: _Notes, timeout: float = 30) -> str:
    return await asyncio.wait_for(notes.queue.get(), timeout)


class Agentcmd:
    """The engine and the SDK app, kept up across rounds; ``round()`` measures c=1 and 32 in flight once."""

    def __init__(self, mode: str, args: argparse.Namespace) -> None:
        self.mode, self.args = mode, args
        self.c1: list[float] = []
        self.rates: list[float] = []
        self.cpu_engine = self.cpu_app = 0.0

    async def __aenter__(self) -> Agentcmd:
        loop = asyncio.get_running_loop()
        self.notes = _Notes()
        self.transport, _ = await loop.create_datagram_endpoint(lambda: self.notes, local_addr=("127.0.0.1", 0))
        self.engine = Engine(self.mode)
        self.app = App(HERE, self.engine, [str(self.transport.get_extra_info("sockname")[1])])
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        await self.app.sync(self.session)
        for _ in range(10):
            await self._one()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()
        self.transport.close()
        self.app.stop()
        self.engine.stop()

    async def _one(self) -> None:
        [eid] = await post_events(self.session, self.engine, [{"name": EVENT, "data": {}}])
        await _next(self.notes)
        await _wait_completed(self.session, self.engine, eid)

    async def round(self) -> None:
        args, engine = self.args, self.engine
        times = []
        for _ in range(args.c1_runs):
            t = time.perf_counter()
            await self._one()
            times.append((time.perf_counter() - t) * 1000)
        self.c1.append(median(times))
        cpu0 = engine.cpu_s(), cpu_seconds(self.app.proc.pid)
        ev = {"name": EVENT, "data": {}}
        t = time.perf_counter()
        sent = len(await post_events(self.session, engine, [ev] * min(args.inflight, args.runs)))
        done = 0
        while done < args.runs:
            await _next(self.notes)
            done += 1
            if sent < args.runs:
                sent += len(await post_events(self.session, engine, [ev]))
        await _no_running(self.session, engine)
        self.rates.append(args.runs / (time.perf_counter() - t))
        self.cpu_engine += engine.cpu_s() - cpu0[0]
        self.cpu_app += cpu_seconds(self.app.proc.pid) - cpu0[1]

    def result(self) -> dict[str, Any]:
        total = self.args.runs * len(self.rates)
        return {"mode": self.mode, "c1_ms": self.c1, "runs_per_s": self.rates,
                "peak_rss_mb": self.engine.peak_rss_mb(),
                "engine_cpu_ms_per_run": self.cpu_engine / total * 1000,
                "app_cpu_ms_per_run": self.cpu_app / total * 1000}


async def run_rounds(args: argparse.Namespace, modes: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Alternate DBOS and agentcmd round by round, so both see the same background load."""
    dbos_res: dict[str, Any] = {"c1_ms": [], "threads_runs_per_s": [], "async_runs_per_s": []}
    async with contextlib.AsyncExitStack() as stack:
        sides = [await stack.enter_async_context(Agentcmd(m, args)) for m in modes]
        for _ in range(args.rounds):
            one = await asyncio.to_thread(run_dbos, args, 1)
            if "error" in one:
                dbos_res = one
            elif "error" not in dbos_res:
                dbos_res["version"] = one["version"]
                for k in ("c1_ms", "threads_runs_per_s", "async_runs_per_s"):
                    dbos_res[k] += one[k]
            for side in sides:
                await side.round()
        return dbos_res, [side.result() for side in sides]


def _ratios(num: list[float], den: list[float]) -> float:
    return median([a / b for a, b in zip(num, den, strict=False) if b])


# --------------------------------------------------------------------------- main

def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-app":
        serve_app(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--dbos-child":
        print(json.dumps(dbos_child(*(int(a) for a in sys.argv[2:6]))))
        return
    stop_children_on_exit()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--c1-runs", type=int, default=20, help="workflows per c=1 round")
    parser.add_argument("--runs", type=int, default=160, help="workflows per throughput round")
    parser.add_argument("--inflight", type=int, default=32)
    parser.add_argument("--modes", default="production", help="agentcmd modes (production = engine start)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    started = time.time()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    dbos_res, ours = asyncio.run(run_rounds(args, modes))
    print(f"\n10 sequential steps (~100 B each) per workflow; medians of {args.rounds} rounds, DBOS and agentcmd "
          f"alternating (c=1: {args.c1_runs} workflows a round; throughput: {args.runs} workflows, "
          f"{args.inflight} in flight); ratios are medians of the per-round ratios")
    rows: list[list[object]] = []
    notes: list[str] = []
    if "error" in dbos_res:
        print(f"DBOS not measured: {dbos_res['error']}")
        dbos_c1: list[float] = []
        dbos_best: list[float] = []
    else:
        dbos_c1 = dbos_res["c1_ms"]
        dbos_best = [max(a, b) for a, b in zip(dbos_res["threads_runs_per_s"], dbos_res["async_runs_per_s"],
                                               strict=True)]
        thr, asy = median(dbos_res["threads_runs_per_s"]), median(dbos_res["async_runs_per_s"])
        rows.append([f"DBOS {dbos_res['version']} (SQLite), threads", f"{median(dbos_c1):.1f}", f"{thr:.0f}", "", ""])
        rows.append([f"DBOS {dbos_res['version']} (SQLite), async", "", f"{asy:.0f}", "", ""])
    for r in ours:
        c1, rate = median(r["c1_ms"]), median(r["runs_per_s"])
        name = "agentcmd engine start" if r["mode"] == "production" else "agentcmd engine dev"
        rows.append([name, f"{c1:.1f}", f"{rate:.0f}", f"{_ratios(dbos_c1, r['c1_ms']):.1f}x",
                     f"{_ratios(r['runs_per_s'], dbos_best):.1f}x"])
        notes.append(f"{name} @{args.inflight}: engine CPU {r['engine_cpu_ms_per_run']:.1f} ms/run, SDK app CPU "
                     f"{r['app_cpu_ms_per_run']:.1f} ms/run (11 SDK calls a run)")
    print(table(["system", "c=1 ms/workflow", f"workflows/s @{args.inflight}", "c=1 ratio (DBOS/agentcmd)",
                 "throughput ratio (agentcmd/best DBOS)"], rows))
    for note in notes:
        print(note)
    print(f"\n(total {time.time() - started:.0f} s; {machine()})")
    if args.json:
        print(json.dumps({"dbos": dbos_res, "agentcmd": ours}, indent=2))


if __name__ == "__main__":
    main()
