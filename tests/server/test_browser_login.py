"""In a real Chromium: a production app server bound to 0.0.0.0 asks for the dashboard token.

Skipped with the printed reason where Playwright or Chromium is missing
(never silently). A failing test saves a screenshot of its page under its
tmp dir and prints the path.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.harness.appserver import SIGNING_KEY, TOKEN, AppServerFactory

from agentcmd.config.keys import hash_signing_key

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(120)]


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
