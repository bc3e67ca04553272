"""Webhooks end to end: signed GitHub, Linear and generic deliveries on the real app server and engine.

The documented example (docs/examples/github_issue.py: a run when an issue
gets the label ``agent``, with its title and body as input) runs in both
modes, dev (``engine dev``) and production (``engine start`` with keys,
where the rest of the app API needs a bearer the webhook routes do not).
Payloads are the shapes GitHub and Linear document, signed here with the
configured secrets; the logs of both servers are searched for the secrets.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from tests.harness.e2e import port_free, synced
from tests.harness.processes import free_ports
from tests.harness.webhookpayloads import (
    encode,
    github_headers,
    github_issue_labeled,
    linear_headers,
    linear_issue_created,
)
from tests.polling import wait_for

from agentcmd.config.keys import generate_event_key, generate_signing_key
from agentcmd.inngest_env import inngest_env
from agentcmd.mode import Mode
from agentcmd.server.webhooksig import sign
from agentcmd.server.webhookstore import DeliveryStore

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
GITHUB_SECRET = "gh-" + uuid.uuid4().hex + "secret"
LINEAR_SECRET = "lin_wh_" + uuid.uuid4().hex
DEPLOY_SECRET = "deploy-" + uuid.uuid4().hex
MAX_BODY = 64 * 1024

OTHERS = '''
from agentcmd import define_workflow, on_event


@define_workflow(id="linear-issue", on=on_event("linear/issue", filter="event.data.action == 'create'",
                                                input={"title": "event.data.data.title",
                                                       "team": "event.data.data.team.key"}))
async def linear_issue(ctx, step):
    return ctx.input


@define_workflow(id="deploy", on=on_event("webhook/deploy", input={"ref": "event.data.ref"}))
async def deploy(ctx, step):
    return ctx.input
'''


class Stack:
    def __init__(self, project: Path, procs: Any, mode: Mode, tmp: Path) -> None:
        self.app_port, self.engine_port = free_ports(2)
        self.app_url = f"http://127.0.0.1:{self.app_port}"
        self.engine_url = f"http://127.0.0.1:{self.engine_port}"
        self.project, self.procs, self.mode = project, procs, mode
        base = {k: v for k, v in os.environ.items() if not k.startswith("INNGEST_")}
        base.update({"AGENTCMD_WEBHOOKS__GITHUB__SECRET": GITHUB_SECRET,
                     "AGENTCMD_WEBHOOKS__LINEAR__SECRET": LINEAR_SECRET,
                     "AGENTCMD_WEBHOOKS__GENERIC__DEPLOY__SECRET": DEPLOY_SECRET,
                     "AGENTCMD_WEBHOOKS__GENERIC__DEPLOY__HEADER": "X-Deploy-Signature",
                     "AGENTCMD_WEBHOOKS__GENERIC__DEPLOY__DELIVERY_HEADER": "X-Deploy-Id",
                     "AGENTCMD_WEBHOOKS__MAX_BODY_BYTES": str(MAX_BODY)})
        sdk_url = f"{self.app_url}/api/workflows/inngest"
        if mode is Mode.PRODUCTION:
            self.key: str | None = generate_signing_key()
            event_key = generate_event_key()
            engine_env = {**base, "INNGEST_SIGNING_KEY": self.key, "INNGEST_EVENT_KEY": event_key}
            self.engine_argv = [sys.executable, "-m", "agentcmd", "engine", "start", "--host", "127.0.0.1",
                                "--port", str(self.engine_port), "--sqlite-dir", str(tmp / "db"), "--sdk-url", sdk_url]
            self.app_env = inngest_env(Mode.PRODUCTION, self.engine_url, event_key=event_key, signing_key=self.key,
                                       base=base)
        else:
            self.key = None
            engine_env = base
            self.engine_argv = [sys.executable, "-m", "agentcmd", "engine", "dev", "--host", "127.0.0.1", "--port",
                                str(self.engine_port), "--no-discovery", "--poll-interval", "0.2", "-u", sdk_url]
            self.app_env = inngest_env(Mode.DEV, self.engine_url, base=base)
        self.app = self.start_app()
        self.engine = procs(self.engine_argv, engine_env)
        wait_for(lambda: synced(self.engine_url, self.key, self.app_url), 60, "the engine to sync the app",
                 lambda: self.engine.output() + self.app.output())

    def start_app(self) -> Any:
        self.apps: list[Any] = getattr(self, "apps", [])
        self.apps.append(self.procs([sys.executable, "-m", "agentcmd.server", "--port", str(self.app_port), "--project",
                           str(self.project), "--log-level", "debug"], self.app_env))
        return self.apps[-1]

    def restart_app(self) -> None:
        self.app.stop()
        wait_for(lambda: port_free(self.app_port), 30, "the app port to be free")
        self.app = self.start_app()
        wait_for(lambda: synced(self.engine_url, self.key, self.app_url), 60, "the app to answer again",
                 self.app.output)

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return httpx.post(f"{self.app_url}/api/webhooks/{path}", content=body, headers=headers, timeout=30)

    def runs(self, workflow: str) -> list[dict[str, Any]]:
        resp = httpx.get(f"{self.app_url}/api/runs", params={"workflow": workflow}, headers=self.bearer, timeout=10)
        assert resp.status_code == 200, resp.text
        data: list[dict[str, Any]] = resp.json()["data"]
        return data

    def finished(self, workflow: str, count: int) -> list[dict[str, Any]]:
        def done() -> list[dict[str, Any]] | None:
            runs = self.runs(workflow)
            ok = len(runs) >= count and all(r["status"] in ("Completed", "Failed", "Cancelled") for r in runs)
            return runs if ok else None
        runs: list[dict[str, Any]] = wait_for(done, 60, f"{count} finished run(s) of {workflow}",
                                              lambda: self.engine.output()[-3000:] + self.app.output()[-3000:])
        return runs

    def deliveries(self) -> int:
        return DeliveryStore.under(Path(os.environ["AGENTCMD_HOME"]) / "data").count()

    def logs(self) -> str:
        return "".join(app.output() for app in self.apps) + self.engine.output()


@pytest.fixture
def webhook_project(project: Path, write_workflow: Any, fake_claude: Any) -> Path:
    shutil.copy(ROOT / "docs" / "examples" / "github_issue.py", project / ".agentcmd" / "workflows")
    write_workflow("others.py", OTHERS)
    return project


def _github(stack: Stack, payload: dict[str, Any], delivery: str | None = None,
            event: str = "issues") -> tuple[httpx.Response, str]:
    body = encode(payload)
    headers = github_headers(GITHUB_SECRET, body, event=event, delivery=delivery)
    return stack.post("github", body, headers), headers["X-GitHub-Delivery"]


@pytest.mark.parametrize("mode", [Mode.DEV, Mode.PRODUCTION], ids=["dev", "production"])
def test_an_issue_labelled_agent_starts_the_example_once_and_nothing_else_does(
        webhook_project: Path, procs: Any, tmp_path: Path, fake_claude: Any, mode: Mode) -> None:
    stack = Stack(webhook_project, procs, mode, tmp_path)

    ping = encode({"zen": "Design for failure.", "hook_id": 292430182, "hook": {"type": "Repository"}})
    resp = stack.post("github", ping, github_headers(GITHUB_SECRET, ping, event="ping"))
    assert (resp.status_code, resp.json()["status"]) == (200, "pong")

    resp, delivery = _github(stack, github_issue_labeled("agent", 1347, "Found a bug", "It crashes on start."))
    assert resp.status_code == 202, resp.text
    assert resp.json() == {"status": "accepted", "event": "github/issues", "event_id": f"github-{delivery}",
                           "delivery": delivery}
    [run] = stack.finished("github-issue", 1)
    assert run["status"] == "Completed", run
    assert run["output"]["issue"] == 1347 and run["output"]["title"] == "Found a bug"
    assert run["output"]["plan"] == "answer to: Plan a fix for issue #1347: Found a bug\n\nIt crashes on start."

    # Another label, then another issue labelled agent (with a null body): only the second starts a run.
    assert _github(stack, github_issue_labeled("bug", 7, "Not for the agent"))[0].status_code == 202
    form = urlencode({"payload": encode(github_issue_labeled("bug", 9, "Form-encoded"))}).encode()
    resp = stack.post("github", form, {**github_headers(GITHUB_SECRET, form),
                                       "Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 202 and resp.json()["event"] == "github/issues", resp.text
    assert _github(stack, github_issue_labeled("agent", 8, "No description", None))[0].status_code == 202
    runs = stack.finished("github-issue", 2)
    assert sorted(r["output"]["title"] for r in runs) == ["Found a bug", "No description"]
    assert [c["argv"][-1] for c in fake_claude.calls()][-1] == "Plan a fix for issue #8: No description\n\n"

    # The same delivery again (GitHub's "Redeliver", or a replay of a captured request): nothing starts.
    stored = stack.deliveries()
    resp, _ = _github(stack, github_issue_labeled("agent", 1347, "Found a bug", "It crashes on start."), delivery)
    assert resp.status_code == 200 and resp.json()["status"] == "duplicate", resp.text

    # A wrong or missing signature: 401, nothing recorded, nothing sent.
    body = encode(github_issue_labeled("agent", 99, "Forged"))
    forged = github_headers("not-the-secret-at-all-0000", body)
    assert stack.post("github", body, forged).status_code == 401
    unsigned = {k: v for k, v in forged.items() if k != "X-Hub-Signature-256"}
    resp = stack.post("github", body, unsigned)
    assert resp.status_code == 401 and resp.json()["code"] == "unauthorized"
    tampered = github_headers(GITHUB_SECRET, body)
    assert stack.post("github", body.replace(b"Forged", b"Forgex"), tampered).status_code == 401
    assert stack.deliveries() == stored

    # The record outlives the app server: after a restart the replay still starts nothing.
    stack.restart_app()
    resp, _ = _github(stack, github_issue_labeled("agent", 1347, "Found a bug", "It crashes on start."), delivery)
    assert resp.status_code == 200 and resp.json()["status"] == "duplicate", resp.text
    resp, _ = _github(stack, github_issue_labeled("agent", 11, "After the restart"))
    assert resp.status_code == 202
    runs = stack.finished("github-issue", 3)
    assert sorted(r["output"]["title"] for r in runs) == ["After the restart", "Found a bug", "No description"]
    assert len(fake_claude.calls()) == 3

    logs = stack.logs()
    assert "refused a github webhook" in logs   # the app did log the refusals...
    for secret in (GITHUB_SECRET, LINEAR_SECRET, DEPLOY_SECRET, sign(GITHUB_SECRET, body)):
        assert secret not in logs              # ...but never a secret or a signature


def test_linear_generic_oversized_stale_and_unconfigured_deliveries(
        webhook_project: Path, procs: Any, tmp_path: Path) -> None:
    stack = Stack(webhook_project, procs, Mode.PRODUCTION, tmp_path)

    # The rest of the app API needs the bearer in production; the webhook routes need only their signature.
    assert httpx.post(f"{stack.app_url}/api/events", json={"name": "x/y", "data": {}}, timeout=10).status_code == 401

    body = encode(linear_issue_created("Fix the login page"))
    headers = linear_headers(LINEAR_SECRET, body)
    resp = stack.post("linear", body, headers)
    assert resp.status_code == 202, resp.text
    assert resp.json()["event"] == "linear/issue"
    assert stack.post("linear", body, headers).json()["status"] == "duplicate"
    [run] = stack.finished("linear-issue", 1)
    assert run["output"] == {"title": "Fix the login page", "team": "ENG"}

    stored = stack.deliveries()
    stale = encode(linear_issue_created("Old news", timestamp_ms=int(time.time() * 1000) - 5 * 60_000))
    resp = stack.post("linear", stale, linear_headers(LINEAR_SECRET, stale))
    assert resp.status_code == 401 and "webhookTimestamp" in resp.json()["error"]
    assert stack.post("linear", body, linear_headers("lin_wh_wrong_secret_000000", body)).status_code == 401
    assert stack.deliveries() == stored

    deploy = encode({"ref": "refs/heads/main", "sha": "6dcb09b5b57875f334f61aebed695e2e4193db5e"})
    signed = {"Content-Type": "application/json", "X-Deploy-Signature": "sha256=" + sign(DEPLOY_SECRET, deploy),
              "X-Deploy-Id": "deploy-1"}
    resp = stack.post("generic/deploy", deploy, signed)
    assert resp.status_code == 202 and resp.json()["event"] == "webhook/deploy", resp.text
    assert stack.post("generic/deploy", deploy, signed).json()["status"] == "duplicate"
    [run] = stack.finished("deploy", 1)
    assert run["output"] == {"ref": "refs/heads/main"}
    bare = {**signed, "X-Deploy-Signature": sign(DEPLOY_SECRET, deploy), "X-Deploy-Id": "deploy-2"}  # hex alone
    assert stack.post("generic/deploy", deploy, bare).status_code == 202
    assert stack.post("generic/deploy", deploy, {**signed, "X-Deploy-Id": ""}).status_code == 400

    resp = stack.post("generic/unknown", deploy, signed)
    assert resp.status_code == 404 and "AGENTCMD_WEBHOOKS__GENERIC__<NAME>__SECRET" in resp.json()["hint"]

    # Over the limit: 413 from the announced length, and from a streamed (chunked) body, reading stops there.
    big = b'{"ref": "' + b"x" * MAX_BODY + b'"}'
    big_headers = {**signed, "X-Deploy-Signature": "sha256=" + sign(DEPLOY_SECRET, big), "X-Deploy-Id": "big"}
    assert stack.post("generic/deploy", big, big_headers).status_code == 413

    def chunks() -> Any:
        for i in range(0, len(big), 8192):
            yield big[i:i + 8192]

    resp = httpx.post(f"{stack.app_url}/api/webhooks/generic/deploy", content=chunks(), headers=big_headers,
                      timeout=30)
    assert resp.status_code == 413

    # Signed but not JSON: 400. From a browser on another site: still only the signature counts.
    text = b"not json"
    resp = stack.post("generic/deploy", text, {**signed, "X-Deploy-Signature": sign(DEPLOY_SECRET, text),
                                               "X-Deploy-Id": "text"})
    assert resp.status_code == 400 and resp.json()["code"] == "invalid_input"
    cross = {**signed, "X-Deploy-Id": "deploy-3", "Origin": "https://example.org", "Sec-Fetch-Site": "cross-site"}
    assert stack.post("generic/deploy", deploy, cross).status_code == 202
    assert stack.post("generic/deploy", deploy, {**cross, "X-Deploy-Signature": "sha256=00"}).status_code == 401
    assert len(stack.runs("deploy")) >= 1

    logs = stack.logs()
    for secret in (GITHUB_SECRET, LINEAR_SECRET, DEPLOY_SECRET, sign(DEPLOY_SECRET, deploy)):
        assert secret not in logs
