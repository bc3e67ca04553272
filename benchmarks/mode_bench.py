"""Production against dev on W10, rounds interleaved: the ratios production/dev.

    .venv/bin/python benchmarks/mode_bench.py [--rounds 5] [--runs 320] [--baseline-src /path/to/old/src]

Each round runs ``engine_bench.bench_mode`` (fresh engine and SDK app
processes, warm-up, 20 runs at c=1, ``--runs`` runs with 32 in flight) for dev
and then for production, so that whatever else the shared machine is doing
hits both modes alike; the order alternates every round. With
``--baseline-src`` (the ``src`` folder of another checkout, e.g. a
``git worktree`` of the previous commit) each round also runs that tree's
engine in both modes, so "before" and "after" come from one run.

Prints, per tree, the medians over rounds of c=1 engine latency, runs/s at
32 in flight and the engine's and the SDK app's CPU per SDK call in each
mode, then the ratios production/dev (medians of the per-round ratios).
The load average before and after is printed too: repeat a run when it
jumped. Then the SDK app alone (``sdk_alone.py``, ``--sdk-rounds``): what the
official SDK's own production work costs with no engine at all, which
bounds the ratios any engine can reach with this app.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine_bench import bench_mode
from sdk_alone import describe, sdk_alone, w10_bodies

METRICS = ("c1_engine_ms", "c1_wall_ms", "runs_per_s", "engine_cpu_ms_per_call", "sdk_cpu_ms_per_call")
MODES = ("dev", "production")


def sdk_production_work_ms(repeat: int = 5, number: int = 200) -> float:
    """The official SDK's own production-only work per W10 call, in ms, measured in this process.

    The 11 request bodies of a W10 run, built by the engine's ``request_body``
    as it sends them: per body, the SDK's ``validate_request_sig`` (JSON parse,
    JCS re-canonicalisation, HMAC) and ``sign_response`` of a step's answer;
    best of ``repeat``, mean over the bodies. In dev mode the SDK does none of it.
    Hot and alone this is a floor; ``sdk_alone.py`` measures it in the app.
    """
    import timeit

    from engine_bench import SIGNING_KEY
    from inngest._internal import net, server_lib

    from agentcmd import signing

    total = 0.0
    for i, body in enumerate(w10_bodies()):
        headers = {"x-inngest-signature": signing.sign(body, SIGNING_KEY)}
        answer = json.dumps([{"id": "x", "op": "StepRun", "data": {"i": i, "p": "x" * 90}}]).encode()

        def work(body: bytes = body, headers: dict[str, str] = headers, answer: bytes = answer) -> None:
            assert net.validate_request_sig(body=body, headers=headers, mode=server_lib.ServerKind.CLOUD,
                                            signing_key=SIGNING_KEY, signing_key_fallback=None) == SIGNING_KEY
            net.sign_response(answer, SIGNING_KEY)

        total += min(timeit.repeat(work, number=number, repeat=repeat)) / number
    return total / 11 * 1000


def loadavg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


Rounds = list[dict[str, dict[str, float]]]


def run(rounds: int, runs: int, inflight: int, trees: dict[str, str | None]) -> dict[str, Rounds]:
    """``{tree: [ {mode: result} per round ]}``, modes and trees interleaved."""
    out: dict[str, Rounds] = {t: [] for t in trees}
    for r in range(rounds):
        order = list(trees.items()) if r % 2 == 0 else list(reversed(trees.items()))
        for tree, src in order:
            modes = MODES if r % 2 == 0 else tuple(reversed(MODES))
            res = {m: asyncio.run(bench_mode(m, 1, runs, inflight, src=src, ready_rounds=0)) for m in modes}
            out[tree].append(res)
            print(f"round {r + 1} {tree}: " + "; ".join(
                f"{m} {res[m]['runs_per_s']:.0f} runs/s c=1 {res[m]['c1_engine_ms']:.1f} ms "
                f"cpu {res[m]['engine_cpu_ms_per_call']:.3f}/{res[m]['sdk_cpu_ms_per_call']:.3f}" for m in MODES)
                  + f" (load {loadavg()})", file=sys.stderr, flush=True)
    return out


def summary(rounds: Rounds) -> dict[str, dict[str, float]]:
    med = {m: {k: statistics.median(r[m][k] for r in rounds) for k in METRICS} for m in MODES}
    med["ratio"] = {k: statistics.median(r["production"][k] / r["dev"][k] for r in rounds) for k in METRICS}
    return med


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=320, help="runs per throughput round")
    parser.add_argument("--inflight", type=int, default=32)
    parser.add_argument("--baseline-src", help="the src folder of another checkout to measure in the same rounds")
    parser.add_argument("--sdk-rounds", type=int, default=3,
                        help="rounds of the SDK app measured alone (sdk_alone.py) after the others; 0: skip")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    trees: dict[str, str | None] = {"this tree": None}
    if args.baseline_src:
        trees = {"baseline": str(Path(args.baseline_src).resolve()), "this tree": None}
    before = loadavg()
    results = {t: summary(r) for t, r in run(args.rounds, args.runs, args.inflight, trees).items()}
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"W10 (10 step.run steps, official SDK, 11 calls/run); medians of {args.rounds} interleaved rounds; "
          f"load average {before} -> {loadavg()}")
    print("| tree | mode | c=1 engine (ms/run) | c=1 wall (ms/run) | runs/s @32 | engine CPU ms/call "
          "| SDK app CPU ms/call |")
    print("|---|---|---|---|---|---|---|")
    for tree, res in results.items():
        for mode in (*MODES, "ratio"):
            r = res[mode]
            label = "production/dev" if mode == "ratio" else mode
            fmt = "{:.2f}x" if mode == "ratio" else "{:.1f}"
            cpu = "{:.2f}x" if mode == "ratio" else "{:.3f}"
            print(f"| {tree} | {label} | {fmt.format(r['c1_engine_ms'])} | {fmt.format(r['c1_wall_ms'])} | "
                  f"{('{:.2f}x' if mode == 'ratio' else '{:.0f}').format(r['runs_per_s'])} | "
                  f"{cpu.format(r['engine_cpu_ms_per_call'])} | {cpu.format(r['sdk_cpu_ms_per_call'])} |")
    print(f"The SDK's own production-only work (request signature check with JCS, answer signing): "
          f"{sdk_production_work_ms():.3f} ms per call, measured in-process")
    if args.sdk_rounds:
        print(describe(sdk_alone(args.sdk_rounds)))


if __name__ == "__main__":
    main()
