"""The official SDK app in a process of its own, for tests that kill it (``test_interruptions.py``).

Usage: ``python sdk_app_process.py PORT MODE ENGINE_URL STEP_LOG GATE`` (the signing and event keys in
``TEST_SIGNING_KEY`` / ``TEST_EVENT_KEY`` in production). App ``interrupt``, function ``work``
(``retries=0``) on event ``interrupt/work``: step ``one`` appends ``one <attempt>`` to STEP_LOG and,
when the event has ``data.block``, waits until the file GATE exists (at most 30 s); then step ``two``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
import warnings
from pathlib import Path

import fastapi
import uvicorn

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import inngest
    import inngest.fast_api


def main() -> None:
    port, mode, engine_url, step_log, gate = sys.argv[1:6]
    production = mode == "production"
    client = inngest.Inngest(app_id="interrupt", is_production=production,
                             signing_key=os.environ.get("TEST_SIGNING_KEY") if production else None,
                             event_key=os.environ.get("TEST_EVENT_KEY") if production else None,
                             api_base_url=engine_url, event_api_base_url=engine_url,
                             logger=logging.getLogger("sdk-app-process"))

    @client.create_function(fn_id="work", trigger=inngest.TriggerEvent(event="interrupt/work"), retries=0)
    async def work(ctx: inngest.Context) -> list[str]:
        async def one() -> str:
            with open(step_log, "a") as fh:
                fh.write(f"one {ctx.attempt}\n")
            if ctx.event.data.get("block"):
                deadline = time.monotonic() + 30
                while not Path(gate).exists() and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
            return f"attempt {ctx.attempt}"

        async def two() -> str:
            return "two"

        return [await ctx.step.run("one", one), await ctx.step.run("two", two)]

    app = fastapi.FastAPI()
    inngest.fast_api.serve(app, client, [work])
    uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning", access_log=False, lifespan="off")


if __name__ == "__main__":
    main()
