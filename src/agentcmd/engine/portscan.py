"""Dev-mode app discovery: look for SDK endpoints on the usual local ports (like ``inngest dev``).

Switches itself off once any app is synced. A URL counts when a plain GET
answers with an ``x-inngest-sdk`` header; it is then synced like ``-u``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agentcmd.engine.store import Store

log = logging.getLogger("agentcmd.engine.portscan")
PORTS = (80, 443, 3000, 3001, 3002, 3003, 3004, 3005, 3006, 3007, 3008, 3009, 3010, 4100, 4321, 5000, 5173, 8000,
         8080, 8081, 8888, 8910, 8911, 8912, 8913, 8914, 8915, 8787)
PATHS = ("/api/inngest", "/x/inngest", "/api/workflows/inngest", "/.netlify/functions/inngest",
         "/.redwood/functions/inngest")


async def _probe(session: object, url: str) -> bool:
    import aiohttp

    assert isinstance(session, aiohttp.ClientSession)
    try:
        async with session.get(url) as resp:
            return "x-inngest-sdk" in resp.headers
    except (TimeoutError, aiohttp.ClientError, OSError):
        return False


async def discover_loop(store: Store, server_kind: str, poll_interval: float, stop: asyncio.Event) -> None:
    import aiohttp

    from agentcmd.engine.appsync import Syncer
    from agentcmd.engine.store import queries

    ports = list(PORTS)
    if os.environ.get("PORT", "").isdigit():
        ports.append(int(os.environ["PORT"]))
    while not stop.is_set():
        if await store.read(queries.list_apps):
            return
        urls = [f"http://127.0.0.1:{p}{path}" for p in ports for path in PATHS]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.5)) as session:
            found = [u for u, ok in zip(urls, await asyncio.gather(*(_probe(session, u) for u in urls)), strict=True)
                     if ok]
        if found:
            log.info("discovered apps: %s", ", ".join(found))
            syncer = Syncer(store, found, server_kind, None, poll_interval, True)
            await syncer.sync_all()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), poll_interval)
