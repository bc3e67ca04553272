"""One rule for the engine's URL and bearer, followed by the app server's and the CLI's engine clients."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from agentcmd.endpoint import EngineEndpoint, resolve_engine_endpoint
from agentcmd.server.client import CliEngineClient
from agentcmd.server.engine import EngineRestClient
from agentcmd.signing import hash_signing_key

KEY = "signkey-prod-3f9a0c7e5b21d4886ae1f0c39b7d52e49c1e77a04b3fd2e85a6c0b19f4e3d72a"
OTHER_KEY = "signkey-prod-d41d8cd98f00b204e9800998ecf8427e5a1c37b0e26f94d8c03be71f6a9d2c45"


class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[str | None]]

    def do_GET(self) -> None:
        type(self).seen.append(self.headers.get("Authorization"))
        body = b'{"data": [], "metadata": {}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def engine_stub() -> Iterator[tuple[str, list[str | None]]]:
    """A loopback HTTP server that answers every GET with an empty list and records the bearer."""
    seen: list[str | None] = []
    handler = type("Recorder", (_Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_the_url_comes_from_the_sdk_variables_then_the_setting_then_the_port(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTCMD_ENGINE_PORT", "9123")
    assert resolve_engine_endpoint().url == "http://127.0.0.1:9123"
    monkeypatch.setenv("AGENTCMD_ENGINE_URL", "http://127.0.0.1:9200/")
    assert resolve_engine_endpoint().url == "http://127.0.0.1:9200"
    monkeypatch.setenv("INNGEST_API_BASE_URL", "http://127.0.0.1:9300/")
    assert resolve_engine_endpoint().url == "http://127.0.0.1:9300"
    monkeypatch.setenv("INNGEST_BASE_URL", "http://127.0.0.1:9400")
    assert resolve_engine_endpoint().url == "http://127.0.0.1:9400"
    assert resolve_engine_endpoint("http://127.0.0.1:9500/").url == "http://127.0.0.1:9500"


def test_the_bearer_is_the_hashed_signing_key_and_none_in_dev_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_engine_endpoint().authorization is None
    monkeypatch.setenv("INNGEST_SIGNING_KEY", KEY)
    endpoint = resolve_engine_endpoint()
    assert endpoint.signing_key == KEY
    assert endpoint.authorization == f"Bearer {hash_signing_key(KEY)}"
    assert KEY.removeprefix("signkey-prod-") not in endpoint.authorization
    for dev in ("1", "true"):
        monkeypatch.setenv("INNGEST_DEV", dev)
        assert resolve_engine_endpoint().authorization is None
    for production in ("0", "false", ""):
        monkeypatch.setenv("INNGEST_DEV", production)
        assert resolve_engine_endpoint().signing_key == KEY


def test_a_handed_over_key_wins_over_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from agentcmd import handover

    monkeypatch.setenv("INNGEST_SIGNING_KEY", KEY)
    monkeypatch.setattr(handover, "_handed", {"INNGEST_SIGNING_KEY": OTHER_KEY})
    assert resolve_engine_endpoint().signing_key == OTHER_KEY


async def test_both_engine_clients_send_the_same_url_and_bearer(
        engine_stub: tuple[str, list[str | None]], monkeypatch: pytest.MonkeyPatch) -> None:
    url, seen = engine_stub
    monkeypatch.setenv("INNGEST_BASE_URL", url)
    monkeypatch.setenv("INNGEST_SIGNING_KEY", KEY)
    server_side = EngineRestClient.from_env()
    try:
        assert server_side.base_url == url
        assert await server_side.list_functions() == []
    finally:
        await server_side.aclose()
    with CliEngineClient() as cli_side:
        assert cli_side.base_url == url
        assert cli_side.get("/v1/functions") == {"data": [], "metadata": {}}
    assert seen == [f"Bearer {hash_signing_key(KEY)}"] * 2


def test_an_endpoint_without_a_key_sends_no_bearer() -> None:
    assert EngineEndpoint("http://127.0.0.1:1").authorization is None
