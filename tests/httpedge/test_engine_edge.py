"""The engine's HTTP edge against a real ``agentcmd engine dev|start`` (regressions of findings 2, 3, 7, 8, 9).

2. a page on another site could send events and sync apps with ``text/plain`` (no preflight);
3. a rebinding page (``Host: rebind.example``) could use the whole loopback engine;
7. a 300 MB body was read into memory before anything was refused;
8. malformed bodies answered 500 and logged ``POST /e/<the event key> failed``;
9. an event with ``NaN`` was stored, then every event listing answered 500.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.httpedge.rawhttp import chunked, request

REBIND = "rebind.example:4711"


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _events_named(engine: Any, name: str) -> list[dict[str, Any]]:
    r = engine.get(f"/v1/events?name={name}")
    assert r.status_code == 200, r.text
    return list(r.json()["data"])


def test_dev_refuses_events_and_syncs_a_browser_can_send_cross_site(module_engine: Any) -> None:
    """Finding 2: ``text/plain`` (a simple request) and a foreign ``Origin`` are refused; nothing is stored."""
    if module_engine.mode != "dev":
        pytest.skip("production's event API and sync need the event key / signing key")
    url = module_engine.url
    body = json.dumps({"name": "edge/plain", "data": {}})
    plain = httpx.post(f"{url}/e/anything", content=body, headers={"Content-Type": "text/plain"}, timeout=5)
    assert plain.status_code == 415 and "application/json" in plain.json()["hint"], plain.text
    form = httpx.post(f"{url}/e/anything", data={"x": "1"}, timeout=5)
    assert form.status_code == 415
    foreign = httpx.post(f"{url}/e/anything", content=body, timeout=5,
                         headers={"Content-Type": "application/json", "Origin": "https://evil.example"})
    assert foreign.status_code == 403 and foreign.json()["code"] == "forbidden"
    sync = httpx.post(f"{url}/fn/register", content=json.dumps({"url": "http://evil.example/x"}),
                      headers={"Content-Type": "text/plain"}, timeout=5)
    assert sync.status_code == 415
    assert _events_named(module_engine, "edge/plain") == []
    assert all("evil.example" not in str(a) for a in module_engine.get("/v1/apps").json()["data"])
    # Scripts and the SDK (JSON, or a body without a type, no browser headers) still work.
    ok = httpx.post(f"{url}/e/anything", content=body, headers={"Content-Type": "application/json"}, timeout=5)
    assert ok.status_code == 200 and len(_events_named(module_engine, "edge/plain")) == 1


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/e/{key}"), ("GET", "/v1/runs"), ("GET", "/v1/events"), ("GET", "/"), ("GET", "/runs"),
    ("POST", "/v1/functions/x/pause"), ("POST", "/fn/register"), ("GET", "/login"), ("GET", "/health"),
    ("GET", "/metrics"),
])
def test_a_rebinding_host_gets_nothing(module_engine: Any, method: str, path: str) -> None:
    """Finding 3: whatever ``Sec-Fetch-Site`` says, an unknown ``Host`` is 421 before any route runs."""
    headers = {"Host": REBIND, "Origin": f"http://{REBIND}", "Sec-Fetch-Site": "same-origin",
               "Content-Type": "application/json", "Content-Length": "2", **module_engine.headers}
    r = request(module_engine.port, method, path.format(key=module_engine.key), headers, [b"{}"])
    assert r.status, r
    assert r.status == 421, (r.head, r.body)
    assert json.loads(r.body)["code"] == "host_not_allowed"
    assert b"--allowed-host" in r.body


def test_an_allowed_host_is_answered(engine_factory: Any) -> None:
    engine = engine_factory("dev", args=("--allowed-host", "agentcmd.lan"))
    r = request(engine.port, "GET", "/health", {"Host": f"agentcmd.lan:{engine.port}"})
    assert r.status == 200
    assert request(engine.port, "GET", "/health", {"Host": "other.lan"}).status == 421


def test_a_huge_announced_body_is_refused_before_it_is_read(module_engine: Any) -> None:
    """Finding 7: 300 MB announced to /login (no key needed) and to /e: 413 at once, nothing read."""
    for path in ("/login", f"/e/{module_engine.key}", "/fn/register"):
        r = request(module_engine.port, "POST", path, {"Host": "127.0.0.1", "Content-Length": str(300 << 20),
                                                       "Content-Type": "application/json"}, timeout=5)
        assert r.status == 413, (path, r.head)
        assert json.loads(r.body)["code"] == "too_large"


def test_a_streamed_body_past_the_limit_is_cut_off_and_memory_stays_flat(module_engine: Any) -> None:
    """Finding 7: a chunked body is counted as it arrives; the engine does not buffer 60 MB."""
    assert module_engine.proc is not None
    before = _rss_kib(module_engine.proc.pid)
    for path in ("/login", f"/e/{module_engine.key}"):
        r = request(module_engine.port, "POST", path, {"Host": "127.0.0.1", "Transfer-Encoding": "chunked",
                                                       "Content-Type": "application/json"}, chunked(60 << 20))
        assert r.status == 413, (path, r.head)
    grown = _rss_kib(module_engine.proc.pid) - before
    assert grown < 40 * 1024, f"the engine grew by {grown} KiB"


def test_one_event_above_3_mib_is_refused_naming_it(module_engine: Any) -> None:
    big = [{"name": "edge/small"}, {"name": "edge/big", "data": {"blob": "x" * (3 * 1024 * 1024 + 10)}}]
    r = httpx.post(f"{module_engine.url}/e/{module_engine.key}", json=big, timeout=30)
    assert r.status_code == 413 and "event 1 (edge/big)" in r.json()["error"], r.text
    assert _events_named(module_engine, "edge/small") == []   # all or nothing


MALFORMED = [
    (b"\xff\xfe\xfa", "not valid UTF-8"),
    (os.urandom(64).replace(b"{", b"").replace(b"[", b"") + b"\xff", "not valid UTF-8"),
    (b"[" * 50_000 + b"]" * 50_000, "too deeply"),
    (b'{"name": "x", "data": ' * 300 + b"1" + b"}" * 300, "deeper than"),
    (b"{not json", "not valid JSON"),
    (b'"just a string"', "not a JSON object"),
]


@pytest.mark.parametrize(("body", "fragment"), MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_events_are_400_and_the_key_stays_out_of_the_log(module_engine: Any, body: bytes,
                                                                   fragment: str) -> None:
    """Finding 8: 400 with what is wrong, never 500; the log never shows the event key."""
    r = httpx.post(f"{module_engine.url}/e/{module_engine.key}", content=body, timeout=10,
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert fragment in r.json()["error"]
    output = module_engine.output()
    assert module_engine.event_key not in output
    assert "failed" not in output and "Traceback" not in output


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_are_refused_and_listings_keep_working(module_engine: Any, token: str) -> None:
    """Finding 9: ``NaN`` used to be stored, then ``GET /v1/events`` answered 500 for good."""
    body = f'{{"name": "edge/nan", "data": {{"x": {token}}}}}'.encode()
    r = httpx.post(f"{module_engine.url}/e/{module_engine.key}", content=body, timeout=5,
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["ids"] == [], r.text
    assert _events_named(module_engine, "edge/nan") == []
    assert module_engine.get("/v1/events").status_code == 200
    assert httpx.get(f"{module_engine.url}/events.json", headers=module_engine.headers, timeout=5).status_code \
        in (200, 303, 401)
