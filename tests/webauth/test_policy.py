"""The access policy as one table: route kind x mode x bind x --dashboard-auth -> what a request needs."""

from __future__ import annotations

import pytest

from agentcmd.errors import ConfigError
from agentcmd.mode import Mode
from agentcmd.webauth import Need, Route, check_bind, classify, is_loopback_host, requirement

DEV, PROD = Mode.DEV, Mode.PRODUCTION
OP, C, S, SC, B, EK, SIG, F = (Need.OPEN, Need.CSRF, Need.SESSION, Need.SESSION_CSRF, Need.BEARER, Need.EVENT_KEY,
                               Need.SIGNATURE, Need.FORBIDDEN)

# Columns: dev+loopback, dev+remote (--allow-remote-dev), prod+loopback, prod+remote,
#          then the same four with --dashboard-auth.
TABLE: dict[Route, tuple[Need, ...]] = {
    Route.HEALTH:       (OP, OP, OP, OP, OP, OP, OP, OP),
    Route.STATIC:       (OP, OP, OP, OP, OP, OP, OP, OP),
    Route.LOGIN:        (OP, OP, OP, OP, OP, OP, OP, OP),
    Route.PAGE:         (OP, OP, OP, S, S, S, S, S),
    Route.ACTION:       (C, C, C, SC, SC, SC, SC, SC),
    Route.SEND_EVENT:   (C, C, F, SC, SC, SC, SC, SC),
    Route.API_READ:     (OP, OP, B, B, OP, OP, B, B),
    Route.API_WRITE:    (OP, OP, B, B, OP, OP, B, B),
    Route.EVENT_INGEST: (OP, OP, EK, EK, OP, OP, EK, EK),
    Route.SDK:          (OP, OP, SIG, SIG, OP, OP, SIG, SIG),
    Route.WEBHOOK:      (SIG, SIG, SIG, SIG, SIG, SIG, SIG, SIG),
}
COLUMNS = [(mode, loopback, auth) for auth in (False, True) for mode in (DEV, PROD) for loopback in (True, False)]


@pytest.mark.parametrize("route", list(Route))
def test_policy_table(route: Route) -> None:
    got = tuple(requirement(route, mode, loopback, auth) for mode, loopback, auth in COLUMNS)
    assert got == TABLE[route]


def test_table_covers_every_route() -> None:
    assert set(TABLE) == set(Route)


@pytest.mark.parametrize(("method", "path", "route"), [
    ("GET", "/health", Route.HEALTH),
    ("GET", "/_dashboard/static/dashboard.css", Route.STATIC),
    ("GET", "/login", Route.LOGIN),
    ("POST", "/login", Route.LOGIN),
    ("POST", "/logout", Route.LOGIN),
    ("GET", "/", Route.PAGE),
    ("GET", "/runs", Route.PAGE),
    ("GET", "/runs.json", Route.PAGE),
    ("GET", "/runs/01ABC", Route.PAGE),
    ("GET", "/events/01ABC.json", Route.PAGE),
    ("GET", "/apps", Route.PAGE),
    ("GET", "/send", Route.PAGE),
    ("POST", "/runs/01ABC/cancel", Route.ACTION),
    ("POST", "/runs/01ABC/rerun", Route.ACTION),
    ("POST", "/apps/agentcmd/resync", Route.ACTION),
    ("POST", "/send", Route.SEND_EVENT),
    ("GET", "/v1/runs/01ABC", Route.API_READ),
    ("GET", "/v1/events/01ABC/runs", Route.API_READ),
    ("POST", "/v0/gql", Route.API_READ),
    ("DELETE", "/v1/runs/01ABC", Route.API_WRITE),
    ("POST", "/e/somekey", Route.EVENT_INGEST),
    ("PUT", "/fn/register", Route.SDK),
])
def test_classify(method: str, path: str, route: Route) -> None:
    assert classify(method, path) is route


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.1.2.3", True), ("localhost", True), ("::1", True), ("[::1]", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.10", False), ("example.com", False), ("", False),
])
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_dev_refuses_a_remote_bind_without_allow_remote_dev() -> None:
    with pytest.raises(ConfigError) as err:
        check_bind(DEV, "0.0.0.0", allow_remote_dev=False)
    assert "--allow-remote-dev" in (err.value.fix or "")
    assert err.value.exit_code == 2


def test_dev_remote_bind_with_allow_remote_dev_warns() -> None:
    warning = check_bind(DEV, "0.0.0.0", allow_remote_dev=True)
    assert warning is not None and "no authentication" in warning


@pytest.mark.parametrize(("mode", "host"), [(DEV, "127.0.0.1"), (PROD, "127.0.0.1"), (PROD, "0.0.0.0")])
def test_binds_that_need_no_flag(mode: Mode, host: str) -> None:
    assert check_bind(mode, host, allow_remote_dev=False) is None
