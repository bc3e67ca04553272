"""The workflow guide cannot drift: its examples run on the embedded engine, and it covers the DSL.

docs/examples/*.py are copied into a project's .agentcmd/workflows/ and run
through the real engine (``agentcmd engine dev``) and the real app server,
with a fake ``claude`` on PATH.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.polling import wait_for

from agentcmd.inngest_env import inngest_env
from agentcmd.mode import Mode

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_GITHUB_SECRET = "example-github-webhook-secret-0123456789"
EXAMPLES = ROOT / "docs" / "examples"
GUIDE = ROOT / "docs" / "workflows.md"

FAKE_CLAUDE = """#!{python}
import json, sys
with open({log!r}, "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
prompt = sys.argv[sys.argv.index("--") + 1]
session = sys.argv[sys.argv.index("--resume") + 1] if "--resume" in sys.argv else "sess-123"
print(json.dumps({{"type": "result", "result": "ok: " + prompt, "session_id": session}}))
"""
FAKE_NOTIFY_SEND = """#!{python}
import json, sys
with open({log!r}, "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
"""
# docs/examples/notify.py's settings, with the desktop (a fake notify-send) as the only target.
NOTIFICATIONS = {"targets": {"me": {"type": "desktop"}},
                 "workflows": {"nightly-check": {"events": ["finished", "failed"]}}, "poll_seconds": 0.2}


@dataclass
class Examples:
    app_url: str
    project: Path
    claude_log: Path
    home: Path
    engine_url: str = ""

    def claude_calls(self) -> list[list[str]]:
        return [json.loads(x) for x in self.claude_log.read_text().splitlines()] if self.claude_log.exists() else []

    def start(self, workflow: str, data: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{self.app_url}/api/workflows/{workflow}/runs", json={"input": data}, timeout=30)

    def run(self, run_id: str) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"{self.app_url}/api/runs/{run_id}", timeout=10).json()["data"]
        return data

    def wait(self, run_id: str, timeout: float = 60, poke: Callable[[], None] | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.run(run_id)
            if run["status"] in ("Completed", "Failed", "Cancelled"):
                return run
            if poke is not None:
                poke()
            time.sleep(0.1)
        raise AssertionError(f"run {run_id} did not finish in {timeout}s: {self.run(run_id)}")


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Examples]:
    """Engine (dev) + app server over a git project holding every docs example."""
    base = tmp_path_factory.mktemp("examples")
    project, home, bindir = base / "project", base / "home", base / "bin"
    (project / ".agentcmd" / "workflows").mkdir(parents=True)
    bindir.mkdir()
    for example in EXAMPLES.glob("*.py"):
        shutil.copy(example, project / ".agentcmd" / "workflows" / example.name)
    (project / "test_ok.py").write_text("def test_ok():\n    assert True\n")
    (project / "utils.py").write_text("X = 1\n")
    (project / ".gitignore").write_text(".agentcmd/\n__pycache__/\n.pytest_cache/\n")
    claude_log = base / "claude.jsonl"
    claude = bindir / "claude"
    claude.write_text(FAKE_CLAUDE.format(python=sys.executable, log=str(claude_log)))
    claude.chmod(0o755)
    notify_send = bindir / "notify-send"   # docs/examples/notify.py tells the desktop
    notify_send.write_text(FAKE_NOTIFY_SEND.format(python=sys.executable, log=str(base / "notify-send.jsonl")))
    notify_send.chmod(0o755)
    home.mkdir(mode=0o700)
    (home / "config.json").write_text(json.dumps({"notifications": NOTIFICATIONS}))
    (home / "config.json").chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INNGEST_", "AGENTCMD_"))}
    env["AGENTCMD_WEBHOOKS__GITHUB__SECRET"] = EXAMPLE_GITHUB_SECRET   # docs/examples/github_issue.py
    env.update({"AGENTCMD_HOME": str(home), "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.com",
                "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@example.com",
                "PATH": os.pathsep.join([str(bindir), str(Path(sys.executable).parent), env.get("PATH", "")])})
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "initial"]):
        subprocess.run(["git", *args], cwd=project, check=True, env=env, capture_output=True)
    import socket

    socks = [socket.socket() for _ in range(2)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    app_port, engine_port = (s.getsockname()[1] for s in socks)
    for s in socks:
        s.close()
    app_url, engine_url = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{engine_port}"
    logs = [open(base / "engine.log", "wb"), open(base / "app.log", "wb")]  # noqa: SIM115
    children = [
        subprocess.Popen([sys.executable, "-m", "agentcmd", "engine", "dev", "--host", "127.0.0.1", "--port",
                          str(engine_port), "--no-discovery", "--poll-interval", "0.2", "-u",
                          f"{app_url}/api/workflows/inngest"], env=env, stdout=logs[0], stderr=subprocess.STDOUT,
                         start_new_session=True),
        subprocess.Popen([sys.executable, "-m", "agentcmd.server", "--port", str(app_port), "--project",
                          str(project), "--log-level", "warning"], env=inngest_env(Mode.DEV, engine_url, base=env),
                         stdout=logs[1], stderr=subprocess.STDOUT, start_new_session=True),
    ]
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                fns = httpx.get(f"{engine_url}/v1/functions", timeout=5).json().get("data") or []
                if len(fns) >= 3 and httpx.get(f"{app_url}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("examples stack did not start:\n" + "\n".join(
                    (base / n).read_text() for n in ("engine.log", "app.log")))
            time.sleep(0.1)
        yield Examples(app_url, project, claude_log, home, engine_url)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, 9)
                child.wait()
        for log in logs:
            log.close()


def test_every_example_loads_and_is_in_the_guide(examples: Examples) -> None:
    body = httpx.get(f"{examples.app_url}/api/workflows", timeout=10).json()
    assert body["errors"] == []
    assert {w["id"] for w in body["data"]} == {"fix-tests", "review", "refactor", "github-issue", "triage",
                                               "plan-build", "nightly-check", "standup"}
    guide = GUIDE.read_text()
    for example in EXAMPLES.glob("*.py"):
        assert f"examples/{example.name}" in guide, f"{example.name} is not referenced in docs/workflows.md"


def test_fix_tests_example(examples: Examples) -> None:
    (examples.project / "fix.py").write_text("FIXED = True\n")  # what a real agent would have changed
    resp = examples.start("fix-tests", {"issue": "test_login fails"})
    assert resp.status_code == 202, resp.text
    run = examples.wait(resp.json()["data"]["run_id"])
    assert run["status"] == "Completed", run
    assert run["output"] == {"plan": "ok: Plan a fix for: test_login fails", "tests_ok": True}
    assert [(s["phase"], s["id"]) for s in run["steps"]] == [
        ("plan", "plan"), ("fix", "tests"), ("fix", "cool-down"), ("ship", "commit")]
    assert _git(examples.project, "log", "-1", "--format=%s") == "fix: failing tests"


def _asked(examples: Examples, run_id: str, question: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = httpx.get(f"{examples.app_url}/api/runs/{run_id}/questions", timeout=10).json()["data"]
        if any(q["question"] == question and q["waiting"] for q in found):
            return
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not ask {question}: {examples.run(run_id)}")


def test_approval_example(examples: Examples) -> None:
    run_id = examples.start("review", {"path": "src/"}).json()["data"]["run_id"]
    _asked(examples, run_id, "approve/ship")
    env = {**os.environ, "AGENTCMD_HOME": str(examples.home), "PORT": examples.app_url.rsplit(":", 1)[1]}
    out = subprocess.run([sys.executable, "-m", "agentcmd", "runs", "approve", run_id, "--comment", "ship it"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    run = examples.wait(run_id)
    assert run["output"] == {"approved": True, "by": "cli", "comment": "ship it", "session": "sess-123"}
    artifact = next(s for s in run["steps"] if s["id"] == "artifact:review.md")
    assert Path(artifact["output"]["path"]).read_text() == "ok: Review the code in src/"
    assert any(s["id"] == "log" and s["output"]["log"].startswith("review ready") for s in run["steps"])


def test_ask_example(examples: Examples) -> None:
    run_id = examples.start("triage", {"issue": "the login page is slow"}).json()["data"]["run_id"]
    _asked(examples, run_id, "plan")
    answer = f"{examples.app_url}/api/runs/{run_id}/answer"
    bad = httpx.post(answer, json={"answer": {"priority": "urgent"}}, timeout=30)
    assert bad.status_code == 422 and {d["path"] for d in bad.json()["details"]} == {"priority", "owner"}
    ok = httpx.post(answer, json={"answer": {"priority": "high", "owner": "ana"}}, timeout=30)
    assert ok.status_code == 200, ok.text
    _asked(examples, run_id, "hours")
    assert httpx.post(answer, json={"answer": 3}, timeout=30).status_code == 200
    run = examples.wait(run_id)
    assert run["status"] == "Completed", run
    assert run["output"] == {"priority": "high", "owner": "ana", "hours": 3,
                             "fix": "ok: Fix within 3 hour(s): the login page is slow"}


def test_typed_input_example(examples: Examples) -> None:
    bad = examples.start("refactor", {"rounds": 9})
    assert bad.status_code == 422
    assert {d["path"] for d in bad.json()["details"]} == {"target", "rounds"}
    before = len(examples.claude_calls())
    resp = examples.start("refactor", {"target": "utils.py", "rounds": 2})
    run = examples.wait(resp.json()["data"]["run_id"])
    assert run["status"] == "Completed", run
    out = run["output"]
    assert out["session"] == "sess-123" and out["lint_ok"] is False and out["branch"].startswith("agentcmd/")
    calls = examples.claude_calls()[before:]
    assert len(calls) == 2 and calls[1][-4:-2] == ["--resume", "sess-123"]
    assert _git(examples.project, "show", f"{out['branch']}:utils.py") == "X = 1\n# refactored"
    assert (examples.project / "utils.py").read_text() == "X = 1\n"  # the worktree kept the checkout clean


def test_resume_example(examples: Examples) -> None:
    """docs/examples/resume.py as the guide tells it: fail, fix, resume; the agent's plan is not asked again."""
    broken = examples.project / "BROKEN"
    headers = {"Content-Type": "application/json"}
    outputs = []
    for edited in (None, {"target": "site"}):
        broken.touch()
        before = len(examples.claude_calls())
        old = examples.start("plan-build", {"target": "docs"}).json()["data"]["run_id"]
        assert examples.wait(old)["status"] == "Failed"
        assert len(examples.claude_calls()) == before + 1
        broken.unlink()
        body = {} if edited is None else {"input": edited}
        resp = httpx.post(f"{examples.app_url}/api/runs/{old}/resume", json=body, headers=headers, timeout=30)
        assert resp.status_code == 201, resp.text
        assert resp.json()["data"]["resumed_from"] == old and resp.json()["data"]["kept_steps"] >= 1
        run = examples.wait(resp.json()["data"]["run_id"])
        assert run["status"] == "Completed", run
        assert len(examples.claude_calls()) == before + 1, "the plan step was kept, not asked again"
        assert run["resume_of"] == old and examples.run(old)["resumed_as"] == [run["run_id"]]
        outputs.append(run["output"])
    assert outputs == [{"plan": "ok: Plan the build of docs", "build": "built", "target": "docs"},
                       {"plan": "ok: Plan the build of docs", "build": "built", "target": "site"}]


def test_notify_example(examples: Examples) -> None:
    log = examples.home.parent / "notify-send.jsonl"

    def told(run_id: str) -> list[list[str]]:
        lines = log.read_text().splitlines() if log.exists() else []
        return [argv for argv in map(json.loads, lines) if any(run_id in a for a in argv)]

    run_id = examples.start("nightly-check", {}).json()["data"]["run_id"]
    run = examples.wait(run_id)
    assert run["status"] == "Completed", run
    [argv] = wait_for(lambda: told(run_id), 30, "the desktop notification of the run")
    assert argv[2] == "agentcmd: nightly-check finished" and f"{examples.app_url}/runs/{run_id}" in argv[3]
    [entry] = examples.run(run_id)["notifications"]
    assert (entry["target"], entry["event"], entry["status"]) == ("me", "finished", "delivered")


def test_the_guide_documents_every_step_method_and_define_workflow_option() -> None:
    import inspect

    from agentcmd.workflows.define import define_workflow
    from agentcmd.workflows.steps import WorkflowSteps

    guide = GUIDE.read_text()
    methods = [n for n, _ in inspect.getmembers(WorkflowSteps, inspect.isfunction) if not n.startswith("_")]
    for name in methods:
        assert f"step.{name}(" in guide, f"step.{name} is not documented in docs/workflows.md"
    for option in inspect.signature(define_workflow).parameters:
        assert re.search(rf"`{option}[`=]", guide), f"define_workflow({option}=) is not documented"


def test_typed_input_example_does_not_run_input_as_shell(examples: Examples, tmp_path: Path) -> None:
    """The example once built ``echo ... >> {target}`` for a shell: ``x; touch FILE`` ran ``touch``."""
    marker = tmp_path / "injected"
    resp = examples.start("refactor", {"target": f"utils.py; touch {marker}", "rounds": 1})
    assert resp.status_code == 202, resp.text
    run = examples.wait(resp.json()["data"]["run_id"])
    edit = next(s for s in run["steps"] if s["id"] == "edit")
    assert edit["status"] in ("completed", "failed", "Completed", "Failed"), edit
    assert not marker.exists(), "workflow input ran as a shell command"


def test_github_issue_example(examples: Examples) -> None:
    """A signed GitHub delivery: the label ``agent`` starts a run with the issue as input, another label none."""
    from tests.harness.webhookpayloads import encode, github_headers, github_issue_labeled

    def deliver(label: str, number: int) -> httpx.Response:
        body = encode(github_issue_labeled(label, number, f"Issue {number}", None))
        return httpx.post(f"{examples.app_url}/api/webhooks/github", content=body,
                          headers=github_headers(EXAMPLE_GITHUB_SECRET, body), timeout=30)

    assert deliver("bug", 1).status_code == 202
    assert deliver("agent", 2).status_code == 202

    def finished() -> list[dict[str, Any]] | None:
        runs = httpx.get(f"{examples.app_url}/api/runs", params={"workflow": "github-issue"}, timeout=10).json()["data"]
        return runs if runs and all(r["status"] == "Completed" for r in runs) else None

    from tests.polling import wait_for

    [run] = wait_for(finished, 60, "the github-issue run")
    assert run["output"] == {"issue": 2, "title": "Issue 2", "plan": "ok: Plan a fix for issue #2: Issue 2\n\n"}
    page = httpx.get(f"{examples.app_url}/workflows/github-issue", timeout=10).text
    assert "Started by" in page and "event.data.label.name == &#39;agent&#39;" in page


def test_standup_example_is_scheduled_and_runs_by_hand_too(examples: Examples) -> None:
    """docs/examples/standup.py: the schedule and its next fire times are shown; a run by hand works too."""
    wf = httpx.get(f"{examples.app_url}/api/workflows/standup", timeout=10).json()["data"]
    assert (wf["cron"], wf["timezone"]) == (["0 9 * * 1-5"], "Europe/Paris")
    assert len(wf["next_runs"]) == 3 and all(t.endswith(("07:00:00Z", "08:00:00Z")) for t in wf["next_runs"])
    (examples.project / "standup.txt").write_text("standup\n")
    _git(examples.project, "add", "standup.txt")
    subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q", "-m",
                    "add standup notes file"], cwd=examples.project, check=True, capture_output=True)
    run = examples.wait(examples.start("standup", {}).json()["data"]["run_id"])
    assert run["status"] == "Completed", run
    assert run["output"]["commits"] >= 1 and run["output"]["notes"].startswith("ok: Write short standup notes")


def test_bulk_cancel_from_the_guide_cancels_every_waiting_review(examples: Examples) -> None:
    """docs/workflows.md "Cancelling": ``agentcmd functions cancel agentcmd-review`` on reviews nobody answered."""
    runs = [examples.start("review", {"path": f"src/{i}"}).json()["data"]["run_id"] for i in range(3)]
    for run_id in runs:
        _asked(examples, run_id, "approve/ship")
    env = {**os.environ, "AGENTCMD_HOME": str(examples.home), "AGENTCMD_ENGINE_URL": examples.engine_url}
    out = subprocess.run([sys.executable, "-m", "agentcmd", "functions", "cancel", "agentcmd-review"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["agentcmd-review: 3 run(s) cancelled", *sorted(runs)], out.stdout
    assert [examples.wait(r)["status"] for r in runs] == ["Cancelled"] * 3
