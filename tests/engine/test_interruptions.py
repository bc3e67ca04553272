"""Interrupted SDK calls on real processes: an app that is down, killed mid-call, or an engine stopped mid-call.

A call that got no answer at all is not an attempt. With
``retries=0`` the run must still complete once the app answers again,
within about a second, with ``attempt_interrupted`` in its history and no
``attempt_failed``; meanwhile REST, GraphQL and the dashboard show it
waiting for its app. Past the app wait timeout the run fails, naming the
app's URL and the setting. The app here is the official SDK in a process
of its own (``sdk_app_process.py``) so that it can be killed for real;
the engine is the real ``agentcmd engine dev|start`` subprocess.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.harness.engine import (
    EVENT_KEY,
    SIGNING_KEY,
    EngineProc,
    run_engine_cli,
    runs_for_event,
    send_event,
)
from tests.harness.engine import wait_for_run_status as wait_status
from tests.harness.processes import free_port
from tests.polling import wait_for

APP_SCRIPT = Path(__file__).with_name("sdk_app_process.py")
FINAL = ("Completed", "Failed", "Cancelled")


class AppProc:
    """``sdk_app_process.py`` on a fixed loopback port: started, killed and started again on that port."""

    def __init__(self, engine: EngineProc, tmp: Path) -> None:
        self.engine = engine
        self.port = free_port()
        self.step_log = tmp / "steps.log"
        self.gate = tmp / "gate"
        self.log = tmp / "app.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/inngest"

    def start(self) -> float:
        """Start and wait until it listens; returns the monotonic time it did."""
        env = {"TEST_SIGNING_KEY": SIGNING_KEY, "TEST_EVENT_KEY": EVENT_KEY, "PATH": "/usr/bin:/bin",
               "PYTHONPATH": ":".join(sys.path)}
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen([sys.executable, str(APP_SCRIPT), str(self.port), self.engine.mode,
                                          self.engine.url, str(self.step_log), str(self.gate)],
                                         stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)

        def listening() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0

        wait_for(listening, timeout=20, what="the SDK app to listen", interval=0.01)
        return time.monotonic()

    def sync(self) -> None:
        headers = {"X-Inngest-Server-Kind": "cloud" if self.engine.mode == "production" else "dev"}
        r = httpx.put(self.url, json={"url": self.url}, headers=headers, timeout=10)
        assert r.status_code == 200 and "error" not in r.json(), r.text

    def kill(self) -> None:
        """SIGKILL: the app vanishes mid-answer, its connections reset or closed by the kernel."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def steps(self) -> list[str]:
        return self.step_log.read_text().splitlines() if self.step_log.exists() else []


@pytest.fixture
def app_factory(tmp_path: Path) -> Iterator[Callable[[EngineProc], AppProc]]:
    apps: list[AppProc] = []

    def make(engine: EngineProc) -> AppProc:
        app = AppProc(engine, tmp_path / f"app-{len(apps)}")
        app.step_log.parent.mkdir()
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.kill()


def _run(engine: EngineProc, run_id: str) -> dict[str, Any]:
    return dict(engine.get(f"/v1/runs/{run_id}").json()["data"])


def _history(engine: EngineProc, run_id: str) -> list[dict[str, Any]]:
    return list(engine.get(f"/v1/runs/{run_id}/history").json()["data"])


def _waiting(engine: EngineProc, run_id: str) -> dict[str, Any]:
    def check() -> Any:
        run = _run(engine, run_id)
        assert run["status"] not in FINAL, run
        return run["waiting_for_app"]

    return dict(wait_for(check, what=f"run {run_id} to wait for its app", seen=engine.output))


def _types(engine: EngineProc, run_id: str) -> list[str]:
    return [h["type"] for h in _history(engine, run_id)]


@pytest.mark.parametrize("mode", ["dev", "production"])
def test_a_run_whose_app_is_down_waits_visibly_and_completes_within_a_second_of_it_listening(
        mode: str, engine_factory: Any, app_factory: Any) -> None:
    engine = engine_factory(mode)
    app = app_factory(engine)
    app.start()
    app.sync()
    app.kill()                                              # connection refused from now on
    before = int(time.time() * 1000)
    [run_id] = runs_for_event(engine, send_event(engine, "interrupt/work"))
    wait = _waiting(engine, run_id)
    assert wait["app_id"] == "interrupt" and wait["url"] == app.url
    assert before - 1000 <= wait["since"] <= int(time.time() * 1000)
    assert wait["reason"].startswith(f"SDK unreachable at {app.url}"), wait

    # The dashboard says it on the run page and in the run list (HTML and the JSON twins).
    words = "waiting for app interrupt: unreachable since "
    page = httpx.get(f"{engine.url}/runs/{run_id}.json", timeout=5).json()
    assert page["run"]["summary"]["waiting"].startswith(words), page["run"]["summary"]
    assert page["run"]["summary"]["waiting_for_app"] == wait
    assert words in httpx.get(f"{engine.url}/runs/{run_id}", timeout=5).text
    listed = httpx.get(f"{engine.url}/runs.json", timeout=5).json()["runs"]
    [listed_waiting] = [r["waiting"] for r in listed if r["run_id"] == run_id]
    assert listed_waiting.startswith(words)
    assert words in httpx.get(f"{engine.url}/runs", timeout=5).text
    gql = httpx.post(f"{engine.url}/v0/gql", headers=engine.headers, timeout=5, json={
        "query": f'{{ run(runID: "{run_id}") {{ status waitingForApp {{ appID url since reason }} }} }}'}).json()
    assert gql["data"]["run"]["waitingForApp"]["url"] == app.url, gql

    # Several tries later it still waits (retries=0, yet nothing failed) ...
    wait_for(lambda: "refused" in _run(engine, run_id)["waiting_for_app"]["reason"].lower() and
             time.time() * 1000 - wait["since"] > 1500, what="a few tries")
    assert _run(engine, run_id)["status"] == "Running"
    listening = app.start()                                 # ... and it completes once the app is back
    run = wait_status(engine, run_id, "Completed", timeout=10)
    took = time.monotonic() - listening
    assert took < 2.0, f"the run completed {took:.2f} s after the app listened"
    assert run["output"] == ["attempt 0", "two"] and run["waiting_for_app"] is None
    types = _types(engine, run_id)
    assert types.count("attempt_interrupted") == 1 and "attempt_failed" not in types, types
    assert "the app answered again" in engine.output()


def _app_killed_mid_call(mode: str, engine_factory: Any, app_factory: Any) -> tuple[Any, Any, str, dict[str, Any]]:
    """Engine + app; a run whose first step is running when the app is SIGKILLed (the call cut)."""
    engine = engine_factory(mode)
    app = app_factory(engine)
    app.start()
    app.sync()
    [run_id] = runs_for_event(engine, send_event(engine, "interrupt/work", {"block": True}))
    wait_for(lambda: app.steps() == ["one 0"], what="step one to run in the app")
    app.kill()                                              # mid-call: the engine's connection is cut
    return engine, app, run_id, _waiting(engine, run_id)


@pytest.mark.parametrize("mode", ["dev", "production"])
def test_an_app_killed_mid_call_interrupts_it_and_the_step_runs_again_without_a_retry(
        mode: str, engine_factory: Any, app_factory: Any) -> None:
    engine, app, run_id, wait = _app_killed_mid_call(mode, engine_factory, app_factory)
    [first] = [h for h in _history(engine, run_id) if h["type"] == "attempt_interrupted"]
    assert f"the app at {app.url}" in first["detail"], first                 # reached, then cut
    assert "closed the connection before answering" in first["detail"], first
    assert first["attempt"] == 0 and wait["url"] == app.url
    app.gate.touch()
    app.start()
    run = wait_status(engine, run_id, "Completed", timeout=10)
    assert run["output"] == ["attempt 0", "two"]
    assert app.steps() == ["one 0", "one 0"]               # at least once: the cut step ran again
    assert "attempt_failed" not in _types(engine, run_id)


@pytest.mark.slow
def test_an_app_killed_alone_and_restarted_30_s_later_continues_the_run_without_a_retry(
        engine_factory: Any, app_factory: Any) -> None:
    """The app server dies on its own (OOM, a crash) and is back only half a minute later."""
    engine, app, run_id, wait = _app_killed_mid_call("production", engine_factory, app_factory)

    def down_for_30_s() -> bool:
        run = _run(engine, run_id)
        assert run["status"] == "Running" and run["waiting_for_app"], run   # still waiting, never failed
        return time.time() * 1000 - wait["since"] >= 30_000

    wait_for(down_for_30_s, timeout=45, what="the app to have been down 30 s", seen=engine.output, interval=0.5)
    app.gate.touch()
    listening = app.start()
    run = wait_status(engine, run_id, "Completed", timeout=10)
    assert time.monotonic() - listening < 2.0
    assert run["output"] == ["attempt 0", "two"] and run["waiting_for_app"] is None
    types = _types(engine, run_id)
    assert "attempt_failed" not in types and types.count("attempt_interrupted") == 1, types


def test_sigterm_mid_call_exits_0_and_the_restarted_engine_runs_the_call_again_without_a_retry(
        engine_factory: Any, app_factory: Any) -> None:
    engine = engine_factory("production")
    app = app_factory(engine)
    app.start()
    app.sync()
    [run_id] = runs_for_event(engine, send_event(engine, "interrupt/work", {"block": True}))
    wait_for(lambda: app.steps() == ["one 0"], what="step one to run in the app")
    assert engine.proc is not None
    cut = time.monotonic()
    engine.proc.send_signal(signal.SIGTERM)
    assert engine.proc.wait(15) == 0, engine.output()
    assert time.monotonic() - cut < 2.5, "the in-flight call was waited for instead of interrupted"
    assert "interrupted 1 SDK calls in flight" in engine.output()
    app.kill()                                              # the app is still down when the engine returns

    engine.start()
    wait = _waiting(engine, run_id)                         # interrupted again: it waits, it does not fail
    assert wait["url"] == app.url
    stopped, again = [h for h in _history(engine, run_id) if h["type"] == "attempt_interrupted"]
    assert "the engine is shutting down" in stopped["detail"] and stopped["attempt"] == 0
    assert "SDK unreachable" in again["detail"] and again["attempt"] == 0
    app.gate.touch()
    listening = app.start()
    run = wait_status(engine, run_id, "Completed", timeout=10)
    assert time.monotonic() - listening < 2.0
    assert run["output"] == ["attempt 0", "two"]
    types = _types(engine, run_id)
    assert types.count("attempt_interrupted") == 2 and "attempt_failed" not in types, types


def test_a_killed_engine_records_the_call_it_left_in_flight_and_runs_it_again_at_once(
        engine_factory: Any, app_factory: Any) -> None:
    engine = engine_factory("production")
    app = app_factory(engine)
    app.start()
    app.sync()
    [run_id] = runs_for_event(engine, send_event(engine, "interrupt/work", {"block": True}))
    wait_for(lambda: app.steps() == ["one 0"], what="step one to run in the app")
    engine.kill()
    app.gate.touch()
    engine.start()
    run = wait_status(engine, run_id, "Completed", timeout=10)
    assert run["output"] == ["attempt 0", "two"]
    history = _history(engine, run_id)
    [resumed] = [h for h in history if h["type"] == "attempt_interrupted"]
    assert "the engine stopped during this call" in resumed["detail"] and resumed["attempt"] == 0
    assert "attempt_failed" not in [h["type"] for h in history]


@pytest.mark.parametrize("mode", ["dev", "production"])
def test_past_the_app_wait_timeout_the_run_fails_naming_the_url_and_the_setting(
        mode: str, engine_factory: Any, app_factory: Any) -> None:
    # The flag in dev, the environment variable in production: both reach the engine.
    if mode == "dev":
        engine = engine_factory(mode, args=("--app-wait-timeout", "1.5"))
    else:
        engine = engine_factory(mode, env={"AGENTCMD_ENGINE_APP_WAIT_TIMEOUT": "1.5"})
    app = app_factory(engine)
    app.start()
    app.sync()
    app.kill()
    [run_id] = runs_for_event(engine, send_event(engine, "interrupt/work"))
    wait = _waiting(engine, run_id)
    run = wait_status(engine, run_id, "Failed", timeout=10)
    error = run["error"]
    assert error.startswith(f"app interrupt unreachable at {app.url} since "), error
    assert "--app-wait-timeout" in error and "AGENTCMD_ENGINE_APP_WAIT_TIMEOUT" in error and "1.5 s" in error
    assert run["output"] == {"name": "EngineError", "message": error, "code": "app_unreachable"}
    assert run["waiting_for_app"] is None
    ended = _history(engine, run_id)[-1]
    assert ended["type"] == "run_failed"
    waited = time.time() - wait["since"] / 1000
    assert waited >= 1.5
    assert "attempt_failed" not in _types(engine, run_id)


@pytest.mark.parametrize(("command", "args", "env", "named"), [
    ("dev", ["--app-wait-timeout", "0"], {}, "--app-wait-timeout"),
    ("start", ["--app-wait-timeout", "700000"], {}, "--app-wait-timeout"),
    ("dev", [], {"AGENTCMD_ENGINE_APP_WAIT_TIMEOUT": "nan"}, "AGENTCMD_ENGINE_APP_WAIT_TIMEOUT"),
    ("start", [], {"AGENTCMD_ENGINE_APP_WAIT_TIMEOUT": "-3"}, "AGENTCMD_ENGINE_APP_WAIT_TIMEOUT"),
])
def test_the_engine_cli_refuses_a_bad_app_wait_timeout_before_starting(
        tmp_path: Path, command: str, args: list[str], env: dict[str, str], named: str) -> None:
    out = run_engine_cli("engine", command, *args, env={"AGENTCMD_HOME": str(tmp_path / "home"), **env})
    assert out.returncode == 2, out
    assert f"error: engine app wait timeout ({named}" in out.stderr and "fix:" in out.stderr
    assert "900 (15 min)" in out.stderr and "Traceback" not in out.stderr


def test_the_app_wait_timeout_defaults_to_15_minutes_and_layers_like_every_setting(
        agentcmd_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from agentcmd.config import load_settings
    from agentcmd.config.settings import ENGINE_APP_WAIT_TIMEOUT_DEFAULT_S
    from agentcmd.config.sources import write_config_file
    from agentcmd.engine.app import EngineConfig
    from agentcmd.engine.executor import DEFAULT_APP_WAIT_MS

    assert load_settings().engine_app_wait_timeout == ENGINE_APP_WAIT_TIMEOUT_DEFAULT_S == 900
    assert EngineConfig().app_wait_timeout_s * 1000 == DEFAULT_APP_WAIT_MS == 900_000
    write_config_file(agentcmd_home / "config.json", {"engine_app_wait_timeout": 60})
    assert load_settings().engine_app_wait_timeout == 60
    monkeypatch.setenv("AGENTCMD_ENGINE_APP_WAIT_TIMEOUT", "30.5")
    assert load_settings().engine_app_wait_timeout == 30.5
    assert load_settings(engine_app_wait_timeout=3).engine_app_wait_timeout == 3
