"""What live streaming costs: app-server CPU and line-to-browser delay at 200 events/s, and open streams vs steps.

    .venv/bin/python benchmarks/stream_bench.py [--events 2000] [--rate 200] [--steps 40] [--rounds 3] [--via auto]

A temporary project holds two workflows, served by a real ``python -m
agentcmd.server`` synced by a real ``agentcmd engine dev`` (loopback,
ephemeral ports, a temporary ``AGENTCMD_HOME``):

* ``stream``: one step running the fake ``claude`` (``tests/fakes/bin``, first
  on the app server's PATH) with a scenario of ``--events`` text events, one
  every 1/``--rate`` s. Each event's text carries the epoch time the fake
  wrote the line (``@SEND_TS@`` in the scenario, filled in by
  ``tests/fakes/fakeagent.py``). ``--via agent``: the step is
  ``step.agent(agent="claude")`` (the agent's parsed stream); ``--via cli``:
  ``step.cli`` running ``claude -p --output-format stream-json`` (each line an
  ``output`` event: same store, same live feed, no parsing); ``auto`` picks
  ``agent`` when ``step.agent`` streams in this tree, else ``cli``. The fake
  first waits for a hold file, so the events flow only once the readers are
  connected. Measured, with 0, 1 and 20 readers of the app's
  ``GET /api/runs/{id}/live``: the app server's CPU (``/proc/<pid>/stat``,
  user + system, its own, not the fake's) over the streaming window, as a
  share of one core; for the first reader, the delay from a line leaving the
  agent to the reader having parsed its ``agent`` event (median, p99, max);
  the other 19 read in a process of their own (their delays are shown too).
* ``steps``: a gate step (held until the readers are connected), then
  ``--steps`` short ``step.cli`` steps (``echo``: one output line each, kept
  in the run's stream and sent to its readers). The steps' time (measured by
  the workflow itself, from after the gate to its return) with no stream
  open, with 20 readers of the app's live feed of that run, and with 20
  readers of the engine dashboard's live run page (``GET /runs/{id}/live``),
  rounds interleaved; the ratio of medians to the no-stream case says
  whether open streams slow step execution.

Prints Markdown tables (docs/benchmarks.md quotes them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    _children,
    cpu_seconds,
    free_port,
    machine,
    median,
    percentile,
    stop_children_on_exit,
    table,
)

ROOT = Path(__file__).resolve().parent.parent
FAKES = ROOT / "tests" / "fakes" / "bin"
SEND_TS = "@SEND_TS@"
PACE = 0.85
"""The fake sleeps a fixed delay between events; writing one costs time too, so it sleeps a bit less than 1/rate.
The rate reached is measured from the events' own send times and printed."""
STAMP = re.compile(r"sent=(\d+\.\d+)")

WORKFLOWS = '''
import shlex
import time

from agentcmd import define_workflow


@define_workflow(id="stream", name="Stream bench", retries=0)
async def stream(ctx, step):
    if ctx.input["via"] == "agent":
        result = await step.agent("talk", prompt="stream for the benchmark", agent="claude")
        return {"events": getattr(result, "events", None)}
    await step.cli("talk", ["claude", "-p", "--output-format", "stream-json", "--verbose", "--",
                            "stream for the benchmark"])
    return {"events": None}


@define_workflow(id="steps", name="Short steps", retries=0)
async def steps(ctx, step):
    # Held until the benchmark's readers are connected: only the steps after the gate are timed.
    await step.cli("gate", "while [ ! -f " + shlex.quote(ctx.input["gate"]) + " ]; do sleep 0.01; done")
    started = await step.run("t0", time.time)
    for i in range(int(ctx.input["n"])):
        await step.cli(f"s{i}", f"echo step {i}")
    return {"elapsed": time.time() - started}
'''


class Stack:
    """``python -m agentcmd.server`` (the project in ``root``) synced by ``agentcmd engine dev``."""

    def __init__(self, root: Path, scenario: Path, rate: float) -> None:
        from agentcmd.inngest_env import inngest_env
        from agentcmd.mode import Mode

        self.root = root
        project = root / "project"
        (project / ".agentcmd" / "workflows").mkdir(parents=True)
        (project / ".agentcmd" / "workflows" / "bench.py").write_text(textwrap.dedent(WORKFLOWS))
        engine_port, app_port = free_port(), free_port()
        self.engine, self.app = f"http://127.0.0.1:{engine_port}", f"http://127.0.0.1:{app_port}"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("INNGEST_", "AGENTCMD_", "FAKE_AGENT_"))}
        base["AGENTCMD_HOME"] = str(root / "home")
        app_env = {**inngest_env(Mode.DEV, self.engine, base=base), "PATH": f"{FAKES}{os.pathsep}{base['PATH']}",
                   "FAKE_AGENT_SCENARIO": str(scenario), "FAKE_AGENT_DELAY": f"{PACE / rate:.6f}"}
        self.logs = [root / "app.log", root / "engine.log"]
        self.app_proc = self._start([sys.executable, "-m", "agentcmd.server", "--port", str(app_port),
                                     "--project", str(project), "--log-level", "warning"], app_env, self.logs[0])
        self.engine_proc = self._start([sys.executable, "-m", "agentcmd", "engine", "dev", "--port", str(engine_port),
                                        "--no-discovery", "--poll-interval", "0.5",
                                        "-u", f"{self.app}/api/workflows/inngest"], base, self.logs[1])

    @staticmethod
    def _start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with open(log, "wb") as fh:
            proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        _children.append(proc)
        return proc

    def tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2500:]}" for p in self.logs if p.exists())

    async def ready(self, session: aiohttp.ClientSession, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in (self.app_proc, self.engine_proc):
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}:\n{self.tail()}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(f"{self.engine}/v1/functions") as r:
                    if r.status == 200 and len((await r.json()).get("data") or []) >= 2:
                        return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"the engine did not sync the app within {timeout} s:\n{self.tail()}")

    async def start_run(self, session: aiohttp.ClientSession, workflow: str, data: dict[str, Any]) -> str:
        async with session.post(f"{self.app}/api/workflows/{workflow}/runs", json={"input": data}) as r:
            body = await r.json()
            if r.status != 202:
                raise RuntimeError(f"starting {workflow}: {r.status} {body}")
            return str(body["data"]["run_id"])

    async def engine_run(self, session: aiohttp.ClientSession, run_id: str) -> dict[str, Any]:
        async with session.get(f"{self.engine}/v1/runs/{run_id}") as r:
            return dict((await r.json())["data"]) if r.status == 200 else {}

    async def wait_final(self, session: aiohttp.ClientSession, run_id: str, timeout: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = await self.engine_run(session, run_id)
            if run.get("status") in ("Completed", "Failed", "Cancelled"):
                if run["status"] != "Completed":
                    raise RuntimeError(f"run {run_id} ended {run['status']}: {run}\n{self.tail()}")
                return run
            await asyncio.sleep(0.2)
        raise RuntimeError(f"run {run_id} not finished after {timeout} s:\n{self.tail()}")

    def stop(self) -> None:
        for proc in (self.engine_proc, self.app_proc):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)


class Reader:
    """One SSE client: counts events; with ``timing``, the delay of each stamped ``agent`` event."""

    def __init__(self, session: aiohttp.ClientSession, url: str, timing: bool = False) -> None:
        self.url = url
        self.timing = timing
        self.delays: list[float] = []
        self.sent: list[float] = []
        self.agent_events = 0
        self.connected = asyncio.Event()
        self.ended = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._run(session))

    async def _run(self, session: aiohttp.ClientSession) -> None:
        try:
            async with session.get(self.url, timeout=aiohttp.ClientTimeout(total=None, sock_read=None)) as r:
                if r.status != 200:
                    raise RuntimeError(f"{self.url}: HTTP {r.status} {await r.text()}")
                self.connected.set()
                event = ""
                async for raw in r.content:
                    line = raw.decode().rstrip("\r\n")
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        if event == "agent":
                            self.agent_events += 1
                            if self.timing:
                                self._stamp(line[5:])
                        elif event == "end":
                            return
                    elif line == "":
                        event = ""
        finally:
            self.connected.set()
            self.ended.set()

    def _stamp(self, data: str) -> None:
        got = time.time()
        text = json.loads(data).get("text") or ""
        match = STAMP.search(text)
        if match:
            sent = float(match.group(1))
            self.sent.append(sent)
            self.delays.append(got - sent)

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task


def write_scenario(path: Path, events: int, hold: Path) -> None:
    steps: list[dict[str, Any]] = [{"hold": str(hold)}]
    steps += [{"text": f"event {i} sent={SEND_TS}"} for i in range(events)]
    path.write_text(json.dumps({"session_id": "bench-session", "steps": steps, "result": "done",
                                "usage": {"input_tokens": 100, "output_tokens": 100, "cached_tokens": 0,
                                          "cost_usd": 0.001}, "turns": 1}))


def agent_streams() -> bool:
    """Does ``step.agent`` stream in this tree (part of the live-runs work)? Then measure through it."""
    source = (ROOT / "src" / "agentcmd" / "workflows" / "agents.py").read_text()
    return "stream-json" in source


class Crowd:
    """``n`` more readers of ``url`` in a process of their own (this script with ``--readers``).

    Reading 20 streams costs CPU: done in the measuring process it would add
    to the timed reader's delay what is really the benchmark's own load.
    """

    def __init__(self, url: str, n: int) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--readers", url, str(n)], stdout=subprocess.PIPE,
                                     start_new_session=True)
        _children.append(self.proc)

    async def connected(self, timeout: float = 30) -> None:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), timeout)
        if not line.startswith(b"connected"):
            raise RuntimeError(f"the readers did not connect: {line!r}")

    async def received(self, timeout: float = 60) -> tuple[list[int], list[float]]:
        """Wait for every reader's stream to end: the ``agent`` events each got, and all their delays."""
        out, _ = await asyncio.to_thread(self.proc.communicate, timeout=timeout)
        lines = [*out.decode().splitlines(), "", ""]
        return [int(x) for x in lines[0].split()], [float(x) for x in lines[1].split()]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


async def serve_readers(url: str, n: int) -> None:
    """``--readers URL N``: N readers of URL; print "connected" once all are, then each one's count at the end."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        readers = [Reader(session, url, timing=True) for _ in range(n)]
        for reader in readers:
            await reader.connected.wait()
        print("connected", flush=True)
        for reader in readers:
            await reader.ended.wait()
        print(" ".join(str(r.agent_events) for r in readers), flush=True)
        print(" ".join(f"{d:.6f}" for r in readers for d in r.delays), flush=True)


async def stream_round(stack: Stack, session: aiohttp.ClientSession, hold: Path, via: str,
                       readers_n: int) -> dict[str, Any]:
    hold.unlink(missing_ok=True)
    run_id = await stack.start_run(session, "stream", {"via": via})
    url = f"{stack.app}/api/runs/{run_id}/live"
    timed = Reader(session, url, timing=True) if readers_n else None
    crowd = Crowd(url, readers_n - 1) if readers_n > 1 else None
    try:
        if timed is not None:
            await asyncio.wait_for(timed.connected.wait(), 30)
        if crowd is not None:
            await crowd.connected()
        # The fake waits for the hold file (its first step): the events flow once every reader listens.
        pid = stack.app_proc.pid
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        hold.touch()
        await stack.wait_final(session, run_id)
        cpu1, t1 = cpu_seconds(pid), time.monotonic()
        received, others = await crowd.received() if crowd is not None else ([], [])
        if timed is not None:
            await asyncio.wait_for(timed.ended.wait(), 30)
            received.append(timed.agent_events)
    finally:
        if timed is not None:
            await timed.close()
        if crowd is not None:
            crowd.stop()
    return {"readers": readers_n, "cpu": (cpu1 - cpu0) / (t1 - t0), "wall": t1 - t0,
            "delays": timed.delays if timed else [], "sent": timed.sent if timed else [], "received": received,
            "others": others}


async def steps_round(stack: Stack, session: aiohttp.ClientSession, n: int, streams: str) -> float:
    """One run of ``n`` short steps with 20 readers (``app``, ``engine``) or none open: the steps' seconds."""
    gate = stack.root / f"gate-{time.monotonic_ns()}"
    run_id = await stack.start_run(session, "steps", {"n": n, "gate": str(gate)})
    url = {"none": None, "app": f"{stack.app}/api/runs/{run_id}/live",
           "engine": f"{stack.engine}/runs/{run_id}/live"}[streams]
    crowd = Crowd(url, 20) if url else None
    try:
        if crowd is not None:
            await crowd.connected()
        gate.touch()
        run = await stack.wait_final(session, run_id)
        if crowd is not None:
            await crowd.received()
    finally:
        if crowd is not None:
            crowd.stop()
    output = run["output"]
    return float(output["elapsed"] if isinstance(output, dict) else json.loads(output)["elapsed"])


async def main_async(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="agentcmd-stream-bench-"))
    hold = root / "hold"
    scenario = root / "scenario.json"
    write_scenario(scenario, args.events, hold)
    via = args.via if args.via != "auto" else ("agent" if agent_streams() else "cli")
    stack = Stack(root, scenario, args.rate)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            await stack.ready(session)
            # Warm up: imports, the first process spawns, the SDK's first calls.
            await stream_round(stack, session, hold, via, 1)
            await steps_round(stack, session, 3, "none")
            streaming = []
            for readers_n in (0, 1, 20):
                for _ in range(args.stream_rounds):
                    streaming.append(await stream_round(stack, session, hold, via, readers_n))
            steps: dict[str, list[float]] = {"none": [], "app": [], "engine": []}
            for _ in range(args.rounds):
                for kind in steps:
                    steps[kind].append(await steps_round(stack, session, args.steps, kind))
    finally:
        stack.stop()
    report(args, via, streaming, steps)


def report(args: argparse.Namespace, via: str, streaming: list[dict[str, Any]], steps: dict[str, list[float]]
           ) -> None:
    print(f"stream_bench: {machine()}, via step.{via}, {args.events} events at "
          f"{args.rate:g}/s asked\n")
    rows = []
    for readers_n in (0, 1, 20):
        got = [s for s in streaming if s["readers"] == readers_n]
        delays = [d * 1000 for s in got for d in s["delays"]]
        sent = [s["sent"] for s in got if len(s["sent"]) > 1]
        rate = median([(len(x) - 1) / (x[-1] - x[0]) for x in sent]) if sent else float("nan")
        received = [min(s["received"]) for s in got if s["received"]]
        others = [d * 1000 for s in got for d in s["others"]]
        rows.append([readers_n, f"{median([s['cpu'] for s in got]) * 100:.0f} %",
                     f"{median([s['wall'] for s in got]):.1f} s",
                     f"{rate:.0f}/s" if sent else "–",
                     f"{min(received)}/{args.events}" if received else "–",
                     f"{percentile(delays, 50):.1f} ms" if delays else "–",
                     f"{percentile(delays, 99):.1f} ms" if delays else "–",
                     f"{max(delays):.1f} ms" if delays else "–",
                     f"{percentile(others, 50):.1f} / {percentile(others, 99):.1f} ms" if others else "–"])
    print(table(["SSE readers", "app CPU (one core)", "stream window", "agent rate (measured)",
                 "events per reader (min)", "delay median", "delay p99", "delay max",
                 "other readers' delay median / p99"], rows))
    print()
    base = median(steps["none"])
    rows = [[label, f"{median(steps[k]):.2f} s", " / ".join(f"{v:.2f}" for v in steps[k]),
             f"{median(steps[k]) / base:.2f}"]
            for k, label in (("none", "no stream open"), ("app", "20 readers of the app's /api/runs/{id}/live"),
                             ("engine", "20 readers of the engine's /runs/{id}/live"))]
    print(table([f"{args.steps} step.cli steps", "steps' time (median)", "rounds (s)", "ratio"], rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="agent events per streaming run (default 2000)")
    parser.add_argument("--rate", type=float, default=200.0, help="events per second the fake agent emits")
    parser.add_argument("--steps", type=int, default=40, help="short steps in the steps workflow (default 40)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each steps case, interleaved (default 3)")
    parser.add_argument("--stream-rounds", type=int, default=1, help="streaming runs per reader count (default 1)")
    parser.add_argument("--via", choices=("auto", "agent", "cli"), default="auto",
                        help="how the fake claude runs: step.agent or step.cli (auto: agent if it streams here)")
    parser.add_argument("--readers", nargs=2, metavar=("URL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.readers:
        asyncio.run(serve_readers(args.readers[0], int(args.readers[1])))
        return
    stop_children_on_exit()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
