"""An event accepted around a sync is matched once the sync lands, never dropped.

- A re-sync swaps the registry before ``/fn/register`` answers, even when a
  second sync of the same list races the first (the unchanged one must not
  answer before the changed one's functions match).
- With ``--passive-sync`` the engine never PUTs its ``-u`` app; an event that
  arrives before that app's first registration waits and starts its run
  when the app registers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import inngest
from tests.harness.engine import EngineProc, SdkApp, runs_for_event, send_event, wait_for_run_status

from agentcmd.engine.registry import Registry, parse_function, register
from agentcmd.engine.store import open_store


def _body(version: int) -> dict[str, Any]:
    url = "http://127.0.0.1:1/api/inngest"
    fns = [{"id": f"app-fn-{i}", "name": f"fn {i}", "triggers": [{"event": f"app/ev-{i}"}],
            "steps": {"step": {"id": "step", "runtime": {"type": "http", "url": f"{url}?fnId=app-fn-{i}"}}}}
           for i in range(version)]
    return {"appname": "app", "url": url, "functions": fns}


async def test_a_sync_answers_only_once_the_registry_matches_what_it_stored() -> None:
    store = open_store(None)
    try:
        registry = Registry()
        await registry.load(store)
        for version in range(1, 30):
            body = _body(version)
            seen: list[int] = []

            async def sync(b: dict[str, Any] = body, seen: list[int] = seen, newest: str = f"app/ev-{version - 1}"
                           ) -> None:
                await register(store, registry, b)
                seen.append(len(registry.candidates(newest)))

            # Two syncs of one new list at once: the one whose list was already stored (unchanged) must
            # not answer before the new functions match.
            await asyncio.gather(sync(), sync())
            assert seen == [1, 1], f"version {version}: a sync answered before its functions matched"
    finally:
        store.close()


async def test_an_older_list_never_replaces_a_newer_one() -> None:
    registry = Registry()
    fn = parse_function(_body(1)["functions"][0], "app")
    newer, older = registry.take_generation(), registry.take_generation() - 1
    registry.install(newer + 1, [fn])
    registry.install(older, [])
    assert registry.get("app-fn-0") is fn


def test_an_event_sent_before_the_first_sync_of_a_passive_app_runs_once_it_registers(
        engine_factory: Callable[..., EngineProc], sdk_factory: Callable[..., SdkApp],
        client_for: Callable[..., Any]) -> None:
    from tests.harness.engine import client_for as make_client

    for mode in ("dev", "production"):
        probe = engine_factory(mode, start=False)
        client = make_client(probe)

        @client.create_function(fn_id="held", trigger=inngest.TriggerEvent(event="app/held"))
        async def held(ctx: inngest.Context) -> str:
            return "ran"

        app = sdk_factory(probe, client, [held], sync=False)
        probe.args += ["-u", app.url, "--passive-sync"]
        probe.start()
        event_id = send_event(probe, "app/held")
        assert probe.get(f"/v1/events/{event_id}/runs").json()["data"] == []
        app.sync(probe)
        run_id = runs_for_event(probe, event_id)[0]
        wait_for_run_status(probe, run_id, "Completed")
        out = probe.output()
        assert "sync of" not in out and "WARNING" not in out, out  # passive: it never PUT the app
