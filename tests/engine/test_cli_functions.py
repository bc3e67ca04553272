"""``agentcmd functions list|pause|unpause|replay`` against a real production engine and SDK app."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import pytest
from tests.harness.engine import SIGNING_KEY
from tests.harness.processes import run_cli

from agentcmd.cli.functions import parse_when
from agentcmd.errors import InputError

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def test_times_are_relative_now_or_iso() -> None:
    assert parse_when("2h", "--from", NOW) == "2026-11-25T10:00:00Z"
    assert parse_when("now", "--to", NOW) == "2026-11-25T12:00:00Z"
    assert parse_when("2026-11-25T09:30", "--from", NOW) == "2026-11-25T09:30:00Z"
    assert parse_when("2026-11-25T09:30+01:00", "--from", NOW) == "2026-11-25T08:30:00Z"
    with pytest.raises(InputError, match="--from 'yesterday' is not a time"):
        parse_when("yesterday", "--from", NOW)


def test_pause_unpause_and_replay_from_the_command_line(
        engine_factory: Callable[..., Any], client_for: Callable[..., Any], sdk_factory: Callable[..., Any],
        send_event: Callable[..., str], runs_for_event: Callable[..., list[str]],
        wait_for_run_status: Callable[..., dict[str, Any]]) -> None:
    import inngest

    engine = engine_factory("production")
    client = client_for(engine)

    @client.create_function(fn_id="flaky", trigger=inngest.TriggerEvent(event="cli/flaky"), retries=0)
    async def flaky(ctx: inngest.Context) -> str:
        if ctx.event.data.get("fail"):
            raise inngest.NonRetriableError("asked to fail")
        return "ok"

    sdk_factory(engine, client, [flaky])
    env = {"AGENTCMD_ENGINE_URL": engine.url, "INNGEST_SIGNING_KEY": SIGNING_KEY}
    slug = "test-app-flaky"

    listed = run_cli("functions", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert f"{slug}  test-app  active" in listed.stdout

    paused = run_cli("functions", "pause", slug, env=env)
    assert paused.returncode == 0 and f"{slug}: paused" in paused.stdout, paused.stderr
    assert f"{slug}  test-app  paused" in run_cli("functions", "list", env=env).stdout
    skipped = send_event(engine, "cli/flaky")
    deadline = time.monotonic() + 10                      # matching is asynchronous: wait for the skip
    while not engine.get(f"/events/{skipped}.json").json()["skips"]:
        assert time.monotonic() < deadline, "the event sent while paused was never matched"
        time.sleep(0.05)
    unpaused = run_cli("functions", "unpause", slug, env=env)
    assert unpaused.returncode == 0 and f"{slug}: unpaused" in unpaused.stdout, unpaused.stderr
    assert engine.get(f"/v1/events/{skipped}/runs").json()["data"] == []

    [failed] = runs_for_event(engine, send_event(engine, "cli/flaky", {"fail": True}))
    wait_for_run_status(engine, failed, "Failed")
    [passed] = runs_for_event(engine, send_event(engine, "cli/flaky"))
    wait_for_run_status(engine, passed, "Completed")

    replayed = run_cli("functions", "replay", slug, "--from", "1h", "--status", "Failed", "--json", env=env)
    assert replayed.returncode == 0, replayed.stderr
    assert '"replayed": 1' in replayed.stdout
    again = [line.strip().strip('",') for line in replayed.stdout.splitlines() if line.strip().startswith('"01')]
    assert len(again) == 1 and again[0] != failed
    assert engine.get(f"/v1/runs/{again[0]}").json()["data"]["replay_of"] == failed


def test_bad_input_and_a_missing_engine_say_what_to_do(engine_factory: Callable[..., Any]) -> None:
    engine = engine_factory("production")
    env = {"AGENTCMD_ENGINE_URL": engine.url, "INNGEST_SIGNING_KEY": SIGNING_KEY}
    missing = run_cli("functions", "pause", "no-such-fn", env=env)
    assert missing.returncode == 1 and "no function 'no-such-fn'" in missing.stderr
    assert "GET /v1/functions" in missing.stderr
    bad = run_cli("functions", "replay", "x", "--from", "soon", env=env)
    assert bad.returncode == 2 and "--from 'soon' is not a time" in bad.stderr
    no_key = run_cli("functions", "list", env={"AGENTCMD_ENGINE_URL": engine.url, "INNGEST_SIGNING_KEY": ""})
    assert no_key.returncode != 0 and "needs a bearer" in no_key.stderr
    down = run_cli("functions", "list", env={"AGENTCMD_ENGINE_URL": "http://127.0.0.1:9", "INNGEST_SIGNING_KEY": ""})
    assert down.returncode != 0 and "the engine is not reachable at http://127.0.0.1:9" in down.stderr
    assert "AGENTCMD_ENGINE_URL" in down.stderr
