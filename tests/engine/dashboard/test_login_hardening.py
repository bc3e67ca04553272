"""The engine dashboard's login against an attacker, on a real ``agentcmd engine dev --dashboard-auth``.

Each test starts the engine as a user would (the real uvicorn setup, so a
header uvicorn itself believes would show), and talks to it from distinct
loopback source addresses (127.0.0.N) where it needs distinct clients:

* forged ``X-Forwarded-For`` does not reset the per-client limit unless the
  peer is a configured trusted proxy;
* many failing clients never lock the right token out for a fresh client;
* a logout revokes the session server-side, also across a restart;
* the session cookie is ``Secure`` when a trusted proxy says https or the
  public URL is https, and not on plain-http loopback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.harness.processes import Spawned, free_port
from tests.polling import wait_for

TOKEN = "dash-token-for-hardening-tests-0123456789"
Spawn = Callable[..., Spawned]


def start_engine(spawn: Spawn, **env: str) -> tuple[str, Spawned]:
    port = free_port()
    child = spawn("engine", "dev", "--port", str(port), "--no-discovery", "--dashboard-auth",
                  env={"AGENTCMD_DASHBOARD_TOKEN": TOKEN, **env})
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: httpx.get(f"{url}/health", timeout=2).status_code == 200, 30, "the engine", child.output)
    return url, child


def client_from(url: str, source: str = "127.0.0.1", **kwargs: Any) -> httpx.Client:
    """A client whose connections come from ``source`` (any 127.0.0.N is this machine on Linux)."""
    return httpx.Client(base_url=url, timeout=10, transport=httpx.HTTPTransport(local_address=source), **kwargs)


def login(client: httpx.Client, token: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return client.post("/login", data={"token": token, "next": "/runs"}, headers=headers or {})


def test_forged_forwarded_for_does_not_reset_the_limit_without_a_trusted_proxy(spawn: Spawn) -> None:
    url, _ = start_engine(spawn)
    with client_from(url) as guesser:
        statuses = [login(guesser, "guess", {"X-Forwarded-For": f"198.51.100.{i}"}).status_code
                    for i in range(6)]
        assert statuses == [401] * 5 + [429]
        again = login(guesser, TOKEN, {"X-Forwarded-For": "198.51.100.99"})
        assert again.status_code == 429 and int(again.headers["retry-after"]) > 0


def test_many_failing_clients_never_lock_the_right_token_out(spawn: Spawn) -> None:
    url, _ = start_engine(spawn)
    for n in range(2, 12):  # 10 addresses x 5 failures = 50 a minute: the old global lockout's threshold
        with client_from(url, f"127.0.0.{n}") as guesser:
            assert [login(guesser, "guess").status_code for _ in range(5)] == [401] * 5
    with client_from(url, "127.0.0.2") as guesser:
        assert login(guesser, TOKEN).status_code == 429  # a limited client stays limited
    with client_from(url, "127.0.0.100") as owner:
        ok = login(owner, TOKEN)
        assert ok.status_code == 303 and ok.headers["location"] == "/runs"
        assert owner.get("/runs").status_code == 200
    with client_from(url, "127.0.0.101") as other:  # during the attack: one failure, then wait
        assert login(other, "typo").status_code == 401
        assert login(other, TOKEN).status_code == 429


def test_a_trusted_proxy_names_the_client_and_the_limit_follows_it(spawn: Spawn) -> None:
    url, _ = start_engine(spawn, AGENTCMD_TRUSTED_PROXIES="127.0.0.1")
    with client_from(url) as proxy:
        guesser = {"X-Forwarded-For": "203.0.113.9"}
        assert [login(proxy, "guess", guesser).status_code for _ in range(5)] == [401] * 5
        assert login(proxy, TOKEN, guesser).status_code == 429
        # A client cannot pick another identity by prepending its own entry: the proxy appends the real one.
        assert login(proxy, TOKEN, {"X-Forwarded-For": "192.0.2.1, 203.0.113.9"}).status_code == 429
        assert login(proxy, TOKEN, {"X-Forwarded-For": "198.51.100.7"}).status_code == 303


def _session_cookie(response: httpx.Response) -> str:
    return response.cookies["agentcmd_session"]


def test_logout_revokes_the_session_for_every_copy_of_the_cookie_and_across_a_restart(
        spawn: Spawn, tmp_path: Path) -> None:
    url, child = start_engine(spawn)
    with client_from(url) as first, client_from(url) as second:
        a, b = _session_cookie(login(first, TOKEN)), _session_cookie(login(second, TOKEN))
        assert first.post("/logout").status_code == 303
    with client_from(url, cookies={"agentcmd_session": a}) as stolen:
        out = stolen.get("/runs")
        assert out.status_code == 303 and out.headers["location"].startswith("/login")
    with client_from(url, cookies={"agentcmd_session": b}) as still:
        assert still.get("/runs").status_code == 200
    assert child.stop() == 0
    url, _ = start_engine(spawn)  # the same AGENTCMD_HOME: the revocation is on disk
    with client_from(url, cookies={"agentcmd_session": a}) as stolen:
        assert stolen.get("/runs").status_code == 303
    with client_from(url, cookies={"agentcmd_session": b}) as still:
        assert still.get("/runs").status_code == 200


def _set_cookie(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    return next(v for k, v in response.headers.multi_items() if k == "set-cookie" and "agentcmd_session" in v)


def test_plain_http_loopback_gets_no_secure_cookie_and_untrusted_forwarded_proto_is_ignored(spawn: Spawn) -> None:
    url, _ = start_engine(spawn)
    with client_from(url) as browser:
        assert "secure" not in _set_cookie(login(browser, TOKEN)).lower()
        assert browser.get("/runs").status_code == 200  # the login works on plain http
    with client_from(url) as browser:
        forged = login(browser, TOKEN, {"X-Forwarded-Proto": "https"})
        assert "secure" not in _set_cookie(forged).lower()


def test_the_cookie_is_secure_behind_a_trusted_tls_proxy_on_another_address(spawn: Spawn) -> None:
    url, _ = start_engine(spawn, AGENTCMD_TRUSTED_PROXIES="127.0.0.2")
    with client_from(url, "127.0.0.2") as proxy:
        https = login(proxy, TOKEN, {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.1"})
        assert "secure" in _set_cookie(https).lower()
        plain = login(proxy, TOKEN, {"X-Forwarded-Proto": "http", "X-Forwarded-For": "198.51.100.1"})
        assert "secure" not in _set_cookie(plain).lower()
    with client_from(url, "127.0.0.3") as not_a_proxy:
        assert "secure" not in _set_cookie(login(not_a_proxy, TOKEN, {"X-Forwarded-Proto": "https"})).lower()


def test_a_public_https_url_makes_the_cookie_secure(spawn: Spawn) -> None:
    url, _ = start_engine(spawn, AGENTCMD_PUBLIC_URL="https://agentcmd.example.com")
    with client_from(url) as browser:
        assert "secure" in _set_cookie(login(browser, TOKEN)).lower()


@pytest.mark.parametrize("value", ["not-an-address", "10.0.0.0/33"])
def test_a_bad_trusted_proxies_setting_stops_the_engine_with_the_fix(value: str, spawn: Spawn) -> None:
    child = spawn("engine", "dev", "--port", str(free_port()), "--no-discovery",
                  env={"AGENTCMD_TRUSTED_PROXIES": value})
    assert child.proc.wait(30) == 2
    out = child.output()
    assert "AGENTCMD_TRUSTED_PROXIES" in out and "Traceback" not in out
