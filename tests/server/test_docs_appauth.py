"""docs/dashboard.md's app server access table says what ``agentcmd.server.access.requirement`` does."""

from __future__ import annotations

import pytest
from tests.harness.doctables import DOCS, table_rows

from agentcmd.mode import Mode
from agentcmd.server.access import requirement
from agentcmd.webauth.policy import Need, Route

DOC = DOCS / "dashboard.md"
ROWS = {
    "workflow views and their twins": Route.PAGE,
    "start a run, cancel a run (forms)": Route.ACTION,
    "`/api/...` (the app API)": Route.API_WRITE,
    "`/api/workflows/inngest` (the SDK)": Route.SDK,
    "`/health`, `/login`, `/_ui/static/`": Route.HEALTH,
}
WORDS = {Need.OPEN: "open", Need.CSRF: "CSRF", Need.SESSION: "login", Need.SESSION_CSRF: "login + CSRF",
         Need.BEARER: "bearer", Need.SIGNATURE: "SDK signature"}
COLUMNS = [(Mode.DEV, True), (Mode.DEV, False), (Mode.PRODUCTION, True), (Mode.PRODUCTION, False)]


def table() -> dict[str, list[str]]:
    return table_rows(DOC, ROWS)


@pytest.mark.parametrize("row", list(ROWS))
def test_the_app_server_access_table_matches_the_policy(row: str) -> None:
    documented = table()[row]
    route = ROWS[row]
    assert documented[:4] == [WORDS[requirement(route, mode, loopback)] for mode, loopback in COLUMNS]
    flagged = {WORDS[requirement(route, mode, True, dashboard_auth=True)] for mode in (Mode.DEV, Mode.PRODUCTION)}
    assert documented[4].removesuffix(" in production") in flagged


def test_the_api_reads_and_writes_need_the_same() -> None:
    for mode, loopback in COLUMNS:
        assert requirement(Route.API_READ, mode, loopback) is requirement(Route.API_WRITE, mode, loopback)
