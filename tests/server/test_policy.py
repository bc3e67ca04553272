"""The app server's policy as pure functions: route kinds, what each needs per mode x bind, startup checks."""

from __future__ import annotations

import pytest
from tests.harness.keys import ENGINE_SIGNING_KEY

from agentcmd.errors import ConfigError, InvalidSigningKeyError
from agentcmd.mode import Mode
from agentcmd.server import SERVE_PATH
from agentcmd.server.access import AppAuth, check_bind, check_secrets, classify, cross_site, requirement, sdk_mode
from agentcmd.webauth.policy import Need, Route

STRONG_KEY = ENGINE_SIGNING_KEY

DEV, PROD = Mode.DEV, Mode.PRODUCTION


@pytest.mark.parametrize(("method", "path", "kind"), [
    ("GET", "/health", Route.HEALTH),
    ("GET", SERVE_PATH, Route.SDK),
    ("POST", SERVE_PATH, Route.SDK),
    ("PUT", SERVE_PATH, Route.SDK),
    ("GET", "/_ui/static/dashboard.css", Route.STATIC),
    ("GET", "/login", Route.LOGIN),
    ("POST", "/logout", Route.LOGIN),
    ("GET", "/api/workflows", Route.API_READ),
    ("GET", "/api/runs/01X", Route.API_READ),
    ("POST", "/api/workflows/build/runs", Route.API_WRITE),
    ("POST", "/api/runs/01X/cancel", Route.API_WRITE),
    ("POST", "/api/events", Route.API_WRITE),
    ("GET", "/api/workflows/inngestx", Route.API_READ),  # only the exact SDK path is the SDK's
    ("POST", "/api/webhooks/github", Route.WEBHOOK),
    ("POST", "/api/webhooks/linear", Route.WEBHOOK),
    ("POST", "/api/webhooks/generic/deploy", Route.WEBHOOK),
    ("GET", "/api/webhooks/github", Route.API_READ),  # only the signed POSTs are exempt from the bearer
    ("POST", "/api/webhooks/gitlab", Route.API_WRITE),
    ("POST", "/api/webhooks/generic/a/b", Route.API_WRITE),
    ("POST", "/api/webhooks/github/x", Route.API_WRITE),
    ("GET", "/", Route.PAGE),
    ("GET", "/index.json", Route.PAGE),
    ("GET", "/runs/01X/artifacts/report.txt", Route.PAGE),
    ("GET", "/openapi.json", Route.PAGE),
    ("GET", "/anything/new", Route.PAGE),  # closed by default
    ("POST", "/workflows/build/start", Route.ACTION),
    ("POST", "/runs/01X/cancel", Route.ACTION),
    ("DELETE", "/anything/new", Route.ACTION),
])
def test_every_request_has_a_route_kind(method: str, path: str, kind: Route) -> None:
    assert classify(method, path) is kind


# (route, dev loopback, dev beyond loopback, production loopback, production beyond loopback, --dashboard-auth in
# dev / in production)
TABLE = [
    (Route.HEALTH, "open", "open", "open", "open", "open", "open"),
    (Route.STATIC, "open", "open", "open", "open", "open", "open"),
    (Route.LOGIN, "open", "open", "open", "open", "open", "open"),
    (Route.SDK, "open", "open", "signature", "signature", "open", "signature"),
    (Route.PAGE, "open", "open", "open", "session", "session", "session"),
    (Route.ACTION, "csrf", "csrf", "csrf", "session+csrf", "session+csrf", "session+csrf"),
    (Route.API_READ, "open", "open", "bearer", "bearer", "bearer", "bearer"),
    (Route.API_WRITE, "open", "open", "bearer", "bearer", "bearer", "bearer"),
    (Route.WEBHOOK, "signature", "signature", "signature", "signature", "signature", "signature"),
]


@pytest.mark.parametrize("row", TABLE, ids=[r[0].value for r in TABLE])
def test_what_each_route_needs_per_mode_and_bind(row: tuple[str, ...]) -> None:
    route, dev_lo, dev_remote, prod_lo, prod_remote, dev_flag, prod_flag = row
    got = (requirement(Route(route), DEV, True), requirement(Route(route), DEV, False),
           requirement(Route(route), PROD, True), requirement(Route(route), PROD, False),
           requirement(Route(route), DEV, True, dashboard_auth=True),
           requirement(Route(route), PROD, True, dashboard_auth=True))
    assert tuple(n.value for n in got) == (dev_lo, dev_remote, prod_lo, prod_remote, dev_flag, prod_flag)
    assert all(isinstance(n, Need) for n in got)


def test_the_mode_is_the_sdks() -> None:
    assert sdk_mode({"INNGEST_DEV": "1"}) is DEV
    assert sdk_mode({"INNGEST_DEV": "http://127.0.0.1:8288"}) is DEV
    for off in ({}, {"INNGEST_DEV": ""}, {"INNGEST_DEV": "0"}, {"INNGEST_DEV": "false"}):
        assert sdk_mode(off) is PROD, off


def test_dev_beyond_loopback_is_refused_unless_allowed_and_then_warns() -> None:
    assert check_bind(DEV, "127.0.0.1", False) is None
    assert check_bind(PROD, "0.0.0.0", False) is None
    with pytest.raises(ConfigError) as refused:
        check_bind(DEV, "0.0.0.0", False)
    assert refused.value.exit_code == 2
    assert "dev app server" in refused.value.what and "--allow-remote-dev" in (refused.value.fix or "")
    warning = check_bind(DEV, "0.0.0.0", True)
    assert warning is not None and warning.startswith("warning:") and "no authentication" in warning


def test_a_locked_server_needs_a_token_and_a_signing_key() -> None:
    check_secrets(PROD, "127.0.0.1")  # open: nothing needed
    with pytest.raises(ConfigError) as no_token:
        check_secrets(PROD, "0.0.0.0", token=None, signing_key=STRONG_KEY)
    assert "no dashboard token" in no_token.value.what and "agentcmd install" in (no_token.value.fix or "")
    with pytest.raises(ConfigError) as no_key:
        check_secrets(DEV, "127.0.0.1", dashboard_auth=True, token="t", signing_key=" ")
    assert "no signing key" in no_key.value.what and "agentcmd install" in (no_key.value.fix or "")
    check_secrets(PROD, "0.0.0.0", token="t", signing_key=STRONG_KEY)


def test_a_malformed_signing_key_is_refused_with_the_fix_not_a_traceback() -> None:
    with pytest.raises(InvalidSigningKeyError) as bad:
        AppAuth.build(PROD, "0.0.0.0", token="t", signing_key="local-prod-signing")
    assert "not hex" in bad.value.what and "agentcmd install" in (bad.value.fix or "")
    assert "local-prod-signing" not in bad.value.what


@pytest.mark.parametrize(("headers", "host", "refused"), [
    ({}, "127.0.0.1:4100", False),  # the CLI, curl, scripts
    ({"origin": "http://127.0.0.1:4100"}, "127.0.0.1:4100", False),
    ({"origin": "http://evil.example"}, "127.0.0.1:4100", True),
    ({"origin": "null"}, "127.0.0.1:4100", True),
    ({"sec-fetch-site": "cross-site"}, "127.0.0.1:4100", True),
    ({"sec-fetch-site": "same-site", "origin": "http://127.0.0.1:8288"}, "127.0.0.1:4100", True),
    ({"sec-fetch-site": "same-origin", "origin": "http://127.0.0.1:4100"}, "127.0.0.1:4100", False),
])
def test_a_browser_on_another_site_is_recognised(headers: dict[str, str], host: str, refused: bool) -> None:
    assert cross_site(headers, host) is refused
