"""``/health`` shows the database path and app URLs only to a caller who may look.

An engine bound beyond loopback answers strangers with status and mode only;
the local user of a loopback engine and a caller holding the signing key see
everything. The bind address is what the engine believes (``EngineConfig.host``):
the server itself listens on 127.0.0.1 here, so nothing leaves this machine.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from tests.harness.engine import EVENT_KEY, SIGNING_KEY
from tests.polling import wait_for

from agentcmd.engine.app import Engine, EngineConfig, build_app
from agentcmd.engine.serve import bind

BEARER = {"Authorization": f"Bearer {SIGNING_KEY}"}
APP_URL = "http://127.0.0.1:9/api/inngest"      # a -u app nobody serves: its URL shows up in "apps"


class Served:
    def __init__(self, config: EngineConfig) -> None:
        self.engine = Engine(config)
        self.engine.open()
        self.sock = bind("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(build_app(self.engine), log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve(sockets=[self.sock])),
                                       daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=15, what="the engine to serve")

    def health(self, **kw: Any) -> dict[str, Any]:
        body = wait_for(lambda: httpx.get(self.url + "/health", timeout=5, **kw).json(), what="/health")
        return dict(body)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    started: list[Served] = []

    def make(mode: str = "production", host: str = "127.0.0.1", dashboard_auth: bool = False) -> Served:
        production = mode == "production"
        config = EngineConfig(mode=mode, db_path=tmp_path / f"db{len(started)}" / "engine.db" if production else None,
                              event_keys=[EVENT_KEY] if production else [],
                              signing_key=SIGNING_KEY if production else None, sdk_urls=[APP_URL],
                              poll_interval=60, sync_wait_s=0.1, host=host, dashboard_auth=dashboard_auth,
                              dashboard_token="t" * 40, grace_s=1)
        served = Served(config)
        started.append(served)
        return served

    yield make
    for served in started:
        served.stop()


def _is_minimal(body: dict[str, Any]) -> bool:
    return set(body) == {"status", "mode"}


@pytest.mark.parametrize("mode", ["dev", "production"])
def test_a_loopback_engine_shows_its_local_user_everything(serve: Callable[..., Served], mode: str) -> None:
    body = serve(mode).health()
    assert body["mode"] == mode and "database" in body and APP_URL in body["apps"], body


@pytest.mark.parametrize(("mode", "host", "dashboard_auth"), [
    ("production", "0.0.0.0", False),
    ("production", "192.0.2.10", False),
    ("production", "127.0.0.1", True),      # --dashboard-auth: the dashboard asks for a login, so does /health
    ("dev", "0.0.0.0", False),              # --allow-remote-dev: nobody can authenticate, nobody sees details
])
def test_beyond_loopback_strangers_get_status_and_mode_only(serve: Callable[..., Served], mode: str, host: str,
                                                            dashboard_auth: bool, tmp_path: Path) -> None:
    engine = serve(mode, host, dashboard_auth)
    body = engine.health()
    assert _is_minimal(body), body
    assert body["mode"] == mode and body["status"] in ("ok", "starting")
    text = str(body)
    assert str(tmp_path) not in text and "127.0.0.1:9" not in text
    wrong = engine.health(headers={"Authorization": "Bearer " + "0" * 64})
    assert _is_minimal(wrong), wrong


def test_the_signing_key_bearer_sees_everything_beyond_loopback(serve: Callable[..., Served], tmp_path: Path) -> None:
    body = serve("production", "0.0.0.0").health(headers=BEARER)
    assert body["database"] == str(tmp_path / "db0" / "engine.db") and APP_URL in body["apps"], body
