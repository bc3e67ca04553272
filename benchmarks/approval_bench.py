"""From an approval to the run going on: how long after the POST does the next step start, the run end?

    .venv/bin/python benchmarks/approval_bench.py [--approvals 20] [--modes dev production] [--think 0.5]

A temporary project holds one workflow: ``step.approval("go", ...)`` then
``step.run("next", ...)``, whose body returns the wall-clock time it began.
For each mode the benchmark runs ``python -m agentcmd dev`` (in-memory
engine) or ``python -m agentcmd start`` (SQLite engine, keys generated in a
temporary ``AGENTCMD_HOME``), then ``--approvals`` times, one after the
other: start a run, wait until its question is listed as waiting (polling
``GET /api/runs/{id}/questions``), wait ``--think`` seconds more (a person is
never faster, and an answer sent before the engine registered its wait is
resent after a second: docs/workflows.md), note the wall-clock time, and
POST ``/api/runs/{id}/approve`` (what the API, the CLI and the UI form all
do). Measured from just before that POST:

* the POST's answer (the answer is checked, claimed and the event sent);
* ``next`` starting (its body's own clock: the engine matched the event,
  stored the wait's result and called the app again);
* the run ending (the engine's ``ended_at``, millisecond resolution).

Prints a Markdown table with the medians and ranges (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import _children, free_port, machine, median, stop_children_on_exit, table

WORKFLOW = '''
import time

from agentcmd import define_workflow


@define_workflow(id="gate", retries=0)
async def gate(ctx, step):
    decision = await step.approval("go", "Go on?")
    started = await step.run("next", time.time)
    return {"approved": decision.approved, "next_started": started}
'''


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(0.005)
    raise SystemExit(f"timed out waiting for {what}")


def _iso_seconds(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def measure(mode: str, approvals: int, think: float, base: Path) -> dict[str, list[float]]:
    project, home = base / mode / "project", base / mode / "home"
    (project / ".agentcmd" / "workflows").mkdir(parents=True)
    (project / ".agentcmd" / "workflows" / "gate.py").write_text(WORKFLOW)
    app_port, engine_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INNGEST_", "AGENTCMD_"))}
    env.update({"AGENTCMD_HOME": str(home), "PORT": str(app_port)})
    log = open(base / f"{mode}.log", "wb")  # noqa: SIM115 - closed below
    sup = subprocess.Popen([sys.executable, "-m", "agentcmd", "dev" if mode == "dev" else "start", "--port",
                            str(app_port), "--engine-port", str(engine_port), "--project", str(project)],
                           env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    _children.append(sup)
    app = f"http://127.0.0.1:{app_port}"
    try:
        def ready() -> bool:
            return b"ready in " in (base / f"{mode}.log").read_bytes()

        _wait(ready, 90, f"agentcmd {mode} to be ready")
        headers: dict[str, str] = {}
        if mode == "production":
            key = json.loads((home / "config.json").read_text())["signing_key"]
            headers = {"Authorization": f"Bearer {key}"}
        http = httpx.Client(base_url=app, headers=headers, timeout=30)
        out: dict[str, list[float]] = {"post": [], "next": [], "end": []}
        for _ in range(approvals):
            run_id = http.post("/api/workflows/gate/runs", json={"input": {}}).json()["data"]["run_id"]
            _wait(lambda r=run_id: any(q["waiting"] for q in http.get(f"/api/runs/{r}/questions").json()["data"]),
                  60, "the question")
            time.sleep(think)
            before = time.time()
            resp = http.post(f"/api/runs/{run_id}/approve", json={})
            posted = time.time()
            assert resp.status_code == 200, resp.text
            run = _wait(lambda r=run_id: (d := http.get(f"/api/runs/{r}").json()["data"])["status"]
                        in ("Completed", "Failed", "Cancelled") and d, 60, "the run to end")
            assert run["status"] == "Completed", run
            out["post"].append(posted - before)
            out["next"].append(run["output"]["next_started"] - before)
            out["end"].append(_iso_seconds(run["ended_at"]) - before)
        http.close()
        return out
    finally:
        sup.terminate()
        try:
            sup.wait(30)
        except subprocess.TimeoutExpired:
            sup.kill()
            sup.wait()
        log.close()


def _ms(values: list[float]) -> str:
    return f"{median(values) * 1000:.0f} ms ({min(values) * 1000:.0f}-{max(values) * 1000:.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--approvals", type=int, default=20)
    parser.add_argument("--modes", nargs="+", default=["dev", "production"], choices=["dev", "production"])
    parser.add_argument("--think", type=float, default=0.5, help="seconds between the question and the answer")
    args = parser.parse_args()
    stop_children_on_exit()
    rows = []
    with tempfile.TemporaryDirectory(prefix="approval-bench-") as tmp:
        for mode in args.modes:
            got = measure(mode, args.approvals, args.think, Path(tmp))
            rows.append([mode, args.approvals, _ms(got["post"]), _ms(got["next"]), _ms(got["end"])])
    print(f"approval -> run going on, {machine()}\n")
    print(table(["mode", "approvals", "POST answered", "approval -> next step starts (median, min-max)",
                 "approval -> run ends"], rows))


if __name__ == "__main__":
    main()
