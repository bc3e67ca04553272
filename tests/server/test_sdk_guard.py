"""The SDK endpoint's guard on an app server started without INNGEST_SERVE_ORIGIN (by hand, or in-process).

The URL a sync registers is then the local address the request arrived on;
a production PUT naming another host needs the hashed signing key.
"""

from __future__ import annotations

import http.client
import json
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from tests.harness.appserver import SIGNING_KEY, AppServerFactory, bearer

from agentcmd.server.sdkguard import MAX_SIGNATURE_AGE_SECONDS, signature_problem
from agentcmd.signing import sign

SDK = "/api/workflows/inngest"


def put(url: str, host: str | None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=15)
    try:
        conn.putrequest("PUT", SDK, skip_host=host is not None)
        if host is not None:
            conn.putheader("Host", host)
        for name, value in {"Content-Length": "0", **(headers or {})}.items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw.startswith(b"{") else raw.decode()
    finally:
        conn.close()


@pytest.mark.parametrize("host", ["attacker.example:9999", "attacker.example", "127.0.0.1:1"])
def test_production_refuses_a_foreign_host_without_the_key(app_server: AppServerFactory, host: str) -> None:
    served = app_server("production")
    status, body = put(served.url, host)
    # A name the server does not answer to stops at the Host allow-list (421); a loopback name with
    # another port passes it and is refused by the guard (401).
    if status == 421:
        assert body["code"] == "host_not_allowed", body
    else:
        assert status == 401 and "configured" in body["error"], body


def test_production_takes_its_own_address_or_an_authenticated_sync(app_server: AppServerFactory) -> None:
    served = app_server("production")
    for host, headers in ((None, None), ("127.0.0.1:1", bearer())):
        status, body = put(served.url, host, headers)
        assert not (status == 401 and "configured" in str(body)), (host, body)
    status, body = put(served.url, "127.0.0.1:1", {"Authorization": "Bearer " + "0" * 64})
    assert status == 401, body


def test_signature_problems_are_named() -> None:
    now = time.time()
    body = b"{}"
    assert signature_problem([sign(body, SIGNING_KEY, int(now))], now) is None
    assert signature_problem([sign(body, SIGNING_KEY, int(now) - MAX_SIGNATURE_AGE_SECONDS + 5)], now) is None
    assert "no X-Inngest-Signature" in (signature_problem([], now) or "")
    assert "more than one" in (signature_problem(["t=1&s=a", "t=2&s=b"], now) or "")
    assert "no timestamp" in (signature_problem(["s=abc"], now) or "")
    assert "no timestamp" in (signature_problem(["t=0&s=abc"], now) or "")
    assert "no timestamp" in (signature_problem(["t=-5&s=abc"], now) or "")
    assert "3600 s old" in (signature_problem([f"t={int(now) - 3600}&s=abc"], now) or "")
    assert "in the future" in (signature_problem([f"t={int(now) + 3600}&s=abc"], now) or "")
