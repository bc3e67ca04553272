"""A connect worker process for test_worker_loss.py: ``python killed_worker.py ENGINE_URL APP STEPS_FILE``.

Its function writes ``a`` when step a runs and ``b-start`` when step b
begins; step b then blocks until the process is killed.
"""

from __future__ import annotations

import asyncio
import sys
import time
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import inngest
    from inngest.connect import connect

url, app_id, steps = sys.argv[1], sys.argv[2], sys.argv[3]
client = inngest.Inngest(app_id=app_id, is_production=False, api_base_url=url, event_api_base_url=url)


def note(what: str) -> None:
    with open(steps, "a") as fh:
        fh.write(what + "\n")


@client.create_function(fn_id="two", trigger=inngest.TriggerEvent(event="conn/two"), retries=0)
async def two(ctx: inngest.Context) -> str:
    def a() -> str:
        note("a")
        return "A"

    def b() -> str:
        note("b-start")
        time.sleep(3600)
        return "never"

    first = await ctx.step.run("a", a)
    second = await ctx.step.run("b", b)
    return first + second


asyncio.run(connect([(client, [two])], instance_id="doomed").start())
