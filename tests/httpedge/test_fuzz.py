"""Generated requests against the real servers: no 5xx, no crash, nothing stored is lost.

Hypothesis draws methods, paths from the servers' own route tables (path
parameters filled with random text), query strings, headers (Host, Origin,
Sec-Fetch-Site, Content-Type, Authorization, SDK headers, good and bad) and
bodies (random bytes, random JSON, JSON with NaN or deep nesting, forms),
and sends them over real HTTP to a real engine subprocess (dev and
production) and a real app server (dev and production). Every answer must
be below 500; afterwards the server is alive, what was stored before is
still readable, and (engine) a new event still runs its function.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from tests.harness.appserver import SIGNING_KEY, AppServerFactory, bearer
from tests.harness.engine import SdkApp, client_for, runs_for_event, send_event, wait_for_run_status

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import inngest

EXAMPLES = 400       # per server: 4 servers, 1600 generated requests (~9 s per server here)
RANDOM_BODIES = 150  # raw random bytes to POST /e/{key}, per engine
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def engine_paths() -> list[tuple[str, set[str]]]:
    """(path template, methods) of the engine's routes and its dashboard's, from the real route tables."""
    from agentcmd.engine.app import Engine, EngineConfig, build_app
    from agentcmd.engine.dashboard.mount import dashboard_app

    engine = Engine(EngineConfig())
    routes = [(r.path, set(r.methods or ())) for r in build_app(engine).routes if getattr(r, "path", "")]
    dash = dashboard_app(engine.commands)
    routes += [(r.path, set(getattr(r, "methods", None) or {"GET"})) for r in dash.routes if getattr(r, "path", "")]
    return routes


def app_paths(app: Any) -> list[tuple[str, set[str]]]:
    return [(r.path, set(getattr(r, "methods", None) or {"GET"})) for r in app.routes if getattr(r, "path", "")]


_segment = st.one_of(st.sampled_from(["01NOSUCHRUN", "x", "build", "..", "%2e%2e", "a%00b", "%ff", "inngest",
                                      "app-build", "a" * 300, "", "%"]),
                     st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="/?#"),
                             min_size=1, max_size=20))
_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                     | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                  max_size=4), max_leaves=20)
_event_like = st.fixed_dictionaries({"name": st.text(max_size=20) | st.integers() | st.none()},
                                    optional={"data": _json, "ts": _json, "id": _json, "user": _json, "v": _json})
_body = st.one_of(
    st.just(b""),
    st.binary(max_size=512),
    _json.map(lambda v: json.dumps(v).encode()),
    _event_like.map(lambda v: json.dumps(v).encode()),
    st.lists(_event_like, max_size=5).map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b'{"name": "f/x", "data": {"n": NaN}}', b"[Infinity]", b"[" * 3000 + b"]" * 3000,
                     b'{"a":' * 500 + b"1" + b"}" * 500, b'"\\ud800"', b"\xef\xbb\xbf{}", b"1" * 5000,
                     b"csrf_token=x&token=y&input=%7B%7D&name=a&data=NaN", b'{"query": 5}', b'{"query": "{ x }"}',
                     b'{"url": "http://127.0.0.1:1/x", "functions": [], "appName": 5}']),
)


def _requests(paths: list[tuple[str, set[str]]], port: int, auth: dict[str, str]) -> st.SearchStrategy[Any]:
    def fill(template: str, values: list[str]) -> str:
        out, it = [], iter(values)
        for part in template.split("/"):
            out.append(next(it, "x") if part.startswith("{") else part)
        return "/".join(out)

    host = st.sampled_from([f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "rebind.example:4711",
                            "", "a b", "127.0.0.1:99999", "x" * 300])
    origin = st.sampled_from([None, f"http://127.0.0.1:{port}", "http://evil.example", "null", "ftp://x", "http://"])
    site = st.sampled_from([None, "same-origin", "cross-site", "same-site", "none", "garbage"])
    ctype = st.sampled_from([None, "application/json", "application/json; charset=utf-8", "text/plain",
                             "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "garbage/;;"])
    authz = st.sampled_from([None, *auth.values(), "Bearer ", "Bearer " + "0" * 64, "Basic Zm9vOmJhcg=="])
    extra = st.dictionaries(st.sampled_from(["x-inngest-signature", "x-inngest-event-id-seed", "x-inngest-server-kind",
                                             "x-inngest-expected-server-kind", "accept", "cookie", "x-csrf-token"]),
                            st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60), max_size=3)
    query = st.one_of(st.just(""),
                      st.sampled_from(["?fnId=app-build&stepId=step", "?limit=-1", "?limit=abc", "?cursor=%ff",
                                       "?format=json", "?next=//evil", "?limit=99999999999", "?probe=trust"]),
                      st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="#"),
                              max_size=30).map(lambda q: "?" + q))
    return st.tuples(st.sampled_from(paths), st.lists(_segment, max_size=4), st.sampled_from(METHODS), query, host,
                     origin, site, ctype, authz, extra, _body).map(
        lambda t: (t[2] if t[2] in t[0][1] or t[2] in ("OPTIONS", "PATCH") else sorted(t[0][1])[0]
                   if t[0][1] else t[2],
                   fill(t[0][0], t[1]) + t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10]))


def _fuzz(base: str, paths: list[tuple[str, set[str]]], auth: dict[str, str], alive: Callable[[], None]) -> int:
    port = int(base.rsplit(":", 1)[1])
    seen: list[int] = []
    with httpx.Client(base_url=base, timeout=30) as client:
        @SETTINGS
        @given(_requests(paths, port, auth))
        def one(req: tuple[Any, ...]) -> None:
            method, path, host, origin, site, ctype, authz, extra, body = req
            headers = {"Host": host, **extra}
            for name, value in (("Origin", origin), ("Sec-Fetch-Site", site), ("Content-Type", ctype),
                                ("Authorization", authz)):
                if value is not None:
                    headers[name] = value
            headers = {k: v.strip() for k, v in headers.items()}  # h11 (the client) refuses padded values
            try:
                r = client.request(method, path, content=body if method not in ("GET", "HEAD") else None,
                                   headers=headers)
            except httpx.RemoteProtocolError:   # a Host or path the server's HTTP parser refuses outright
                alive()
                return
            except httpx.LocalProtocolError:    # a request the client library will not send: not a server test
                reject()
            seen.append(r.status_code)
            assert r.status_code < 500, (method, path, headers, body[:200], r.status_code, r.text[:500])

        one()
    alive()
    return len(seen)


@pytest.fixture
def served_function(module_engine: Any) -> Any:
    client = client_for(module_engine, "fuzz-app")

    @client.create_function(fn_id="echo", trigger=inngest.TriggerEvent(event="fuzz/run"), retries=0)
    async def echo(ctx: inngest.Context) -> Any:
        return ctx.event.data

    app = SdkApp(client, [echo])
    app.sync(module_engine)
    yield app
    app.stop()


def test_fuzz_the_engine(module_engine: Any, served_function: Any) -> None:
    before = send_event(module_engine, "fuzz/run", {"n": 1})
    [run_before] = runs_for_event(module_engine, before)
    wait_for_run_status(module_engine, run_before, "Completed")

    def alive() -> None:
        assert module_engine.proc.poll() is None, module_engine.output()[-3000:]
        assert module_engine.get("/health").status_code == 200

    started = time.monotonic()
    sent = _fuzz(module_engine.url, engine_paths(), module_engine.headers, alive)
    # Random bytes to the event API (finding 8: 150 random bodies gave 150 answers of 500).
    with httpx.Client(timeout=10) as client:
        for _ in range(RANDOM_BODIES):
            r = client.post(f"{module_engine.url}/e/{module_engine.key}", content=os.urandom(64),
                            headers={"Content-Type": "application/json"})
            assert r.status_code == 400, r.text
    print(f"engine ({module_engine.mode}): {sent + RANDOM_BODIES} requests in {time.monotonic() - started:.1f} s")

    event = module_engine.get(f"/v1/events/{before}")
    assert event.status_code == 200 and event.json()["data"]["data"] == {"n": 1}
    assert module_engine.get(f"/v1/runs/{run_before}").json()["data"]["status"] == "Completed"
    after = send_event(module_engine, "fuzz/run", {"n": 2})
    [run_after] = runs_for_event(module_engine, after)
    assert wait_for_run_status(module_engine, run_after, "Completed")["output"] == {"n": 2}
    assert module_engine.event_key not in module_engine.output()
    assert "Traceback" not in module_engine.output()


@pytest.mark.parametrize("mode", ["dev", "production"])
def test_fuzz_the_app_server(app_server: AppServerFactory, engine_url: str, mode: str,
                             caplog: pytest.LogCaptureFixture) -> None:
    from agentcmd.server.app import create_app

    served = app_server(mode)
    sent_before = httpx.post(f"{engine_url}/e/key", json={"name": "fuzz/app-before", "data": {"k": 1}}, timeout=10)
    before_id = sent_before.json()["ids"][0]
    paths = app_paths(create_app(app_server.project, entry_points=False, host="127.0.0.1", auth=served.auth))

    def alive() -> None:
        assert httpx.get(served.url + "/health", timeout=10).status_code == 200

    started = time.monotonic()
    sent = _fuzz(served.url, paths, {"bearer": bearer()["Authorization"], "raw": f"Bearer {SIGNING_KEY}"}, alive)
    print(f"app server ({mode}): {sent} requests in {time.monotonic() - started:.1f} s")
    with httpx.Client(base_url=served.url, timeout=30, headers=bearer()) as client:
        assert client.get("/api/workflows").json()["data"][0]["id"] == "build"
        assert client.get("/api/runs").status_code == 200
    assert httpx.get(f"{engine_url}/v1/events/{before_id}", timeout=10).json()["data"]["data"] == {"k": 1}
    assert "Exception in ASGI application" not in caplog.text
