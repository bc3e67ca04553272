"""In a real Chromium: a production app server bound to 0.0.0.0 asks for the dashboard token.

Skipped with the printed reason where Playwright or Chromium is missing
(never silently). A failing test saves a screenshot of its page under its
tmp dir and prints the path.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.server.conftest import SIGNING_KEY, TOKEN, AppServerFactory

from agentcmd.config.keys import hash_signing_key

CHROMIUM = os.environ.get("AGENTCMD_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture
def page(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "playwright is not installed (pip install -e '.[test]')"
    else:
        reason = "" if os.path.exists(CHROMIUM) else f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if reason:
        print(f"browser test skipped: {reason}", file=sys.stderr)
        pytest.skip(reason)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pg = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
        pg.set_default_timeout(15_000)
        try:
            yield pg
        finally:
            rep = getattr(request.node, "rep_call", None)
            if rep is not None and rep.failed:
                shot = tmp_path / f"{request.node.name}-failure.png"
                pg.screenshot(path=str(shot), full_page=True)
                print(f"\nscreenshot of the failing page ({pg.url}): {shot}", file=sys.stderr)
            browser.close()


def test_a_production_app_server_on_all_interfaces_asks_for_a_login(app_server: AppServerFactory, page: Any) -> None:
    from playwright.sync_api import expect

    server = app_server("production", "0.0.0.0")
    url = server.url
    page.goto(f"{url}/workflows/build")
    expect(page).to_have_url(f"{url}/login?next=%2Fworkflows%2Fbuild")
    expect(page.get_by_role("navigation")).to_have_count(0)  # nothing about the project before a login
    page.get_by_label("Dashboard token").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("login-error")).to_contain_text("agentcmd config dashboard-token")
    page.get_by_label("Dashboard token").fill(TOKEN)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{url}/workflows/build")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Build")
    # The start form posts with the session's CSRF token: the schema refuses {} ("who" is required), nothing runs.
    page.get_by_label("Input (a JSON object)").fill("{}")
    page.get_by_role("button", name="Start run").click()
    expect(page.get_by_role("alert")).to_contain_text("who")
    html = page.content()
    for secret in (TOKEN, SIGNING_KEY, hash_signing_key(SIGNING_KEY)):
        assert secret not in html
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{url}/login")
