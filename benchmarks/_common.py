"""Shared pieces of the load benchmarks: engine and SDK-app subprocesses, /proc readings, tables.

Everything runs on loopback with ephemeral ports. The engine is a real
``python -m agentcmd engine dev|start`` subprocess; the SDK app is a real
uvicorn process serving the official ``inngest`` SDK (each benchmark script
re-runs itself with ``--serve-app`` to be that process, so the app's CPU is
not charged to the client that measures).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

SIGNING_KEY = "signkey-prod-36a1f3b2dec415623923fcb56949e180259e4cfc2b583737062f1506a3ad3652"
EVENT_KEY = "f409725ceb54cf9c9f10e5a2b42c8feb9fc41e77509369e27bbc786651654796"
MODES = ("dev", "production")


_children: list[subprocess.Popen[bytes]] = []
_spawning = 0                 # > 0 while a child is between its fork and its place in _children
_deferred: list[int] = []     # a signal that came meanwhile: acted on once the child is recorded


def _exit_on_signal(signum: int, frame: object) -> None:
    if _spawning:
        _deferred.append(signum)
        return
    sys.exit(128 + signum)


def spawn(cmd: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen``, the child recorded for ``stop_children_on_exit`` before a signal can end us.

    A SIGINT/SIGTERM landing inside ``Popen`` (after the fork, while it waits
    for the exec) would otherwise leave a running child nobody knows of.
    """
    global _spawning
    _spawning += 1
    try:
        proc: subprocess.Popen[bytes] = subprocess.Popen(cmd, **kwargs)
        _children.append(proc)
    finally:
        _spawning -= 1
    if _deferred and not _spawning:
        sys.exit(128 + _deferred[0])
    return proc


def stop_children_on_exit(sigint: bool = False) -> None:
    """Kill the engines and apps we started if we exit early (SIGTERM from ``timeout``; Ctrl-C if ``sigint``).

    They run in their own sessions (so a terminal's Ctrl-C reaches only us);
    without this they would outlive an interrupted benchmark. ``sigint``
    makes Ctrl-C exit like SIGTERM (130) instead of asyncio's cancellation of
    the main task, which a library's wait can swallow (the run then goes on).
    """
    def kill_all() -> None:
        for proc in _children:
            if proc.poll() is None:
                proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)

    atexit.register(kill_all)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    if sigint:
        signal.signal(signal.SIGINT, _exit_on_signal)


def stop_process(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM, up to ``grace_s`` to exit (an SDK worker drains meanwhile), then SIGKILL."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_status_kb(pid: int, field: str) -> int:
    """A ``kB`` field of /proc/<pid>/status (``VmHWM`` = peak RSS, ``VmRSS`` = current)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no {field}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine() -> str:
    """CPU count and load average: the machine is shared, so say how busy it was."""
    one, five, _ = os.getloadavg()
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return f"{os.cpu_count()} CPUs, load average {one:.2f} (1 min) {five:.2f} (5 min), {when}, {source_state()}"


def source_state() -> str:
    """The commit measured, and whether the engine's source had uncommitted changes (the install is editable)."""
    root = Path(__file__).resolve().parent.parent
    override = os.environ.get("PYTHONPATH")
    if override:
        return f"agentcmd imported from PYTHONPATH={override}"
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "src/agentcmd/engine"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "commit unknown"
    return f"commit {head}" + (" + uncommitted engine changes" if dirty else "")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (what docs/benchmarks.md quotes)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


class Engine:
    """``python -m agentcmd engine dev|start`` on a free port, its database in a temp dir."""

    def __init__(self, mode: str, root: Path | None = None, extra_args: Sequence[str] = ()) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.mode = mode
        self._owns_root = root is None
        self.root = root or Path(tempfile.mkdtemp(prefix=f"agentcmd-load-{mode}-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        prof = os.environ.get("LOAD_BENCH_PROFILE")  # a path prefix: run the engine under cProfile
        cmd = [sys.executable, *(["-m", "cProfile", "-o", f"{prof}.{mode}.{self.port}"] if prof else []),
               "-m", "agentcmd", "engine", "dev" if mode == "dev" else "start",
               "--port", str(self.port), *extra_args]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INNGEST_", "AGENTCMD_"))}
        env["AGENTCMD_HOME"] = str(self.root / "home")
        if mode == "dev":
            cmd.append("--no-discovery")
        else:
            cmd += ["--sqlite-dir", str(self.root / "db")]
            env.update(INNGEST_SIGNING_KEY=SIGNING_KEY, INNGEST_EVENT_KEY=EVENT_KEY)
        self.log_path = self.root / "engine.log"
        self.root.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = spawn(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        self.headers = {"Authorization": f"Bearer {SIGNING_KEY}"} if mode == "production" else {}
        self.key = EVENT_KEY if mode == "production" else "NO_EVENT_KEY_SET"
        self.wait_ready()

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"engine exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.01)
        raise RuntimeError(f"engine not ready after {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def peak_rss_mb(self) -> float:
        return proc_status_kb(self.proc.pid, "VmHWM") / 1024

    def rss_mb(self) -> float:
        return proc_status_kb(self.proc.pid, "VmRSS") / 1024

    def cpu_s(self) -> float:
        return cpu_seconds(self.proc.pid)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        stop_process(self.proc, 30)
        self._log.close()
        if self._owns_root and not os.environ.get("LOAD_BENCH_KEEP"):  # LOAD_BENCH_KEEP=1 keeps db and logs
            shutil.rmtree(self.root, ignore_errors=True)


class App:
    """The calling script re-run as ``SCRIPT --serve-app PORT ENGINE_URL MODE [extra]``: an SDK app."""

    def __init__(self, script: Path, engine: Engine, extra: Sequence[str] = (), log_name: str = "app.log") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.serve_url = self.url + "/api/inngest"
        self.engine = engine
        self.log_path = engine.root / log_name
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = spawn([sys.executable, str(script), "--serve-app", str(self.port), engine.url, engine.mode,
                           *extra], stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    async def sync(self, session: aiohttp.ClientSession, timeout: float = 30) -> None:
        """PUT the serve URL, as the engine would; the SDK then registers its functions."""
        kind = "cloud" if self.engine.mode == "production" else "dev"
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app exited: {self.log_path.read_text(errors='replace')[-3000:]}")
            try:
                async with session.put(self.serve_url, json={"url": self.serve_url},
                                       headers={"X-Inngest-Server-Kind": kind}) as r:
                    last = await r.text()
                    if r.status == 200 and '"error"' not in str(last):
                        return
            except aiohttp.ClientError as exc:
                last = exc
            await asyncio.sleep(0.05)
        raise RuntimeError(f"app did not sync: {last}")

    async def get(self, session: aiohttp.ClientSession, path: str) -> Any:
        async with session.get(self.url + path) as r:
            return await r.json()

    async def post(self, session: aiohttp.ClientSession, path: str) -> Any:
        async with session.post(self.url + path) as r:
            return await r.json()

    def stop(self) -> None:
        stop_process(self.proc, 15)
        self._log.close()


def sdk_client(engine_url: str, mode: str, app_id: str) -> Any:
    """The official client pointed at the engine (signed in production), as an app would build it."""
    import logging
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import inngest

    prod = mode == "production"
    return inngest.Inngest(app_id=app_id, is_production=prod, api_base_url=engine_url,
                           event_api_base_url=engine_url, signing_key=SIGNING_KEY if prod else None,
                           event_key=EVENT_KEY if prod else None, logger=logging.getLogger("bench-app"))


def serve(port: int, client: Any, functions: list[Any], extra_routes: Any = None) -> None:
    """Serve the SDK (FastAPI under uvicorn, uvloop + httptools) with optional extra routes."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import fastapi
        import inngest.fast_api
        import uvicorn

    app = fastapi.FastAPI()
    inngest.fast_api.serve(app, client, functions)
    if extra_routes is not None:
        extra_routes(app)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, loop="uvloop",
                http="httptools")


async def post_events(session: aiohttp.ClientSession, engine: Engine, events: list[dict[str, Any]]) -> list[str]:
    async with session.post(f"{engine.url}/e/{engine.key}", json=events) as r:
        body = await r.json()
        if r.status != 200:
            raise RuntimeError(f"POST /e answered {r.status}: {body}")
        return list(body["ids"])


async def get_json(session: aiohttp.ClientSession, engine: Engine, path: str) -> Any:
    async with session.get(engine.url + path, headers=engine.headers) as r:
        if r.status != 200:
            raise RuntimeError(f"GET {path} answered {r.status}: {await r.text()}")
        return await r.json()


async def count_runs(session: aiohttp.ClientSession, engine: Engine, slug_suffix: str = "") -> dict[str, int]:
    """Runs per status (of functions whose slug ends with ``slug_suffix``), paging ``GET /v1/runs``."""
    counts: dict[str, int] = {}
    cursor: str | None = None
    while True:
        path = "/v1/runs?limit=500" + (f"&cursor={cursor}" if cursor else "")
        body = await get_json(session, engine, path)
        for run in body["data"]:
            if str(run.get("function_slug") or "").endswith(slug_suffix):
                counts[run["status"]] = counts.get(run["status"], 0) + 1
        cursor = (body.get("metadata") or {}).get("next_cursor")
        if not cursor:
            return counts


# --------------------------------------------------------------------------- W10: the 10-step workflow

W10_STEPS = 10
W10_CALLS = W10_STEPS + 1   # the official SDK: one call per step.run, then one that returns the run's output
W10_PAYLOAD = "x" * 90      # each step returns ~100 bytes of JSON


def w10_function(client: Any, event: str, notify_port: int, fn_id: str = "ten-steps") -> Any:
    """W10 for the official SDK: 10 sequential ``step.run`` steps of ~100 bytes, then a return value.

    When the run's body ends the app sends the run id in a UDP datagram to
    ``notify_port``, so the measuring process can keep exactly N runs in
    flight without polling the engine (which would cost the engine CPU).
    """
    import socket as socket_mod
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import inngest

    udp = socket_mod.socket(socket_mod.AF_INET, socket_mod.SOCK_DGRAM)

    @client.create_function(fn_id=fn_id, trigger=inngest.TriggerEvent(event=event), retries=0)
    async def ten_steps(ctx: inngest.Context) -> dict[str, int]:
        for i in range(W10_STEPS):
            async def step(i: int = i) -> dict[str, object]:
                return {"i": i, "p": W10_PAYLOAD}

            await ctx.step.run(f"step-{i}", step)
        udp.sendto(ctx.run_id.encode(), ("127.0.0.1", notify_port))
        return {"steps": W10_STEPS}

    return ten_steps


class RunNotifications(asyncio.DatagramProtocol):
    """The UDP end of ``w10_function``'s notifications: one queue item per run body ended."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0

    @classmethod
    async def open(cls) -> RunNotifications:
        loop = asyncio.get_running_loop()
        notes = cls()
        transport, _ = await loop.create_datagram_endpoint(lambda: notes, local_addr=("127.0.0.1", 0))
        notes.transport = transport
        notes.port = int(transport.get_extra_info("sockname")[1])
        return notes

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.queue.put_nowait(data.decode())

    async def next(self, timeout: float = 60) -> str:
        """The next run that ended; a run that never ends is a clear error, not a hang."""
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            raise RuntimeError(f"no run body ended within {timeout:.0f} s (see the app's and engine's logs)") from None

    def drain(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def wait_run_completed(session: aiohttp.ClientSession, engine: Engine, event_id: str,
                             timeout: float = 60) -> dict[str, Any]:
    """The run ``event_id`` started, once the engine's REST API says ``Completed`` (failed: an error)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = (await get_json(session, engine, f"/v1/events/{event_id}/runs"))["data"]
        if runs and runs[0]["status"] == "Completed":
            return dict(runs[0])
        if runs and runs[0]["status"] in ("Failed", "Cancelled"):
            raise RuntimeError(f"run {runs[0]['status'].lower()}: {runs[0]}")
        await asyncio.sleep(0.0005)
    raise RuntimeError(f"the run of event {event_id} did not complete within {timeout:.0f} s")


async def wait_no_run_running(session: aiohttp.ClientSession, engine: Engine, timeout: float = 60) -> None:
    """Every run ended (a body's notification comes just before the engine commits its output)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not (await get_json(session, engine, "/v1/runs?status=Running&limit=1"))["data"]:
            return
        await asyncio.sleep(0.001)
    raise RuntimeError(f"runs still running {timeout:.0f} s after the last one was sent")
