"""Startup time of ``agentcmd dev`` / ``agentcmd start``: command to both ``/health`` answering.

    .venv/bin/python benchmarks/startup_bench.py [--runs 5] [--modes dev start]

For each command: ``--runs`` fresh starts (each in a new, empty
``AGENTCMD_HOME``: no keys, no database) and ``--runs`` restarts (the same
home again, so production opens an existing database). The clock starts
just before ``python -m agentcmd <command>`` is spawned and stops when the
app's and the engine's ``GET /health`` have both answered 200; then the
supervisor gets SIGINT and must exit 0. The project served has one
workflow, so the engine's sync of the app succeeds as it would for a user.
Prints a Markdown table of medians (docs/running.md quotes it), with the
median CPU time (user + system, every process, start to exit) of one start
and stop: unlike wall time it hardly depends on what else the machine runs.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKFLOW = '''
from agentcmd import define_workflow


@define_workflow(id="hello", retries=0)
async def hello(ctx, step):
    return "hi"
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def healthy(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


CPU: list[float] = []  # CPU seconds of each start+stop, all processes (load-independent)


def one_start(command: str, home: Path, project: Path, timeout: float = 30) -> float:
    app_port, engine_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INNGEST_", "AGENTCMD_")) and k != "NODE_ENV"}
    env["AGENTCMD_HOME"] = str(home)
    log = home.parent / f"{home.name}-{command}-{time.monotonic_ns()}.log"
    cpu_before = children_cpu()
    with open(log, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "agentcmd", command, "--port", str(app_port),
                                 "--engine-port", str(engine_port), "--project", str(project)],
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            pending = {app_port, engine_port}
            while pending:
                pending = {p for p in pending if not healthy(p)}
                if proc.poll() is not None or time.perf_counter() - started > timeout:
                    raise RuntimeError(f"agentcmd {command} did not come up; see {log}:\n{log.read_text()}")
                if pending:
                    time.sleep(0.005)
            elapsed = time.perf_counter() - started
            while b"ready in " not in log.read_bytes():  # let the supervisor see it too, then stop it
                if proc.poll() is not None or time.perf_counter() - started > timeout:
                    raise RuntimeError(f"agentcmd {command} never said ready; see {log}:\n{log.read_text()}")
                time.sleep(0.005)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            try:
                code = proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise RuntimeError(f"agentcmd {command} did not stop on SIGINT; see {log}") from None
    if code != 0:
        raise RuntimeError(f"agentcmd {command} exited {code} after SIGINT; see {log}:\n{log.read_text()}")
    CPU.append(children_cpu() - cpu_before)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--modes", nargs="+", default=["dev", "start"], choices=["dev", "start"])
    args = parser.parse_args()
    rows = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="agentcmd-bench-") as tmp:
        project = Path(tmp) / "project"
        (project / ".agentcmd" / "workflows").mkdir(parents=True)
        (project / ".agentcmd" / "workflows" / "hello.py").write_text(WORKFLOW)
        for command in args.modes:
            fresh = [one_start(command, Path(tmp) / f"fresh-{command}-{i}", project) for i in range(args.runs)]
            home = Path(tmp) / f"restart-{command}"
            one_start(command, home, project)  # creates keys and the database
            again = [one_start(command, home, project) for _ in range(args.runs)]
            rows.append((command, fresh, again, statistics.median(CPU[-len(fresh) - len(again) - 1:])))
            print(f"agentcmd {command}: fresh {[f'{t:.3f}' for t in fresh]}, "
                  f"restart {[f'{t:.3f}' for t in again]}", file=sys.stderr)
    print(f"\n{os.cpu_count()} CPUs, Python {platform.python_version()}, {args.runs} runs each, "
          f"1-min load average {load_before:.1f} before / {os.getloadavg()[0]:.1f} after\n")
    print("| command | mode | fresh start, median (min-max) | restart, median (min-max) | CPU per start+stop |")
    print("|---|---|---|---|---|")
    for command, fresh, again, cpu in rows:
        mode = "production (SQLite file)" if command == "start" else "dev (in memory)"
        print(f"| `agentcmd {command}` | {mode} | {statistics.median(fresh):.2f} s ({min(fresh):.2f}-{max(fresh):.2f}) "
              f"| {statistics.median(again):.2f} s ({min(again):.2f}-{max(again):.2f}) | {cpu:.2f} s |")


if __name__ == "__main__":
    main()
