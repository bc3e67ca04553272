"""In a real Chromium (Playwright, Debian's ``chromium``): a real engine and app server, a real workflow.

* the engine's run page shows steps appearing live, without a reload;
* a run is cancelled from the engine dashboard;
* the app server's workflow views start a run with JSON input and follow it
  phase by phase, with its artifact, and link to the engine's run page;
* a production engine bound to 0.0.0.0 asks for a login.

Where Chromium or Playwright is missing, every test here is skipped with
the reason (shown by ``-ra``), never silently. A failing test saves a
screenshot of its page under its tmp dir and prints the path. With
``AGENTCMD_DOCS_SCREENSHOTS=docs/images`` the tests also write the
screenshots docs/dashboard.md shows.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.engine.dashboard.conftest import Stack
from tests.harness.processes import Child, clean_env, free_port
from tests.polling import wait_for

from agentcmd.config.keys import generate_event_key, generate_signing_key, hash_signing_key

DOCS_DIR = os.environ.get("AGENTCMD_DOCS_SCREENSHOTS")
TOKEN = "browser-test-dashboard-token-42"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(120)]


def docs_shot(pg: Any, name: str) -> None:
    if DOCS_DIR:
        Path(DOCS_DIR).mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(Path(DOCS_DIR) / name), full_page=True)


def test_the_run_page_shows_steps_appearing_live(stack: Stack, page: Any) -> None:
    from playwright.sync_api import expect

    gate = stack.tmp / "gate-live"
    run_id = stack.start_run(gate)
    page.goto(f"{stack.engine}/runs/{run_id}")
    expect(page.get_by_test_id("mode-banner")).to_contain_text("ephemeral: history is lost on restart")
    expect(page.locator('[data-step="prepare/fetch"]')).to_be_visible()
    expect(page.get_by_test_id("run-status")).to_have_text("Running")
    expect(page.locator('[data-step="build/compile"]')).to_have_count(0)
    expect(page.get_by_test_id("waits")).to_contain_text("In progress since")  # the command is running
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    page.locator('[data-step="prepare/fetch"] summary').click()  # opened by the reader: stays open
    gate.touch()
    expect(page.get_by_test_id("run-status")).to_have_text("Completed", timeout=30_000)
    expect(page.locator('[data-step="build/compile"]')).to_contain_text("compiled")
    expect(page.locator('[data-step="build/artifact:report.txt"]')).to_be_visible()
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded instead of updating in place"
    expect(page.locator('[data-step="prepare/fetch"] details')).to_have_attribute("open", "")
    page.locator('[data-step="build/compile"] summary').click()
    docs_shot(page, "dashboard-run.png")
    page.goto(f"{stack.engine}/runs")
    expect(page.locator(f'tr[data-run-id="{run_id}"]')).to_contain_text("Completed")


def test_a_run_is_cancelled_from_the_dashboard(stack: Stack, page: Any) -> None:
    from playwright.sync_api import expect

    gate = stack.tmp / "gate-cancel"
    run_id = stack.start_run(gate)
    try:
        page.goto(f"{stack.engine}/runs/{run_id}")
        expect(page.locator('[data-step="prepare/fetch"]')).to_be_visible()
        page.keyboard.press("Tab")  # the keyboard alone: skip link first, then into the content
        expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.locator("#content")).to_be_focused()
        page.get_by_role("button", name="Cancel run").focus()
        page.keyboard.press("Enter")
        expect(page.get_by_test_id("run-status")).to_have_text("Cancelled")
        expect(page.get_by_role("status").first).to_contain_text("Run cancelled")
        expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)
        run = httpx.get(f"{stack.engine}/v1/runs/{run_id}", timeout=5).json()["data"]
        assert run["status"] == "Cancelled"
    finally:
        gate.touch()  # let the app's command finish if the cancel watcher has not stopped it


def test_the_workflow_views_start_a_run_and_follow_it_phase_by_phase(stack: Stack, page: Any) -> None:
    from playwright.sync_api import expect

    gate = stack.tmp / "gate-views"
    page.goto(f"{stack.app}/")
    page.get_by_role("link", name="Slow build").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Slow build")
    page.get_by_label("Input (a JSON object)").fill(json.dumps({"gate": str(gate)}))
    page.get_by_role("button", name="Start run").click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9A-Z]+$"))
    expect(page.locator('[data-phase="prepare"] [data-step="fetch"]')).to_contain_text("echo fetched sources")
    # The build phase is current while its first step runs (the app's step record), not "pending".
    expect(page.locator('[data-phase="build"] h3')).to_contain_text("current")
    expect(page.locator('[data-phase="build"] [data-step="compile"]')).to_contain_text("Running")
    gate.touch()
    expect(page.get_by_test_id("run-status")).to_have_text("Completed", timeout=30_000)
    expect(page.locator('[data-phase="build"] h3')).to_contain_text("done")
    expect(page.locator('[data-phase="build"] [data-step="compile"]')).to_contain_text("compiled")
    expect(page.get_by_test_id("artifacts")).to_contain_text("report.txt")
    docs_shot(page, "workflow-run.png")
    with page.expect_download() as download:
        page.get_by_role("link", name="report.txt").click()
    assert Path(download.value.path()).read_text() == "build report: all green"
    page.get_by_role("link", name="this run on the engine dashboard").click()
    expect(page.get_by_test_id("run-status")).to_have_text("Completed")
    page.get_by_role("link", name="Runs", exact=True).click()
    expect(page.locator("table.runs tbody tr").first).to_contain_text("Completed")
    docs_shot(page, "dashboard-runs.png")


def test_invalid_json_input_is_shown_on_the_form(stack: Stack, page: Any) -> None:
    from playwright.sync_api import expect

    page.goto(f"{stack.app}/workflows/slow")
    page.get_by_label("Input (a JSON object)").fill("{not json")
    page.get_by_role("button", name="Start run").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid JSON")
    expect(page.get_by_label("Input (a JSON object)")).to_have_value("{not json")


def test_a_production_engine_on_all_interfaces_asks_for_a_login(chromium_path: str, page: Any,
                                                                tmp_path: Path) -> None:
    from playwright.sync_api import expect

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    signing = generate_signing_key()
    env = {**clean_env(tmp_path / "home"), "INNGEST_SIGNING_KEY": signing,
           "INNGEST_EVENT_KEY": generate_event_key(), "AGENTCMD_DASHBOARD_TOKEN": TOKEN}
    engine = Child([sys.executable, "-m", "agentcmd", "engine", "start", "--host", "0.0.0.0", "--port", str(port),
                    "--sqlite-dir", str(tmp_path / "db")], env, tmp_path / "engine.log")
    try:
        wait_for(lambda: httpx.get(f"{url}/health", timeout=5).status_code == 200, 30, "the engine", engine.output,
                 (engine,))
        assert httpx.get(f"{url}/v1/runs/01ANYTHING", timeout=5).status_code == 401
        page.goto(f"{url}/events")
        expect(page).to_have_url(f"{url}/login?next=/events")
        expect(page.get_by_test_id("mode-banner")).to_have_text("production · persistent: history is kept in "
                                                                "the engine database")  # no path before login
        expect(page.get_by_role("navigation")).to_have_count(0)
        page.get_by_label("Dashboard token").fill("wrong")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_test_id("login-error")).to_contain_text("agentcmd config dashboard-token")
        docs_shot(page, "dashboard-login.png")
        page.get_by_label("Dashboard token").fill(TOKEN)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(f"{url}/events")
        expect(page.get_by_role("heading", level=1)).to_have_text("Events")
        expect(page.get_by_test_id("mode-banner")).to_contain_text(str(tmp_path / "db" / "engine.db"))
        with httpx.Client(base_url=url, timeout=10) as client:  # no page or twin shows a key or the token
            client.post("/login", data={"token": TOKEN})
            for path in ("/", "/runs.json", "/events", "/events.json", "/apps", "/apps.json", "/send", "/login"):
                text = client.get(path).text
                for secret in (signing, hash_signing_key(signing), env["INNGEST_EVENT_KEY"], TOKEN):
                    assert secret not in text, path
        page.get_by_role("button", name="Log out").click()
        expect(page).to_have_url(f"{url}/login")
    finally:
        engine.stop()
