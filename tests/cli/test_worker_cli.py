"""``agentcmd worker``'s refusals: each says what is wrong and what to do, before or instead of connecting."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from tests.harness.engine import EngineProc
from tests.harness.processes import free_port, run_cli

HELLO = '''
from agentcmd import define_workflow


@define_workflow(id="hello", retries=0)
async def hello(ctx, step):
    return "hi"
'''


@pytest.fixture
def project_workflows() -> dict[str, str]:
    return {"hello.py": HELLO}


def refused(*args: str, env: dict[str, str] | None = None) -> str:
    done = run_cli("worker", *args, env=env, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "\nfix: " in done.stderr
    return done.stderr


def test_an_unreachable_engine_is_named(project: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    err = refused("--dev", "--engine-url", url, "--project", str(project))
    assert f"error: cannot reach the engine at {url}" in err and "gateway port" in err


def test_a_project_without_workflows_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty" / ".agentcmd" / "workflows").mkdir(parents=True)
    err = refused("--dev", "--project", str(tmp_path / "empty"))
    assert "error: no workflows to serve in" in err and "add a workflow file" in err


def test_a_broken_workflow_file_is_reported_with_the_refusal(tmp_path: Path) -> None:
    folder = tmp_path / "broken" / ".agentcmd" / "workflows"
    folder.mkdir(parents=True)
    (folder / "bad.py").write_text("def nope(:\n")
    err = refused("--dev", "--project", str(tmp_path / "broken"))
    assert "1 file(s) failed to load" in err and "bad.py" in err


def test_production_without_a_key_is_refused_and_the_mode_says_where_it_came_from(project: Path) -> None:
    err = refused("--project", str(project))
    assert "mode: production (from the default of 'agentcmd worker')" in err
    assert "a production worker needs the engine's signing key" in err


def test_inngest_dev_picks_dev_mode_as_the_sdk_does(project: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    err = refused("--engine-url", url, "--project", str(project), env={"INNGEST_DEV": "1"})
    assert "mode: dev (from INNGEST_DEV=1)" in err and "cannot reach the engine" in err


@pytest.mark.parametrize("args, message", [
    (("--dev", "--production"), "--production and --dev contradict each other"),
    (("--dev", "--engine-url", "ftp://engine"), "--engine-url 'ftp://engine' is not an http(s) URL"),
    (("--dev", "--gateway-url", "http://engine:8289"), "is not a ws:// or wss:// URL"),
])
def test_bad_options_are_refused(args: tuple[str, ...], message: str, project: Path) -> None:
    assert message in refused(*args, "--project", str(project))


def test_an_engine_without_a_gateway_is_named(engine_factory: Callable[..., EngineProc], project: Path) -> None:
    engine = engine_factory("dev", args=("--no-connect",))
    err = refused("--dev", "--engine-url", engine.url, "--project", str(project))
    assert f"the engine at {engine.url}" in err and "connect gateway" in err
