"""Resuming a failed or cancelled run end to end: real engine, real app server, fake agent CLIs, both modes.

A ``worktree`` workflow runs two commands, keeps an artifact, then calls an
agent that fails (the fake agent's scenario file says so). The scenario is
fixed and the run is resumed: the two commands and the artifact step are
not run again (their log files say so), the agent runs with the edited
input, the last step finds the file the first one made in the kept
worktree, and the runs are linked both ways. Refusals: an invalid edited
input (422), a running, completed or already resumed run (409), a form
without its CSRF token (403). A cancelled run waiting for an event resumes
and waits again. Dev mode drives the workflow views' and the dashboard's
buttons; production drives the CLI and REST, and SIGKILLs the engine while
the resumed run is in flight: after a restart it finishes without running
the kept steps again.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.harness.e2e import cli, synced
from tests.harness.processes import free_ports
from tests.polling import wait_for
from tests.workflows.conftest import git

from agentcmd.config.keys import generate_event_key, generate_signing_key
from agentcmd.inngest_env import inngest_env
from agentcmd.mode import Mode

pytestmark = pytest.mark.slow

RESUMABLE = '''
from agentcmd import define_workflow

SCHEMA = {"type": "object", "properties": {"ticket": {"type": "string"}}, "required": ["ticket"]}


@define_workflow(id="resumable", phases=["work"], retries=0, workspace="worktree", args_schema=SCHEMA)
async def resumable(ctx, step):
    with step.phase("work"):
        await step.cli("one", f"echo run >> {ctx.project_dir}/one.log; echo kept > made.txt")
        await step.artifact("notes.txt", "from step one")
        await step.cli("two", f"echo run >> {ctx.project_dir}/two.log")
        fixed = await step.agent("three", prompt="fix ticket " + ctx.input["ticket"])
        four = await step.cli("four", "cat made.txt")
    return {"three": fixed.text, "four": four.stdout.strip(), "workdir": str(ctx.workdir), "branch": ctx.branch}


@define_workflow(id="gate", retries=0)
async def gate(ctx, step):
    await step.cli("first", f"echo run >> {ctx.project_dir}/first.log")
    await step.wait_for_event("go", event="test/resume.go", timeout="10m")
    return "through"
'''

FAILING = {"raw": [], "stderr": "fatal: not logged in\n", "exit_code": 3}
FIXED = {"steps": [{"text": "Fixed."}], "usage": {"input_tokens": 10, "output_tokens": 2}}
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


class Stack:
    """An engine and an app server in ``mode``; ``restart_engine`` SIGKILLs the engine and starts it again."""

    def __init__(self, mode: str, project: Path, procs: Any, tmp_path: Path, extra: dict[str, str]) -> None:
        self.mode = mode
        app_port, engine_port = free_ports(2)
        self.app_url, self.engine_url = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{engine_port}"
        base = {**{k: v for k, v in os.environ.items() if not k.startswith("INNGEST_")}, **extra}
        app_argv = [sys.executable, "-m", "agentcmd.server", "--port", str(app_port), "--project", str(project)]
        self.procs = procs
        if mode == "production":
            signing, event_key = generate_signing_key(), generate_event_key()
            self.signing: str | None = signing
            self.engine_env = {**base, "INNGEST_SIGNING_KEY": signing, "INNGEST_EVENT_KEY": event_key}
            self.engine_argv = [sys.executable, "-m", "agentcmd", "engine", "start", "--host", "127.0.0.1",
                                "--port", str(engine_port), "--sqlite-dir", str(tmp_path / "db"), "--sdk-url",
                                f"{self.app_url}/api/workflows/inngest"]
            app_env = inngest_env(Mode.PRODUCTION, self.engine_url, event_key=event_key, signing_key=signing,
                                  base=base)
        else:
            self.signing = None
            self.engine_env = base
            self.engine_argv = [sys.executable, "-m", "agentcmd", "engine", "dev", "--host", "127.0.0.1", "--port",
                                str(engine_port), "--no-discovery", "--poll-interval", "0.2", "-u",
                                f"{self.app_url}/api/workflows/inngest"]
            app_env = inngest_env(Mode.DEV, self.engine_url, base=base)
        self.cli_env = {**app_env, "PORT": str(app_port)}
        self.app = procs(app_argv, app_env)
        self.engine = procs(self.engine_argv, self.engine_env)
        self.synced()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.signing}"} if self.signing else {}

    def synced(self) -> None:
        wait_for(lambda: synced(self.engine_url, self.signing, self.app_url), 60, "the engine to sync the app",
                 self.output)

    def output(self) -> str:
        return self.engine.output()[-3000:] + self.app.output()[-3000:]

    def restart_engine(self) -> None:
        self.engine.kill(signal.SIGKILL)
        self.engine = self.procs(self.engine_argv, self.engine_env)

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(method, self.app_url + path, headers=self.headers, timeout=30, **kw)

    def run(self, run_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self.api("GET", f"/api/runs/{run_id}").json()["data"]
        return data

    def ended(self, run_id: str, status: str, timeout: float = 60) -> dict[str, Any]:
        def seen() -> dict[str, Any] | None:
            resp = self.api("GET", f"/api/runs/{run_id}")   # 503 while the engine restarts
            run = resp.json().get("data") if resp.status_code == 200 else None
            return run if isinstance(run, dict) and run.get("status") == status else None

        run: dict[str, Any] = wait_for(seen, timeout, f"run {run_id} {status}", self.output)
        return run

    def start(self, workflow: str, data: dict[str, Any]) -> str:
        started = self.api("POST", f"/api/workflows/{workflow}/runs", json={"input": data})
        assert started.status_code == 202, started.text
        return str(started.json()["data"]["run_id"])


def _prompts(fake_agents: Any) -> list[str]:
    return [str(c.get("prompt") or "") for c in fake_agents.calls()]


def _ui_resume(client: httpx.Client, path: str, fields: dict[str, str]) -> httpx.Response:
    """Post a page's resume form: refused without the CSRF token, then with the page's token."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    refused = client.post(f"{path}/resume", data=fields)
    assert refused.status_code == 403, refused.text
    return client.post(f"{path}/resume", data={**fields, "csrf_token": CSRF.findall(page.text)[-1]})


@pytest.mark.parametrize("mode", ["dev", "production"])
def test_a_failed_run_resumes_from_the_failed_step_and_a_cancelled_one_from_its_wait(
        mode: str, project: Path, write_workflow: Any, fake_agents: Any, git_identity: None, procs: Any,
        tmp_path: Path) -> None:
    git(project, "init", "-q", "-b", "main")
    (project / "README").write_text("x\n")
    git(project, "add", "README")
    git(project, "commit", "-q", "-m", "init")
    write_workflow("resumable.py", RESUMABLE)
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps(FAILING))
    fake_agents.set(FAKE_AGENT_SCENARIO=str(scenario))
    hold = fake_agents.hold()
    fake_agents.release()
    stack = Stack(mode, project, procs, tmp_path, fake_agents.env())

    # 1. The agent step fails: the run fails after steps one and two completed.
    old = stack.start("resumable", {"ticket": "T-1"})
    failed = stack.ended(old, "Failed")
    assert (project / "one.log").read_text() == "run\n" and (project / "two.log").read_text() == "run\n"
    assert _prompts(fake_agents) == ["fix ticket T-1"]
    assert [s["id"] for s in failed["steps"] if s["status"] == "Completed"] == [
        "workspace", "one", "artifact:notes.txt", "two"], failed["steps"]

    # 2. An edited input the args schema refuses: 422 with the problem, nothing starts.
    bad = stack.api("POST", f"/api/runs/{old}/resume", json={"input": {"ticket": 5}})
    assert bad.status_code == 422 and "ticket" in json.dumps(bad.json()), bad.text
    assert stack.run(old)["resumed_as"] == []

    # 3. The agent is fixed (and held mid-step); the run is resumed with an edited input.
    scenario.write_text(json.dumps(FIXED))
    hold.unlink()
    if mode == "dev":
        with httpx.Client(base_url=stack.app_url, timeout=30) as browser:
            page = browser.get(f"/runs/{old}").text
            assert 'data-testid="resume-button"' in page and "T-1" in page   # the edit form holds the input
            token = CSRF.findall(page)[-1]
            for typed in ('{"ticket": 5}', '{"ticket": '):   # refused by the schema / not JSON: shown on the page
                again = browser.post(f"/runs/{old}/resume", data={"edit": "1", "input": typed, "csrf_token": token})
                assert again.status_code in (400, 422) and 'data-testid="resume-error"' in again.text, again.text
                assert typed in again.text.replace("&#34;", '"').replace("&quot;", '"')
            assert stack.run(old)["resumed_as"] == []
            posted = _ui_resume(browser, f"/runs/{old}", {"edit": "1", "input": '{"ticket": "T-2"}'})
        assert posted.status_code == 303, posted.text
        new = posted.headers["location"].split("/runs/")[1].split("?")[0]
    else:
        out = cli("runs", "resume", old, "--input", '{"ticket": "T-2"}', env=stack.cli_env)
        assert out.returncode == 0, out.stderr + stack.output()
        found = re.search(rf"resumed run {old} as run (\S+) \((\d+) completed steps kept\)", out.stdout)
        assert found, out.stdout
        new = found.group(1)
        assert int(found.group(2)) >= 3   # the workspace, one, the artifact, two (three failed)
    wait_for(lambda: len(fake_agents.calls()) == 2, 30, "the resumed run to call the agent", stack.output)

    # 4. While it runs: resuming it, or the old run again, is refused (409); nothing else starts.
    running = stack.api("POST", f"/api/runs/{new}/resume", json={})
    assert running.status_code == 409 and running.json()["code"] == "run_not_resumable", running.text
    rest = httpx.post(f"{stack.engine_url}/v1/runs/{new}/resume", headers=stack.headers, timeout=10)
    assert rest.status_code == 409 and rest.json()["code"] == "not_resumable", rest.text
    again = stack.api("POST", f"/api/runs/{old}/resume", json={})
    assert again.status_code == 409 and "already resumed" in again.json()["error"], again.text

    # 5. Production: the engine dies while the resumed run is in flight, then comes back.
    if mode == "production":
        stack.restart_engine()
    fake_agents.release()
    done = stack.ended(new, "Completed", 90)
    assert (project / "one.log").read_text() == "run\n" and (project / "two.log").read_text() == "run\n", \
        "the steps that completed before the failure did not run again"
    prompts = _prompts(fake_agents)
    assert prompts[0] == "fix ticket T-1" and set(prompts[1:]) == {"fix ticket T-2"}, prompts
    assert done["output"]["four"] == "kept", "the resumed run works in the failed run's kept worktree"
    assert Path(done["output"]["workdir"]).name == old.lower() and done["output"]["branch"] == f"agentcmd/{old.lower()}"
    assert done["resume_of"] == old and stack.run(old)["resumed_as"] == [new]
    assert stack.api("POST", f"/api/runs/{new}/resume", json={}).status_code == 409   # Completed
    if mode == "dev":
        with httpx.Client(base_url=stack.app_url, timeout=30) as browser:
            page = browser.get(f"/runs/{new}").text
            assert 'data-testid="resumed-from"' in page and old in page
            assert browser.get(f"/runs/{new}/artifacts/notes.txt").text == "from step one"
        dash = httpx.get(f"{stack.engine_url}/runs/{new}", timeout=10).text
        assert 'data-testid="resumed-from"' in dash and 'data-testid="resume-badge"' in dash

    # 6. A cancelled run waiting for an event: resumed, it waits again (its first step is kept).
    gate = stack.start("gate", {})
    wait_for(lambda: (project / "first.log").exists() and stack.run(gate)["status"] == "Running"
             and any(s["id"] == "first" and s["status"] == "Completed" for s in stack.run(gate)["steps"]),
             30, "the gate run to wait", stack.output)
    out = cli("runs", "cancel", gate, env=stack.cli_env)
    assert out.returncode == 0, out.stderr
    stack.ended(gate, "Cancelled")
    if mode == "dev":
        with httpx.Client(base_url=stack.engine_url, timeout=30) as browser:
            posted = _ui_resume(browser, f"/runs/{gate}", {})
        assert posted.status_code == 303 and "notice=resumed" in posted.headers["location"], posted.text
        resumed_gate = posted.headers["location"].split("/runs/")[1].split("?")[0]
    else:
        r = httpx.post(f"{stack.engine_url}/v1/runs/{gate}/resume", headers=stack.headers, timeout=10)
        assert r.status_code == 201, r.text
        resumed_gate = r.json()["data"]["run_id"]

    def through() -> bool:
        stack.api("POST", "/api/events", json={"name": "test/resume.go", "data": {}})
        return bool(stack.run(resumed_gate)["status"] == "Completed")

    wait_for(through, 30, "the resumed gate run to get its event", stack.output)
    assert (project / "first.log").read_text() == "run\n"
    assert stack.run(resumed_gate)["resume_of"] == gate


FLIP = '''
from agentcmd import define_workflow


@define_workflow(id="flip", retries=0, workspace="branch")
async def flip(ctx, step):
    await step.cli("count", f"echo run >> {ctx.project_dir}/count.log")
    done = await step.cli("check", "test ! -e BROKEN && git branch --show-current")
    return done.stdout.strip()
'''


def test_the_cli_resumes_and_waits_and_refuses_a_completed_run(
        project: Path, write_workflow: Any, procs: Any, tmp_path: Path, git_identity: None) -> None:
    write_workflow("flip.py", FLIP)
    git(project, "init", "-q", "-b", "main")
    (project / ".gitignore").write_text(".agentcmd/\nBROKEN\ncount.log\n")
    git(project, "add", ".gitignore")
    git(project, "commit", "-q", "-m", "init")
    (project / "BROKEN").touch()
    stack = Stack("dev", project, procs, tmp_path, {})
    out = cli("workflows", "run", "flip", "--wait", env=stack.cli_env)
    assert out.returncode == 1, out.stderr
    old = next(r["run_id"] for r in stack.api("GET", "/api/runs?workflow=flip").json()["data"])
    assert git(project, "branch", "--show-current") == f"agentcmd/{old.lower()}"
    git(project, "switch", "-q", "main")     # to fix what was wrong
    (project / "BROKEN").unlink()
    out = cli("runs", "resume", old, "--wait", "--json", env=stack.cli_env)
    assert out.returncode == 0, out.stderr + stack.output()
    final = json.loads(out.stdout)
    # The resumed run went back to the failed run's branch (its kept workspace step names it).
    assert final["status"] == "Completed" and final["output"] == f"agentcmd/{old.lower()}"
    assert final["resume_of"] == old
    assert (project / "count.log").read_text() == "run\n"
    refused = cli("runs", "resume", final["run_id"], env=stack.cli_env)
    assert refused.returncode == 1 and "only a Failed or Cancelled run can be resumed" in refused.stderr
    bad = cli("runs", "resume", old, "--input", "[1", env=stack.cli_env)
    assert bad.returncode == 2 and "--input" in bad.stderr
