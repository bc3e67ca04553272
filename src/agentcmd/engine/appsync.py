"""Engine-initiated app sync (``-u/--sdk-url``): PUT the app's URL so its SDK registers with us.

Registration itself (validation, storing functions, the in-memory registry)
is ``registry.py``; this module only knocks on the apps' doors and remembers
whether each answered, so the dashboard and ``/health`` can say so.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from agentcmd.engine.registry import normalize_url
from agentcmd.engine.store import Store, apps, now_ms

log = logging.getLogger("agentcmd.engine.appsync")


FIRST_SYNC_HOLD_S = 120.0
"""How long after the engine starts an unmatched event waits for a ``-u`` app's first sync."""
HOLD_RETRY_MS = 1000
"""How often a held event is matched again; the first registration releases them all at once."""


class Syncer:
    """Engine-initiated sync: ``PUT <app url>`` so the SDK registers with us.

    dev re-syncs every ``poll_interval``; production syncs until an app
    succeeds, then only retries apps that failed (like ``inngest start``).
    ``passive`` (``--passive-sync``): never PUT; the apps register themselves
    (``agentcmd dev``/``start`` sync the app once it listens, so the engine
    never knocks on a port nobody listens on yet).

    Until every ``-u`` app has registered once (at most ``FIRST_SYNC_HOLD_S``
    after start), an event that matches no function waits in the queue
    (``holding``) instead of being dropped: it is matched when the sync lands.
    """

    def __init__(self, store: Store, urls: list[str], server_kind: str, signing_key: str | None,
                 poll_interval: float, repoll_healthy: bool, passive: bool = False) -> None:
        self.store = store
        self.urls = [normalize_url(u) for u in urls]
        self.server_kind = server_kind
        self.signing_key = signing_key
        self.poll_interval = poll_interval
        self.repoll_healthy = repoll_healthy
        self.passive = passive
        self.status: dict[str, str | None] = {u: "not synced yet" for u in self.urls}
        self._unregistered = set(self.urls)
        self._hold_until = time.monotonic() + FIRST_SYNC_HOLD_S

    def registered(self, url: object) -> bool:
        """An app registered (``/fn/register``), by our PUT or on its own; True on a ``-u`` app's first."""
        if not isinstance(url, str):
            return False
        url = normalize_url(url)
        first = url in self._unregistered
        self._unregistered.discard(url)
        if self.passive and url in self.status:
            if self.status[url] is not None:
                log.info("app at %s registered", url)
            self.status[url] = None
        return first

    def holding(self) -> bool:
        """True while unmatched events should wait for a ``-u`` app's first sync."""
        return bool(self._unregistered) and time.monotonic() < self._hold_until

    async def sync_one(self, url: str) -> str | None:
        """PUT one app; None on success, else the error (also stored on the app)."""
        import aiohttp

        from agentcmd import signing

        body = signing.canonical_json({"url": url})
        headers = {"Content-Type": "application/json", "X-Inngest-Server-Kind": self.server_kind}
        if self.signing_key:
            headers["X-Inngest-Signature"] = signing.sign(body, self.signing_key)
        error: str | None = None
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session, \
                    session.put(url, data=body, headers=headers) as resp:
                text = await resp.text()
                try:
                    parsed = json.loads(text) if text else {}
                except ValueError:
                    parsed = {}
                if resp.status >= 300:
                    error = f"HTTP {resp.status}: {text[:200]}"
                elif isinstance(parsed, dict) and parsed.get("error"):
                    error = str(parsed.get("error"))
                elif isinstance(parsed, dict) and parsed.get("ok") is False:
                    error = str(parsed.get("message") or parsed)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            error = f"unreachable: {exc or type(exc).__name__}"
        before = self.status.get(url, "")
        self.status[url] = error
        now = now_ms()
        await self.store.write(lambda c: apps.set_app_error_txn(c, url, error, now))
        if error != before:     # dev re-syncs every few seconds: log changes only
            if error:
                log.warning("sync of %s failed: %s", url, error)
            else:
                log.info("synced app at %s", url)
        return error

    async def sync_all(self) -> None:
        if self.passive:
            return
        await asyncio.gather(*(self.sync_one(u) for u in self.urls))

    async def run(self, stop: asyncio.Event) -> None:
        if self.passive:
            return
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.poll_interval)
                return
            except TimeoutError:
                pass
            todo = [u for u in self.urls if self.repoll_healthy or self.status.get(u) is not None]
            await asyncio.gather(*(self.sync_one(u) for u in todo))
