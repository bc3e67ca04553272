"""The app server under an auth policy, next to a real dev engine (tests/server, tests/httpedge).

``app_server(mode, host, dashboard_auth)`` serves ``create_app`` as
``python -m agentcmd.server --host HOST`` would build it, with the SDK
environment of ``mode``. The policy is decided on the BIND address, so a
server for a production ``0.0.0.0`` config really listens on 0.0.0.0
(ephemeral port) and the test connects through 127.0.0.1: a loopback client
of a wildcard bind is still refused. A dev "beyond loopback" server is given
the host 0.0.0.0 for its policy but listens on loopback only (dev has no
auth; nothing else on this machine should reach it).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

# inngest 0.5.19 defines a pydantic model with a class-based Config; the deprecation warning fires once,
# at import, and is not ours to fix (pytest turns warnings into errors).
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import inngest.fast_api  # noqa: F401

from tests.harness.keys import APP_EVENT_KEY, APP_SIGNING_KEY
from tests.harness.processes import Child, clean_env, free_port
from tests.harness.servers import LiveServer
from tests.polling import wait_for

from agentcmd.config.keys import hash_signing_key
from agentcmd.inngest_env import inngest_env
from agentcmd.mode import Mode
from agentcmd.server.access import AppAuth

TOKEN = "app-views-dashboard-token-for-tests"
SIGNING_KEY, EVENT_KEY = APP_SIGNING_KEY, APP_EVENT_KEY

WORKFLOW = '''
from agentcmd import define_workflow

@define_workflow(id="build", name="Build", phases=["compile"], retries=0,
                 args_schema={"type": "object", "properties": {"who": {"type": "string", "minLength": 1}},
                              "required": ["who"], "additionalProperties": False})
async def build(ctx, step):
    with step.phase("compile"):
        await step.cli("say", f"echo hello {ctx.input['who']}")
    return {"ok": True}
'''


@pytest.fixture(scope="session")
def engine_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``agentcmd engine dev`` the app servers read runs from (it syncs no app: nothing runs)."""
    tmp = tmp_path_factory.mktemp("engine")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    child = Child([sys.executable, "-m", "agentcmd", "engine", "dev", "--port", str(port), "--no-discovery"],
                  clean_env(tmp / "home"), tmp / "engine.log")
    try:
        wait_for(lambda: httpx.get(f"{url}/health", timeout=2).status_code == 200, 30, "the dev engine",
                 child.output)
        yield url
    finally:
        child.stop()


@pytest.fixture
def project_workflows() -> dict[str, str]:
    """The ``project`` of the app-server tests holds the ``build`` workflow."""
    return {"build.py": WORKFLOW}


@dataclass
class Served:
    url: str
    auth: AppAuth
    bind: str


@dataclass
class AppServerFactory:
    project: Path
    engine_url: str
    monkeypatch: pytest.MonkeyPatch
    servers: list[LiveServer] = field(default_factory=list)

    def __call__(self, mode: str = "dev", host: str = "127.0.0.1", dashboard_auth: bool = False) -> Served:
        from agentcmd.server.app import create_app

        production = mode == "production"
        env = inngest_env(Mode(mode), self.engine_url, event_key=EVENT_KEY if production else None,
                          signing_key=SIGNING_KEY if production else None, base={})
        for name, value in env.items():
            self.monkeypatch.setenv(name, value)
        auth = AppAuth.build(mode, host, dashboard_auth=dashboard_auth, token=TOKEN, signing_key=SIGNING_KEY)
        app = create_app(self.project, entry_points=False, host=host, auth=auth)
        bind = host if production and host == "0.0.0.0" else "127.0.0.1"
        server = LiveServer(app, bind).start()  # lifespan on, no proxy headers: as the real launcher
        self.servers.append(server)
        return Served(server.url, auth, bind)


@pytest.fixture
def app_server(project: Path, engine_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppServerFactory]:
    factory = AppServerFactory(project, engine_url, monkeypatch)
    yield factory
    for server in factory.servers:
        server.stop()


def bearer(raw: bool = False) -> dict[str, str]:
    """The API's credentials: the signing key as the SDK hashes it (what the CLI sends), or raw."""
    return {"Authorization": f"Bearer {SIGNING_KEY if raw else hash_signing_key(SIGNING_KEY)}"}
