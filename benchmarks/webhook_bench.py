"""Webhook deliveries per second the app server accepts, signature checks on, against a real engine.

    .venv/bin/python benchmarks/webhook_bench.py [--deliveries 1000] [--concurrency 16] [--rounds 3] [--mode production]

A temporary project holds docs/examples/github_issue.py (a run for each issue
labelled ``agent``), served by a real ``python -m agentcmd.server`` with a
GitHub webhook secret, synced by a real ``agentcmd engine start`` (``--mode
dev``: ``engine dev``), on loopback with ephemeral ports and a temporary
``AGENTCMD_HOME``. Each round posts ``--deliveries`` GitHub ``issues``
deliveries (GitHub's documented ``labeled`` payload, about 4 KB, each with its
own ``X-GitHub-Delivery`` and ``X-Hub-Signature-256``, signed before the
clock starts) to ``POST /api/webhooks/github`` from ``--concurrency``
connections. The label is ``triage``, so the workflow's filter refuses them
on the engine and no run starts: what is measured is the whole acceptance
path (body read to the limit, HMAC check, JSON parse, the delivery record's
SQLite claim and mark, the event sent to the engine and stored there). Each
delivery must answer 202. Then the same count with a wrong signature (401:
the cost of a refusal), and the first round's deliveries again (200
duplicate: the record's answer). Prints the median over rounds, and each
round, as a Markdown table (docs/benchmarks.md quotes it), and the CPU time
the app server and the engine spent per accepted delivery (``/proc``; on a
shared machine a steadier figure than the rate).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._common import (
    EVENT_KEY,
    SIGNING_KEY,
    _children,
    cpu_seconds,
    free_port,
    machine,
    median,
    stop_children_on_exit,
    table,
)
from tests.harness.webhookpayloads import encode, github_headers, github_issue_labeled

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-" + uuid.uuid4().hex


class Stack:
    def __init__(self, root: Path, mode: str) -> None:
        from agentcmd.inngest_env import inngest_env
        from agentcmd.mode import Mode

        project = root / "project"
        (project / ".agentcmd" / "workflows").mkdir(parents=True)
        shutil.copy(ROOT / "docs" / "examples" / "github_issue.py", project / ".agentcmd" / "workflows")
        engine_port, app_port = free_port(), free_port()
        self.engine, self.app = f"http://127.0.0.1:{engine_port}", f"http://127.0.0.1:{app_port}"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("INNGEST_", "AGENTCMD_"))}
        base.update(AGENTCMD_HOME=str(root / "home"), AGENTCMD_WEBHOOKS__GITHUB__SECRET=SECRET)
        sdk_url = f"{self.app}/api/workflows/inngest"
        if mode == "production":
            engine_env = {**base, "INNGEST_SIGNING_KEY": SIGNING_KEY, "INNGEST_EVENT_KEY": EVENT_KEY}
            engine_cmd = ["start", "--sqlite-dir", str(root / "db"), "--sdk-url", sdk_url]
            app_env = inngest_env(Mode.PRODUCTION, self.engine, event_key=EVENT_KEY, signing_key=SIGNING_KEY,
                                  base=base)
            self.headers = {"Authorization": f"Bearer {SIGNING_KEY}"}
        else:
            engine_env, engine_cmd = base, ["dev", "--no-discovery", "-u", sdk_url]
            app_env = inngest_env(Mode.DEV, self.engine, base=base)
            self.headers = {}
        self.logs = [root / "app.log", root / "engine.log"]
        self.procs = [
            self._start([sys.executable, "-m", "agentcmd.server", "--port", str(app_port), "--project",
                         str(project), "--log-level", "warning"], app_env, self.logs[0]),
            self._start([sys.executable, "-m", "agentcmd", "engine", *engine_cmd[:1], "--host", "127.0.0.1",
                         "--port", str(engine_port), *engine_cmd[1:]], engine_env, self.logs[1]),
        ]

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
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}:\n{self.tail()}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(f"{self.engine}/v1/functions", headers=self.headers) as r:
                    if r.status == 200 and (await r.json()).get("data"):
                        return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"the engine did not sync the app within {timeout} s:\n{self.tail()}")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait(10)


def deliveries(count: int, secret: str) -> list[tuple[bytes, dict[str, str]]]:
    out = []
    for n in range(count):
        body = encode(github_issue_labeled("triage", n + 1, f"Issue {n + 1}"))
        out.append((body, github_headers(secret, body)))
    return out


async def post_all(session: aiohttp.ClientSession, url: str, items: list[tuple[bytes, dict[str, str]]],
                   concurrency: int, expect: int) -> float:
    """Deliveries per second; every answer must be ``expect``."""
    queue: asyncio.Queue[tuple[bytes, dict[str, str]]] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    wrong: list[str] = []

    async def worker() -> None:
        while not queue.empty():
            body, headers = queue.get_nowait()
            async with session.post(url, data=body, headers=headers) as r:
                text = await r.text()
                if r.status != expect:
                    wrong.append(f"{r.status} {text[:200]}")

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    if wrong:
        raise RuntimeError(f"{len(wrong)} deliveries answered other than {expect}, e.g. {wrong[0]}")
    return len(items) / elapsed


async def main(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="agentcmd-webhook-bench-"))
    stack = Stack(root, args.mode)
    url = f"{stack.app}/api/webhooks/github"
    accepted: list[float] = []
    app_cpu: list[float] = []      # CPU ms per accepted delivery: comparable on a busy machine, unlike rates
    engine_cpu: list[float] = []
    refused: list[float] = []
    duplicates: list[float] = []
    try:
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
            await stack.ready(session)
            warm = deliveries(50, SECRET)
            await post_all(session, url, warm, args.concurrency, 202)
            first: list[tuple[bytes, dict[str, str]]] = []
            for n in range(args.rounds):
                batch = deliveries(args.deliveries, SECRET)
                first = first or batch
                before = [cpu_seconds(p.pid) for p in stack.procs]
                accepted.append(await post_all(session, url, batch, args.concurrency, 202))
                after = [cpu_seconds(p.pid) for p in stack.procs]
                app_cpu.append((after[0] - before[0]) * 1000 / len(batch))
                engine_cpu.append((after[1] - before[1]) * 1000 / len(batch))
                forged = [(b, {**h, "X-Hub-Signature-256": "sha256=" + "0" * 64}) for b, h in
                          deliveries(args.deliveries, SECRET)]
                refused.append(await post_all(session, url, forged, args.concurrency, 401))
                duplicates.append(await post_all(session, url, first, args.concurrency, 200))
                print(f"round {n + 1}: {accepted[-1]:.0f} accepted/s, {refused[-1]:.0f} refused/s, "
                      f"{duplicates[-1]:.0f} duplicates/s", flush=True)
            async with session.get(f"{stack.app}/api/runs", params={"workflow": "github-issue"},
                                   headers=stack.headers) as r:
                runs = (await r.json()).get("data") or []
            if runs:
                raise RuntimeError(f"the filter should have refused every delivery, but {len(runs)} runs started")
    finally:
        stack.stop()
        if not os.environ.get("LOAD_BENCH_KEEP"):
            shutil.rmtree(root, ignore_errors=True)
    print()
    print(f"{args.deliveries} deliveries per round, {args.concurrency} connections, {args.rounds} rounds, "
          f"mode {args.mode}; {machine()}")
    print()
    print(table(["what", "median per second", "rounds"], [
        ("accepted (202: HMAC checked, recorded, event on the engine)", f"{median(accepted):.0f}",
         ", ".join(f"{x:.0f}" for x in accepted)),
        ("refused (401: wrong signature)", f"{median(refused):.0f}", ", ".join(f"{x:.0f}" for x in refused)),
        ("duplicates (200: delivery id seen before)", f"{median(duplicates):.0f}",
         ", ".join(f"{x:.0f}" for x in duplicates)),
    ]))
    print()
    print(table(["CPU per accepted delivery", "median ms", "rounds"], [
        ("app server", f"{median(app_cpu):.2f}", ", ".join(f"{x:.2f}" for x in app_cpu)),
        ("engine (store, match; dispatch may trail)", f"{median(engine_cpu):.2f}",
         ", ".join(f"{x:.2f}" for x in engine_cpu)),
    ]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mode", choices=("dev", "production"), default="production")
    stop_children_on_exit()
    asyncio.run(main(parser.parse_args()))
