"""Notifications end to end: a real engine, the real app server, real HTTP targets, a fake ``notify-send``.

Each mode gets one stack whose ``AGENTCMD_NOTIFICATIONS`` names a JSON
webhook, a Slack webhook, a desktop target and a webhook that is down (its
port refuses connections, then answers 500). Runs finish, fail, are
cancelled through the engine's REST API (the workflow body is not told)
and wait for a human (a ``waiting`` run event published in the app);
each target hears what its settings and the workflow's rule say, once,
also after app server restarts, with the run's link; the URLs (secrets)
show nowhere.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.harness.e2e import synced
from tests.harness.processes import free_ports
from tests.harness.receiver import Receiver
from tests.polling import wait_for

from agentcmd.config.keys import generate_event_key, generate_signing_key
from agentcmd.inngest_env import inngest_env
from agentcmd.mode import Mode

pytestmark = pytest.mark.slow

WORKFLOWS = '''
from agentcmd import define_workflow
from agentcmd.workflows.runevents import RunEvent, publish


@define_workflow(id="ok", retries=0)
async def ok(ctx, step):
    await step.run("work", lambda: 1)
    return {"ok": True}


@define_workflow(id="boom", retries=0)
async def boom(ctx, step):
    def explode():
        raise RuntimeError("the build broke")
    await step.run("explode", explode)


@define_workflow(id="quiet", retries=0)
async def quiet(ctx, step):
    return "shh"


@define_workflow(id="slow", retries=0)
async def slow(ctx, step):
    await step.cli("wait", "sleep 120")


@define_workflow(id="asker", retries=0)
async def asker(ctx, step):
    async def ask():
        publish(RunEvent("waiting", ctx.run_id, "asker",
                         {"question": "deploy", "kind": "approval", "message": "Deploy to prod?"}))
        return True
    await step.run("ask", ask)
    got = await step.wait_for_event("answer", event="test/answer", timeout="5m")
    return {"answered": got is not None}
'''

HOOK_SECRET, SLACK_SECRET, DOWN_SECRET = "hook-secret-7f3a9c", "SLACKSECRET2b8d", "down-secret-e41f"
SECRETS = (HOOK_SECRET, SLACK_SECRET, DOWN_SECRET)

FAKE_NOTIFY_SEND = """#!{python}
import json, sys
with open({log!r}, "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
"""


@dataclass
class Stack:
    mode: str
    app_url: str
    engine_url: str
    key: str | None
    receiver: Receiver
    down_sock: socket.socket
    desktop_log: Path
    app_argv: list[str]
    app_env: dict[str, str]
    app: Any

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    def start(self, workflow: str) -> str:
        resp = httpx.post(f"{self.app_url}/api/workflows/{workflow}/runs", json={"input": {}}, timeout=30,
                          headers=self.headers)
        assert resp.status_code == 202, resp.text
        return str(resp.json()["data"]["run_id"])

    def run(self, run_id: str) -> dict[str, Any]:
        resp = httpx.get(f"{self.app_url}/api/runs/{run_id}", timeout=10, headers=self.headers)
        assert resp.status_code == 200, resp.text
        data: dict[str, Any] = resp.json()["data"]
        return data

    def status_of(self, run_id: str, target: str, event: str) -> dict[str, Any] | None:
        return next((n for n in self.run(run_id)["notifications"]
                     if n["target"] == target and n["event"] == event), None)

    def hook(self, run_id: str, event: str) -> list[dict[str, Any]]:
        return [b for b in self.receiver.bodies("/hook/") if b["run_id"] == run_id and b["event"] == event]

    def slack(self, run_id: str) -> list[dict[str, Any]]:
        return [b for b in self.receiver.bodies("/slack/") if run_id in b["text"]]

    def desktop(self) -> list[list[str]]:
        if not self.desktop_log.exists():
            return []
        return [json.loads(line) for line in self.desktop_log.read_text().splitlines()]


@pytest.fixture(params=["dev", "production"])
def stack(request: pytest.FixtureRequest, project: Path, procs: Any, tmp_path: Path) -> Iterator[Stack]:
    (project / ".agentcmd" / "workflows" / "notify_demo.py").write_text(WORKFLOWS)
    receiver = Receiver().start()
    down_sock = socket.socket()
    down_sock.bind(("127.0.0.1", 0))   # bound, not listening: connections are refused
    bindir = tmp_path / "bin"
    bindir.mkdir()
    desktop_log = tmp_path / "notify-send.jsonl"
    fake = bindir / "notify-send"
    fake.write_text(FAKE_NOTIFY_SEND.format(python=sys.executable, log=str(desktop_log)))
    fake.chmod(0o755)
    base_url = f"http://127.0.0.1:{receiver.port}"
    settings = {
        "targets": {
            "hook": {"type": "webhook", "url": f"{base_url}/hook/{HOOK_SECRET}"},
            "slack": {"type": "slack", "url": f"{base_url}/slack/T000/B000/{SLACK_SECRET}",
                      "events": ["failed", "cancelled", "waiting"]},
            "desk": {"type": "desktop", "events": ["failed"]},
            "down": {"type": "webhook", "url": f"http://127.0.0.1:{down_sock.getsockname()[1]}/down/{DOWN_SECRET}",
                     "events": ["finished"], "workflows": ["ok"]},
        },
        "workflows": {"quiet": {"targets": []}, "boom": {"targets": ["slack", "desk"]}},
        "attempts": 3, "backoff_seconds": 1.0, "timeout_seconds": 3, "poll_seconds": 0.2,
    }
    app_port, engine_port = free_ports(2)
    app_url, engine_url = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{engine_port}"
    base = {k: v for k, v in os.environ.items() if not k.startswith("INNGEST_")}
    base["PATH"] = os.pathsep.join([str(bindir), base.get("PATH", "")])
    if request.param == "dev":
        key = None
        engine_argv = [sys.executable, "-m", "agentcmd", "engine", "dev", "--host", "127.0.0.1", "--port",
                       str(engine_port), "--no-discovery", "--poll-interval", "0.2", "-u",
                       f"{app_url}/api/workflows/inngest"]
        engine_env = dict(base)
        app_env = inngest_env(Mode.DEV, engine_url, base=base)
    else:
        key, event_key = generate_signing_key(), generate_event_key()
        engine_argv = [sys.executable, "-m", "agentcmd", "engine", "start", "--host", "127.0.0.1", "--port",
                       str(engine_port), "--sqlite-dir", str(tmp_path / "db"), "--sdk-url",
                       f"{app_url}/api/workflows/inngest"]
        engine_env = {**base, "INNGEST_SIGNING_KEY": key, "INNGEST_EVENT_KEY": event_key}
        app_env = inngest_env(Mode.PRODUCTION, engine_url, event_key=event_key, signing_key=key, base=base)
    app_env["AGENTCMD_NOTIFICATIONS"] = json.dumps(settings)
    app_argv = [sys.executable, "-m", "agentcmd.server", "--port", str(app_port), "--project", str(project)]
    app = procs(app_argv, app_env)
    engine = procs(engine_argv, engine_env)
    wait_for(lambda: synced(engine_url, key, app_url), 60, "the engine to sync the app", engine.output)
    try:
        yield Stack(request.param, app_url, engine_url, key, receiver, down_sock, desktop_log, app_argv, app_env,
                    app)
    finally:
        receiver.stop()
        down_sock.close()


def _final(stack: Stack, run_id: str) -> dict[str, Any]:
    run: dict[str, Any] = wait_for(lambda: (r := stack.run(run_id))["status"] in ("Completed", "Failed", "Cancelled")
                                   and r, 60, f"run {run_id} to end")
    return run


def test_runs_notify_their_targets_once_with_the_link_and_never_show_a_secret(stack: Stack, procs: Any) -> None:
    link = f"{stack.app_url}/runs/"
    # finished: the JSON webhook (the down target keeps retrying meanwhile: the run is not held up)
    ok = stack.start("ok")
    run = _final(stack, ok)
    assert run["status"] == "Completed"
    [body] = wait_for(lambda: stack.hook(ok, "finished"), 20, "the finished webhook")
    assert body == {"event": "finished", "run_id": ok, "workflow_id": "ok", "status": "Completed",
                    "url": link + ok, "at": body["at"], "detail": {}, "text": f"ok run {ok} finished"}
    assert body["at"] == run["ended_at"]
    # Told promptly: within a few polls (poll_seconds 0.2 here) of the run's end.
    received = next(p["wall"] for p in stack.receiver.posts if p["body"] == body)
    latency = received - datetime.fromisoformat(body["at"].replace("Z", "+00:00")).timestamp()
    assert 0 <= latency < 5, latency
    print(f"notification latency after the run's end: {latency * 1000:.0f} ms")
    down = wait_for(lambda: stack.status_of(ok, "down", "finished"), 10, "the down target's first attempt")
    assert down["status"] == "retrying" and down["attempts"] == 1 and "ConnectError" in down["error"], down
    # The down target now answers 500: tried again after 1 s, then 2 s, then given up.
    down_receiver = Receiver(status=500).start(sock=stack.down_sock)
    try:
        final = wait_for(lambda: (d := stack.status_of(ok, "down", "finished")) and d["status"] == "failed" and d,
                         30, "the down target to be given up")
        assert final["attempts"] == 3 and final["error"] == "HTTP 500", final
        assert final["destination"].startswith("http://127.0.0.1:") and final["type"] == "webhook"
        times = [p["at"] for p in down_receiver.posts]
        assert 1 <= len(times) <= 2, times
        if len(times) == 2:
            assert times[1] - times[0] >= 1.5   # the second delay is twice the first
    finally:
        down_receiver.stop()
    assert stack.status_of(ok, "hook", "finished")["status"] == "delivered"  # type: ignore[index]
    assert stack.slack(ok) == []   # slack does not want "finished"

    # failed: boom's rule sends it to slack and the desktop only
    boom = stack.start("boom")
    boom_run = _final(stack, boom)
    assert boom_run["status"] == "Failed", boom_run
    [slack] = wait_for(lambda: stack.slack(boom), 20, "the slack message of the failure")
    assert set(slack) == {"text"}
    assert slack["text"].startswith(f"<{link}{boom}|boom run {boom}>") and "the build broke" in slack["text"]
    [argv] = wait_for(lambda: [a for a in stack.desktop() if any(boom in x for x in a)], 20, "notify-send")
    assert argv[:2] == ["--app-name=agentcmd", "--"] and argv[2] == "agentcmd: boom failed"
    assert f"{link}{boom}" in argv[3] and "the build broke" in argv[3]
    assert stack.hook(boom, "failed") == []

    # quiet's rule silences it
    quiet = stack.start("quiet")
    assert _final(stack, quiet)["status"] == "Completed"

    # cancelled through the engine's REST API, not the workflow body
    slow = stack.start("slow")
    wait_for(lambda: stack.run(slow)["status"] == "Running", 30, "the slow run to start")
    resp = httpx.delete(f"{stack.engine_url}/v1/runs/{slow}", headers=stack.headers, timeout=10)
    assert resp.status_code == 200, resp.text
    [cancelled] = wait_for(lambda: stack.hook(slow, "cancelled"), 20, "the cancelled webhook")
    assert cancelled["status"] == "Cancelled" and cancelled["url"] == link + slow
    wait_for(lambda: stack.slack(slow), 20, "the slack message of the cancel")

    # waiting: a run event published in the app
    asker = stack.start("asker")
    [waiting] = wait_for(lambda: stack.hook(asker, "waiting"), 30, "the waiting webhook")
    assert waiting["detail"] == {"question": "deploy", "kind": "approval", "message": "Deploy to prod?"}
    assert waiting["status"] == "Running" and "Deploy to prod?" in waiting["text"]
    [ask_slack] = wait_for(lambda: stack.slack(asker), 20, "the slack message of the question")
    assert "waits for a human: Deploy to prod?" in ask_slack["text"]
    wait_for(lambda: [n["question"] for n in stack.run(asker)["notifications"]] == ["deploy", "deploy"], 10,
             "the question's deliveries on the run")
    assert stack.run(quiet)["notifications"] == [] and stack.hook(quiet, "finished") == []

    # An app server restart: nothing is sent twice, and a run cancelled while the app was down is told after.
    slow2 = stack.start("slow")
    wait_for(lambda: stack.run(slow2)["status"] == "Running", 30, "the second slow run to start")
    posts_before = len(stack.receiver.posts)
    stack.app.stop()
    resp = httpx.delete(f"{stack.engine_url}/v1/runs/{slow2}", headers=stack.headers, timeout=10)
    assert resp.status_code == 200, resp.text
    stack.app = procs(stack.app_argv, stack.app_env)
    [late] = wait_for(lambda: stack.hook(slow2, "cancelled"), 30, "the cancel made while the app was down")
    assert late["url"] == link + slow2
    ok2 = stack.start("ok")   # a run after the restart: its notice comes after any repeat would have
    wait_for(lambda: stack.hook(ok2, "finished"), 30, "the finished webhook after the restart")
    wait_for(lambda: stack.slack(slow2), 20, "the slack message of the late cancel")
    new = [p["body"] for p in stack.receiver.posts[posts_before:]]
    assert sorted((b.get("run_id") or b["text"].split("run ")[1].split(">")[0], b.get("event", "slack"))
                  for b in new) == sorted([(slow2, "cancelled"), (slow2, "slack"), (ok2, "finished")]), new
    for run_id, event in ((ok, "finished"), (boom, "failed"), (slow, "cancelled"), (asker, "waiting")):
        assert len(stack.hook(run_id, event)) + len(stack.slack(run_id)) >= 1
    assert len(stack.hook(ok, "finished")) == 1 and len(stack.slack(boom)) == 1 and len(stack.slack(slow)) == 1

    # The URLs are secrets: not in the API, the run page, the app's log or config --show
    shown = [json.dumps(stack.run(r)) for r in (ok, boom, slow, asker, slow2)]
    if stack.mode == "dev":   # the views need a login in production; the API shows the same entries
        page = httpx.get(f"{stack.app_url}/runs/{ok}", timeout=10)
        assert page.status_code == 200 and 'data-testid="notifications"' in page.text
        assert 'data-target="down"' in page.text and "HTTP 500" in page.text and "failed" in page.text
        shown.append(page.text)
    shown.append(stack.app.output())
    for text in shown:
        for secret in SECRETS:
            assert secret not in text
