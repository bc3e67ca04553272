"""W10 as a Restate service: ``Bench.run`` does 10 ``ctx.run_typed`` steps of ~100 bytes, then returns.

Served over h2c (HTTP/2 without TLS, what restate-server speaks to a
deployment by default: one bidirectional stream per invocation) by hypercorn
on uvloop, the ASGI server the restate-sdk docs use. Run by connect_bench.py
as ``connect_bench.py --serve-restate PORT``. No ``from __future__ import
annotations`` here: the SDK reads the handler's annotations at decoration
time to pick its JSON serde.
"""

import asyncio
import signal
from typing import Any

import hypercorn.asyncio
import hypercorn.config
import restate
import uvloop
from _common import W10_PAYLOAD, W10_STEPS

bench = restate.Service("Bench")


async def step(i: int) -> dict[str, Any]:
    return {"i": i, "p": W10_PAYLOAD}


@bench.handler()
async def run(ctx: restate.Context, req: dict[str, Any]) -> dict[str, int]:
    for i in range(W10_STEPS):
        await ctx.run_typed(f"step-{i}", step, restate.RunOptions(), i)
    return {"steps": W10_STEPS}


def serve(port: int) -> None:
    config = hypercorn.config.Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.loglevel = "WARNING"

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await hypercorn.asyncio.serve(restate.app([bench]), config, shutdown_trigger=stop.wait)

    uvloop.run(main())
