"""Restart to resume: how soon after ``agentcmd start`` is ready again does an interrupted step run again?

    .venv/bin/python benchmarks/restart_bench.py [--restarts 5] [--signals SIGINT SIGKILL] [--resume-timeout 60]

A temporary project holds one workflow (``retries=0``): a step that
completes, then ``step.cli("long", ...)``, a 20 s command that first appends
the wall-clock time it started to a marks file. The benchmark runs
``python -m agentcmd start`` (production: SQLite engine, keys generated in a
temporary ``AGENTCMD_HOME``), starts a run with ``agentcmd workflows run``,
and waits until the long step runs. Then, ``--restarts`` times per signal:

* interrupt: ``SIGINT`` to the supervisor (what Ctrl-C does; it must exit by
  itself), or ``SIGKILL`` of the whole process tree (supervisor, engine, app,
  the step's command: a power cut, an OOM kill);
* restart ``agentcmd start`` on the same home and ports, note when it prints
  ``ready``, and wait for the long step to start again (a new line in the
  marks file): the figure is the time from ``ready`` to that start
  (negative: the step started before the supervisor said ready).

A step that does not start again within ``--resume-timeout`` seconds counts
as a failure (the run was lost or marked failed instead of interrupted), and
the next sample starts a fresh run. Processes from before the interruption
that outlive it (an orphaned step command) are counted, then killed by PID.
Prints a Markdown table: per signal, how many restarts resumed, the median
(min-max) ready -> step start, the failures, orphans and shutdown times.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

WORKFLOW = '''
import sys

from agentcmd import define_workflow

MARKS = {marks!r}
LONG = "import sys, time; open(sys.argv[1], 'a').write(repr(time.time()) + '\\\\n'); time.sleep(20)"


@define_workflow(id="resume", retries=0)
async def resume(ctx, step):
    await step.run("first", lambda: "done")
    await step.cli("long", [sys.executable, "-c", LONG, MARKS])
    return "finished"
'''

SIGNALS = {"SIGINT": signal.SIGINT, "SIGKILL": signal.SIGKILL}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc), children before grandchildren."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Agentcmd:
    """One ``python -m agentcmd start``, its output read line by line with the time each arrived."""

    def __init__(self, env: dict[str, str], app_port: int, engine_port: int, project: Path, log: Path) -> None:
        self.log = log
        self.lines: list[tuple[float, str]] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agentcmd", "start", "--port", str(app_port), "--engine-port", str(engine_port),
             "--project", str(project)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with open(self.log, "ab") as fh:
            for raw in self.proc.stdout:
                self.lines.append((time.time(), raw.decode(errors="replace")))
                fh.write(raw)
                fh.flush()

    def wait_ready(self, timeout: float) -> float:
        """Wall time at which ``ready in`` was printed; raises if it never is."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, line in list(self.lines):
                if "ready in " in line:
                    return at
            if self.proc.poll() is not None:
                raise RuntimeError(f"agentcmd start exited {self.proc.returncode} before ready; see {self.log}")
            time.sleep(0.005)
        raise RuntimeError(f"agentcmd start not ready after {timeout:.0f} s; see {self.log}")

    def interrupt(self, sig: signal.Signals, timeout: float) -> tuple[float, list[int], str]:
        """Send ``sig``; returns (seconds to exit, orphans killed, how it ended)."""
        tree = descendants(self.proc.pid)
        started = time.monotonic()
        if sig == signal.SIGKILL:
            for pid in [self.proc.pid, *tree]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        else:
            self.proc.send_signal(sig)
        how = f"exit {{}} after {sig.name}"
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            for pid in [self.proc.pid, *descendants(self.proc.pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            code = self.proc.wait(10)
            how = f"did not exit within {timeout:.0f} s of {sig.name}: killed"
        took = time.monotonic() - started
        self._reader.join(5)
        settle = time.monotonic() + 2       # a killed process takes a moment to be gone
        while any(alive(pid) for pid in tree) and time.monotonic() < settle:
            time.sleep(0.02)
        orphans = [pid for pid in tree if alive(pid)]
        for pid in orphans:                  # ours: started below the supervisor we launched
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return took, orphans, how.format(code)


@dataclass
class Sample:
    resumed_after: float | None      # ready -> step start again (s); None: it did not resume in time
    shutdown_s: float
    orphans: int
    how: str


@dataclass
class Bench:
    env: dict[str, str]
    project: Path
    marks: Path
    logs: Path
    app_port: int = field(default_factory=free_port)
    engine_port: int = field(default_factory=free_port)
    starts: int = 0

    def start(self) -> Agentcmd:
        self.starts += 1
        return Agentcmd(self.env, self.app_port, self.engine_port, self.project,
                        self.logs / f"agentcmd-start-{self.starts}.log")

    def marks_count(self) -> int:
        return len(self.marks.read_text().splitlines()) if self.marks.exists() else 0

    def last_mark(self) -> float:
        return float(self.marks.read_text().splitlines()[-1])

    def wait_marks(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.marks_count() >= count:
                return True
            time.sleep(0.005)
        return False

    def start_run(self) -> None:
        out = subprocess.run([sys.executable, "-m", "agentcmd", "workflows", "run", "resume", "--json"],
                             env={**self.env, "AGENTCMD_PORT": str(self.app_port),
                                  "AGENTCMD_ENGINE_PORT": str(self.engine_port)},
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"could not start a run: {out.stdout}{out.stderr}")

    def ensure_step_running(self, running: Agentcmd, step_timeout: float) -> None:
        """The long step must be running now: after a resume it is; otherwise start a new run."""
        if self.marks_count() and time.time() - self.last_mark() < 15:
            return
        before = self.marks_count()
        self.start_run()
        if not self.wait_marks(before + 1, step_timeout):
            raise RuntimeError(f"the long step of a new run did not start within {step_timeout:.0f} s; "
                               f"see {running.log}")

    def sample(self, running: Agentcmd, sig: signal.Signals, args: argparse.Namespace) -> tuple[Sample, Agentcmd]:
        self.ensure_step_running(running, args.resume_timeout)
        before = self.marks_count()
        shutdown_s, orphans, how = running.interrupt(sig, args.stop_timeout)
        restarted = self.start()
        ready_at = restarted.wait_ready(args.ready_timeout)
        resumed = self.wait_marks(before + 1, args.resume_timeout)
        after = self.last_mark() - ready_at if resumed else None
        return Sample(after, shutdown_s, len(orphans), how), restarted


def fmt(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.2f} s ({min(values):.2f} to {max(values):.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--restarts", type=int, default=5, help="interruptions and restarts per signal (default 5)")
    parser.add_argument("--signals", nargs="+", default=["SIGINT", "SIGKILL"], choices=sorted(SIGNALS))
    parser.add_argument("--resume-timeout", type=float, default=60.0,
                        help="seconds after ready to wait for the step to start again (default 60)")
    parser.add_argument("--stop-timeout", type=float, default=60.0,
                        help="seconds to wait for agentcmd start to exit after SIGINT before killing it")
    parser.add_argument("--ready-timeout", type=float, default=60.0, help="seconds to wait for 'ready'")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs) and print it")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="agentcmd-restart-bench-"))
    project = tmp / "project"
    (project / ".agentcmd" / "workflows").mkdir(parents=True)
    marks = tmp / "long-step-starts.txt"
    (project / ".agentcmd" / "workflows" / "resume.py").write_text(WORKFLOW.format(marks=str(marks)))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INNGEST_", "AGENTCMD_")) and k != "NODE_ENV"}
    env.update(AGENTCMD_HOME=str(tmp / "home"), HOME=str(tmp / "user-home"))
    (tmp / "user-home").mkdir()
    bench = Bench(env, project, marks, tmp)
    load_before = os.getloadavg()[0]
    results: dict[str, list[Sample]] = {}
    running = bench.start()
    try:
        running.wait_ready(args.ready_timeout)
        for name in args.signals:
            samples = results.setdefault(name, [])
            for i in range(args.restarts):
                sample, running = bench.sample(running, SIGNALS[name], args)
                samples.append(sample)
                shown = "no resume" if sample.resumed_after is None else f"{sample.resumed_after:.2f} s"
                print(f"{name} {i + 1}/{args.restarts}: {sample.how} in {sample.shutdown_s:.2f} s, "
                      f"{sample.orphans} orphans; ready -> step again: {shown}", file=sys.stderr, flush=True)
    finally:
        running.interrupt(signal.SIGINT, args.stop_timeout)
    print(f"\n{os.cpu_count()} CPUs, Python {platform.python_version()}, 1-min load average {load_before:.1f} "
          f"before / {os.getloadavg()[0]:.1f} after; resume timeout {args.resume_timeout:.0f} s\n")
    print("| interruption | resumed | ready -> interrupted step starts again, median (min to max) | failures "
          "| orphaned processes | shutdown, median |")
    print("|---|---|---|---|---|---|")
    failed = 0
    for name, samples in results.items():
        times = [s.resumed_after for s in samples if s.resumed_after is not None]
        failures = len(samples) - len(times)
        failed += failures
        what = "SIGINT to `agentcmd start`" if name == "SIGINT" else "SIGKILL of every process"
        print(f"| {what} | {len(times)}/{len(samples)} | {fmt(times)} | "
              f"{failures} (no start within {args.resume_timeout:.0f} s) | {sum(s.orphans for s in samples)} | "
              f"{statistics.median(s.shutdown_s for s in samples):.2f} s |")
    if args.keep:
        print(f"\nlogs in {tmp}")
    else:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
