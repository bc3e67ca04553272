"""docs/dashboard.md's access table says what ``webauth.policy.requirement`` does."""

from __future__ import annotations

import pytest
from tests.harness.doctables import DOCS, table_rows

from agentcmd.mode import Mode
from agentcmd.webauth import Need, Route, requirement

DOC = DOCS / "dashboard.md"
ROWS = {
    "dashboard pages and twins": Route.PAGE,
    "cancel, rerun, re-sync": Route.ACTION,
    "send event form": Route.SEND_EVENT,
    "`/v1`, `/v0/gql`": Route.API_READ,
    "`POST /e/{key}`": Route.EVENT_INGEST,
    "`/health`, `/login`, static files": Route.HEALTH,
}
WORDS = {Need.OPEN: "open", Need.CSRF: "CSRF", Need.SESSION: "login", Need.SESSION_CSRF: "login + CSRF",
         Need.BEARER: "bearer", Need.EVENT_KEY: "event key", Need.FORBIDDEN: "not offered"}
COLUMNS = [(Mode.DEV, True), (Mode.DEV, False), (Mode.PRODUCTION, True), (Mode.PRODUCTION, False)]


def table() -> dict[str, list[str]]:
    return table_rows(DOC, ROWS)


@pytest.mark.parametrize("row", list(ROWS))
def test_the_access_table_matches_the_policy(row: str) -> None:
    documented = table()[row]
    route = ROWS[row]
    assert documented[:4] == [WORDS[requirement(route, mode, loopback)] for mode, loopback in COLUMNS]
    with_flag = {WORDS[requirement(route, mode, loopback, dashboard_auth=True)] for mode, loopback in COLUMNS}
    assert documented[4].removesuffix(" in production") in with_flag


def test_the_screenshots_the_docs_show_exist() -> None:
    text = DOC.read_text()
    for name in ("dashboard-runs.png", "dashboard-run.png", "workflow-run.png"):
        assert f"images/{name}" in text
        assert (DOC.parent / "images" / name).stat().st_size > 10_000
