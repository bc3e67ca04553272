"""``define_workflow(cron=..., timezone=...)``: checked at import, synced to the engine as cron triggers
next to the event trigger, and shown (schedules, zone, next runs) by the API and the workflow page."""

from __future__ import annotations

import html
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from tests.polling import wait_for
from tests.workflows.fakeengine import ServerThread

from agentcmd import define_workflow
from agentcmd.engine.triggers import next_cron_ms
from agentcmd.workflows import schedules
from agentcmd.workflows.define import WorkflowDefinitionError


async def body(ctx: Any, step: Any) -> None:
    return None


@pytest.mark.parametrize("kwargs, value, fix", [
    ({"cron": "0 9 * *"}, "'0 9 * *' has 4 fields", 'cron="0 9 * * 1-5"'),
    ({"cron": "0 9 * * * *"}, "has 6 fields", 'cron="0 9 * * 1-5"'),
    ({"cron": "61 9 * * 1-5"}, "'61 9 * * 1-5' is not a valid cron", 'cron="0 9 * * 1-5"'),
    ({"cron": "every monday"}, "'every monday' has 2 fields", 'cron="0 9 * * 1-5"'),
    ({"cron": ["0 9 * * 1-5", "0 9 * * mon-zzz"]}, "'0 9 * * mon-zzz' is not a valid", 'cron="0 9 * * 1-5"'),
    ({"cron": []}, "non-empty list", 'cron="0 9 * * 1-5"'),
    ({"cron": 5}, "got 5", 'cron="0 9 * * 1-5"'),
    ({"cron": ["0 9 * * *", "0  9 * * *"]}, "listed twice", "once"),
    ({"cron": "TZ=Europe/Paris 0 9 * * *"}, "carries its own time zone", 'timezone="Europe/Paris"'),
    ({"cron": "0 9 * * 1-5", "timezone": "Europe/Pariss"}, "unknown timezone 'Europe/Pariss'", "IANA"),
    ({"cron": "0 9 * * 1-5", "timezone": "../etc/passwd"}, "unknown timezone '../etc/passwd'", "IANA"),
    ({"cron": "0 9 * * 1-5", "timezone": "Europe/Paris 0"}, "timezone must be a time zone name", "IANA"),
    ({"timezone": "Europe/Paris"}, "timezone='Europe/Paris' is given without a cron", "add cron="),
    ({"cron": "0 9 * * *", "args_schema": {"type": "object", "required": ["who"],
                                          "properties": {"who": {"type": "string"}}}},
     "a scheduled run has an empty input, which args_schema refuses", "optional"),
])
def test_bad_schedules_are_refused_at_import_naming_the_workflow_and_the_value(
        kwargs: dict[str, Any], value: str, fix: str) -> None:
    with pytest.raises(WorkflowDefinitionError) as info:
        define_workflow("nightly", **kwargs)(body)
    assert "workflow 'nightly'" in info.value.what and value in info.value.what, info.value.what
    assert fix in info.value.fix, info.value.fix


def test_a_scheduled_workflow_keeps_its_event_trigger_and_sends_the_zone_as_a_tz_prefix() -> None:
    wf = define_workflow("report", cron=["0 9 * * 1-5", "@daily"], timezone="Europe/Paris")(body)
    config = wf.get_config("http://127.0.0.1:4100/api/workflows/inngest").main.to_dict()
    assert [t.get("event") or t.get("cron") for t in config["triggers"]] == [
        "agentcmd/workflow.report", "TZ=Europe/Paris 0 9 * * 1-5", "TZ=Europe/Paris @daily"]
    plain = define_workflow("plain", cron="*/15 * * * *")(body)
    assert [t.get("event") or t.get("cron") for t in plain.get_config("http://x").main.to_dict()["triggers"]] == [
        "agentcmd/workflow.plain", "*/15 * * * *"]
    assert plain.describe()["timezone"] is None


def test_next_runs_are_read_in_the_zone_across_a_dst_change_and_merge_every_schedule() -> None:
    friday = datetime(2026, 3, 27, 10, 0, tzinfo=UTC)       # Paris moves to summer time on Sunday 29 March
    assert schedules.next_runs(("0 9 * * 1-5",), "Europe/Paris", friday) == [
        "2026-03-30T07:00:00Z", "2026-03-31T07:00:00Z", "2026-04-01T07:00:00Z"]
    assert schedules.next_runs(("0 9 * * 1-5",), None, friday) == [
        "2026-03-30T09:00:00Z", "2026-03-31T09:00:00Z", "2026-04-01T09:00:00Z"]
    assert schedules.next_runs(("0 9 * * 1-5", "0 8 * * 6"), "Europe/Paris", friday) == [
        "2026-03-28T07:00:00Z", "2026-03-30T07:00:00Z", "2026-03-31T07:00:00Z"]
    assert schedules.next_runs((), None, friday) == []


def test_describe_lists_the_schedules_the_zone_and_the_next_three_runs_in_the_future() -> None:
    wf = define_workflow("report", cron="0 9 * * 1-5", timezone="Europe/Paris")(body)
    described = wf.describe()
    assert described["cron"] == ["0 9 * * 1-5"] and described["timezone"] == "Europe/Paris"
    times = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in described["next_runs"]]
    assert len(times) == 3 and times == sorted(times) and times[0] > datetime.now(UTC)
    for t in times:
        local = t.astimezone(ZoneInfo("Europe/Paris"))
        assert (local.hour, local.minute) == (9, 0) and local.weekday() < 5
    unscheduled = define_workflow("manual")(body).describe()
    assert (unscheduled["cron"], unscheduled["timezone"], unscheduled["next_runs"]) == ([], None, [])


REPORT = '''
from agentcmd import define_workflow

@define_workflow(id="report", phases=["write"], retries=0, cron=["0 9 * * 1-5", "30 17 * * 5"],
                 timezone="Europe/Paris")
async def report(ctx, step):
    with step.phase("write"):
        r = await step.cli("say", "echo report")
    return r.stdout.strip()
'''

MANUAL = '''
from agentcmd import define_workflow

@define_workflow(id="manual")
async def manual(ctx, step):
    return None
'''


@pytest.fixture
def real(spawn: Any, port: int, project: Any, write_workflow: Any,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """A real dev engine and the real app server serving REPORT, synced by the SDK's PUT."""
    from agentcmd.server import SERVE_PATH
    from agentcmd.server.app import create_app
    from agentcmd.workflows.context import set_runtime

    write_workflow("report.py", REPORT)
    write_workflow("manual.py", MANUAL)
    engine_url = f"http://127.0.0.1:{port}"
    engine = spawn("engine", "dev", "--host", "127.0.0.1", "--port", str(port), "--no-discovery",
                   "--poll-interval", "0.2")
    wait_for(lambda: httpx.get(f"{engine_url}/health", timeout=2).status_code == 200, 30,
             "the engine to answer /health", engine.output)
    monkeypatch.setenv("INNGEST_DEV", "1")
    monkeypatch.setenv("INNGEST_BASE_URL", engine_url)
    set_runtime(None)
    server = ServerThread(create_app(project, entry_points=False)).start()
    assert httpx.put(server.url + SERVE_PATH, timeout=30).status_code == 200
    yield server.url, engine_url
    server.stop()


def test_the_engine_gets_the_cron_triggers_with_the_zone_and_agrees_on_the_next_run(
        real: tuple[str, str]) -> None:
    app_url, engine_url = real
    functions = wait_for(lambda: httpx.get(f"{engine_url}/v1/functions", timeout=5).json()["data"], 15,
                         "the app to be synced")
    [fn] = [f for f in functions if f["slug"] == "agentcmd-report"]
    triggers = fn["config"]["triggers"]
    assert [t.get("event") or t.get("cron") for t in triggers] == [
        "agentcmd/workflow.report", "TZ=Europe/Paris 0 9 * * 1-5", "TZ=Europe/Paris 30 17 * * 5"]

    described = httpx.get(f"{app_url}/api/workflows/report", timeout=30).json()["data"]
    assert described["cron"] == ["0 9 * * 1-5", "30 17 * * 5"] and described["timezone"] == "Europe/Paris"
    # The engine reads the TZ= prefix as describe() does: its next tick is the first of next_runs.
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    engine_next = min(next_cron_ms(t["cron"], now_ms) for t in triggers if t.get("cron"))
    assert datetime.fromtimestamp(engine_next / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") == \
        described["next_runs"][0]

    # Still startable by hand through its event trigger.
    started = httpx.post(f"{app_url}/api/workflows/report/runs", json={"input": {}}, timeout=60)
    assert started.status_code == 202, started.text
    run_id = started.json()["data"]["run_id"]
    run = wait_for(lambda: (r := httpx.get(f"{app_url}/api/runs/{run_id}", timeout=10).json()["data"])
                   ["status"] == "Completed" and r, 30, "the run to complete")
    assert run["output"] == "report"

    page = httpx.get(f"{app_url}/workflows/report", timeout=30)
    assert page.status_code == 200
    row = html.unescape(page.text.split('data-testid="workflow-schedule">', 1)[1].split("</dd>", 1)[0])
    assert "<code>0 9 * * 1-5</code>, <code>30 17 * * 5</code> (Europe/Paris)" in row
    for t in described["next_runs"]:
        assert f'<time datetime="{t}">' in row
    twin = httpx.get(f"{app_url}/workflows/report.json", timeout=30).json()
    assert twin["workflow"]["cron"] == described["cron"] and twin["workflow"]["timezone"] == "Europe/Paris"
    assert len(twin["workflow"]["next_runs"]) == 3
    manual = httpx.get(f"{app_url}/workflows/manual", timeout=30)
    assert manual.status_code == 200 and "workflow-schedule" not in manual.text


def test_a_due_tick_runs_the_workflow_with_an_empty_input_and_the_timer_event(
        engine_factory: Any, sdk_factory: Any, client_for: Any, wait_for_run_status: Any, project: Any) -> None:
    """Production engine (a SQLite queue): make the cron row due now; the run's input is not the timer data."""
    from agentcmd.workflows.context import Runtime, set_runtime

    set_runtime(Runtime.from_settings(project))
    engine = engine_factory("production")

    @define_workflow("tick", cron="0 9 * * 1-5", timezone="Europe/Paris", retries=0,
                     args_schema={"type": "object", "additionalProperties": False,
                                  "properties": {"who": {"type": "string", "default": "team"}}})
    async def tick(ctx: Any, step: Any) -> dict[str, Any]:
        return {"input": ctx.input, "event": ctx.event["name"], "cron": ctx.event["data"]["cron"]}

    try:
        sdk_factory(engine, client_for(engine, "agentcmd"), [tick])
        assert engine.sqlite_dir is not None
        with sqlite3.connect(engine.sqlite_dir / "engine.db", timeout=5) as conn:
            [(ready_at,)] = conn.execute("SELECT ready_at FROM queue WHERE kind='cron'").fetchall()
            assert datetime.fromtimestamp(ready_at / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") == \
                tick.describe()["next_runs"][0]           # the engine's first tick is describe()'s
            conn.execute("UPDATE queue SET ready_at=0 WHERE kind='cron'")
        runs = wait_for(lambda: engine.get("/v1/runs").json()["data"], 15, "the tick to start a run")
        run = wait_for_run_status(engine, runs[0]["run_id"], "Completed")
        assert run["output"] == {"input": {}, "event": "inngest/scheduled.timer",
                                 "cron": "TZ=Europe/Paris 0 9 * * 1-5"}
    finally:
        set_runtime(None)


def test_a_tick_due_while_the_engine_was_down_fires_once_after_restart(
        engine_factory: Any, sdk_factory: Any, client_for: Any, wait_for_run_status: Any, project: Any) -> None:
    """Docs' promise ("Schedules"): missed ticks collapse into one run, then the schedule carries on."""
    from agentcmd.workflows.context import Runtime, set_runtime

    set_runtime(Runtime.from_settings(project))
    engine = engine_factory("production")

    @define_workflow("hourly", cron="0 * * * *", timezone="Europe/Paris", retries=0)
    async def hourly(ctx: Any, step: Any) -> str:
        return "ticked"

    try:
        sdk_factory(engine, client_for(engine, "agentcmd"), [hourly])
        assert engine.sqlite_dir is not None
        db = engine.sqlite_dir / "engine.db"
        engine.stop()
        three_days_ago = int(datetime.now(UTC).timestamp() * 1000) - 3 * 86_400_000   # ~72 missed ticks
        with sqlite3.connect(db, timeout=5) as conn:
            conn.execute("UPDATE queue SET ready_at=? WHERE kind='cron'", (three_days_ago,))
        engine.start()
        runs = wait_for(lambda: engine.get("/v1/runs").json()["data"], 15, "the missed tick to start a run")
        assert wait_for_run_status(engine, runs[0]["run_id"], "Completed")["output"] == "ticked"
        with sqlite3.connect(db, timeout=5) as conn:
            rows = conn.execute("SELECT ready_at FROM queue WHERE kind='cron'").fetchall()
        assert len(rows) == 1 and rows[0][0] > datetime.now(UTC).timestamp() * 1000   # next one is ahead
        assert len(engine.get("/v1/runs").json()["data"]) == 1
    finally:
        set_runtime(None)
