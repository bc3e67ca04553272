"""The benchmark's SDK app with no engine: what production costs the official SDK by itself.

    .venv/bin/python benchmarks/sdk_alone.py [--rounds 3] [--calls 3000]

Starts ``engine_bench_app.py`` (the same app ``engine_bench.py`` drives) in
dev and in production mode and replays the 11 request bodies of a W10 run
at it, built by the engine's own ``request_body`` and, in production,
signed as the engine signs them. Nothing else runs, so what differs between
the two modes is the SDK's own work (checking each request's signature with
a JCS re-canonicalisation of the body, signing each answer) and nothing the
engine does. Per mode, medians over interleaved rounds:

* the app's CPU per call with 8 calls in flight: at 32 runs in flight the
  single app process is the ceiling, so dev/production of this is the best
  runs/s ratio any engine can give on W10 with this app;
* the time per call one at a time: production's extra time here, times 11,
  is what the SDK alone adds to a W10 run at c=1.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
from engine_bench import HERE, SIGNING_KEY, cpu_seconds, free_port

MODES = ("dev", "production")


def w10_bodies() -> list[bytes]:
    """The 11 request bodies of one W10 run, as the engine sends them (call k carries k memoized steps)."""
    from agentcmd.engine.executor import request_body
    from agentcmd.engine.protocol import canonical
    from agentcmd.engine.store.models import CallContext, QueueItem, QueueKind

    run_id = "01M912MPM66X7B81FGNAS3VMHR"
    event = {"data": {"n": 0}, "id": "01M912MPM53YSYTCVKA7XJ9GX0", "name": "bench/run", "ts": 1796406401669,
             "user": {}}
    steps: dict[str, str] = {}
    out = []
    for i in range(11):
        item = QueueItem(i + 1, QueueKind.STEP, run_id, "step", 0, 0, {})
        out.append(request_body(CallContext(item, run_id, "bench-ten-steps", "http://127.0.0.1:1/api/inngest",
                                            canonical(event), canonical([event]), dict(steps), False, 1, "Running")))
        steps[hashlib.sha1(f"step-{i}".encode()).hexdigest()] = canonical({"data": {"i": i, "p": "x" * 90}})
    return out


async def _replay(session: aiohttp.ClientSession, url: str, calls: list[tuple[bytes, dict[str, str]]],
                  n: int, inflight: int) -> float:
    """Send ``n`` calls, ``inflight`` at a time, cycling through W10's bodies; seconds taken."""
    async def one_lane(count: int) -> None:
        for j in range(count):
            body, headers = calls[j % len(calls)]
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                if resp.status not in (200, 206):
                    raise RuntimeError(f"the app answered {resp.status}: {await resp.text()}")

    started = time.perf_counter()
    await asyncio.gather(*(one_lane(n // inflight) for _ in range(inflight)))
    return time.perf_counter() - started


async def measure(mode: str, calls: int) -> dict[str, float]:
    """One round for one mode: ``cpu_ms_per_call`` (8 in flight) and ``c1_ms_per_call`` (one at a time)."""
    from agentcmd import signing

    port = free_port()
    app = subprocess.Popen([sys.executable, str(HERE / "engine_bench_app.py"), str(port), "http://127.0.0.1:9",
                            mode, "9"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    prod = mode == "production"
    kind = {"X-Inngest-Server-Kind": "cloud" if prod else "dev", "Content-Type": "application/json"}
    signed = [(b, {**kind, **({"X-Inngest-Signature": signing.sign(b, SIGNING_KEY)} if prod else {})})
              for b in w10_bodies()]
    url = f"http://127.0.0.1:{port}/api/inngest?fnId=bench-ten-steps&stepId=step"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    await _replay(session, url, signed, 1, 1)
                    break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)
            else:
                raise RuntimeError("the SDK app did not start")
            await _replay(session, url, signed, calls // 4, 8)            # warm-up
            cpu0 = cpu_seconds(app.pid)
            await _replay(session, url, signed, calls, 8)
            cpu = (cpu_seconds(app.pid) - cpu0) / calls * 1000
            sequential = await _replay(session, url, signed, calls // 4, 1) / (calls // 4) * 1000
    finally:
        app.terminate()
        app.wait()
    return {"cpu_ms_per_call": cpu, "c1_ms_per_call": sequential}


def sdk_alone(rounds: int = 3, calls: int = 3000) -> dict[str, dict[str, float]]:
    """Medians per mode over interleaved rounds, and ``ratio`` (production/dev, median of per-round ratios)."""
    results: dict[str, list[dict[str, float]]] = {m: [] for m in MODES}
    for r in range(rounds):
        for mode in MODES if r % 2 == 0 else tuple(reversed(MODES)):
            results[mode].append(asyncio.run(measure(mode, calls)))
    keys = ("cpu_ms_per_call", "c1_ms_per_call")
    out = {m: {k: statistics.median(x[k] for x in results[m]) for k in keys} for m in MODES}
    out["ratio"] = {k: statistics.median(p[k] / d[k] for d, p in zip(results["dev"], results["production"],
                                                                      strict=True)) for k in keys}
    return out


def describe(res: dict[str, dict[str, float]], calls_per_run: int = 11) -> str:
    dev, prod = res["dev"], res["production"]
    return (f"The SDK app alone (no engine, W10's bodies replayed): CPU per call dev {dev['cpu_ms_per_call']:.3f} "
            f"ms, production {prod['cpu_ms_per_call']:.3f} ms ({res['ratio']['cpu_ms_per_call']:.2f}x), so at 32 "
            f"in flight production can reach at most {1 / res['ratio']['cpu_ms_per_call']:.2f}x dev's runs/s "
            f"with this app; one call at a time dev {dev['c1_ms_per_call']:.3f} ms, production "
            f"{prod['c1_ms_per_call']:.3f} ms: the SDK adds "
            f"{(prod['c1_ms_per_call'] - dev['c1_ms_per_call']) * calls_per_run:.1f} ms to a W10 run at c=1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=3000, help="calls per measurement (8 in flight)")
    args = parser.parse_args()
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(describe(sdk_alone(args.rounds, args.calls)))


if __name__ == "__main__":
    main()
