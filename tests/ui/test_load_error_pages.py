"""Broken workflow files on a real engine + app server: every page answers, the errors are shown,
a duplicate id never takes over a workflow that has runs.

``agentcmd engine dev`` syncs ``python -m agentcmd.server`` for a project with
workflow files that fail in each way (syntax, import, exception at import,
bad ``define_workflow`` arguments). Runs are made, then a workflow's file is
broken, a newcomer file that sorts first declares an id that already has a
run waiting for an event, and the app server restarts. Every route of both
web UIs (the app server's workflow views and the engine dashboard, HTML and
JSON twins, forms posted without a token) is then requested: none answers
5xx. The waiting run resumes with its original code.
"""

from __future__ import annotations

import re
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from markupsafe import escape
from tests.harness.processes import Child, clean_env, free_port, run_cli
from tests.polling import wait_for

from agentcmd.inngest_env import inngest_env
from agentcmd.mode import Mode

pytestmark = pytest.mark.slow  # real engine and app server subprocesses

TWIN = '''
from agentcmd import define_workflow

@define_workflow(id="twin", name="Twin ({who})", phases={phases}, retries=0)
async def twin(ctx, step):
    with step.phase({first!r}):
        await step.wait_for_event("gate", event="test/gate", timeout="10m")
    with step.phase({last!r}):
        await step.run("done", lambda: {who!r})
    return {{"from": {who!r}}}
'''

QUICK = '''
from agentcmd import define_workflow

@define_workflow(id="{id}", phases=["only"], retries=0)
async def quick(ctx, step):
    with step.phase("only"):
        await step.run("one", lambda: 1)
        await step.artifact("report.txt", "all green")
    return {{"ok": True}}
'''

BROKEN = {  # file -> (source, line, kind)
    "broken_syntax.py": ("x = 1\ndef broken(:\n    pass\n", 2, "syntax_error"),
    "broken_import.py": ("import os\nimport no_such_module_for_agentcmd\n", 2, "import_error"),
    "broken_raise.py": ("x = 1\n\nraise RuntimeError('boom at import')\n", 3, "exception"),
    "broken_define.py": ("from agentcmd import define_workflow\n\n\n"
                         "@define_workflow(id='bad', phases=['a', 'a'])\nasync def bad(ctx, step):\n    pass\n",
                         4, "invalid_workflow"),
}


@dataclass
class BrokenStack:
    engine: str
    app: str
    project: Path
    workflows: Path
    app_argv: list[str]
    app_env: dict[str, str]
    children: list[Child]
    runs: dict[str, str]

    def logs(self) -> str:
        return "\n".join(f"--- {' '.join(map(str, c.proc.args[1:4]))}\n{c.output()[-2500:]}" for c in self.children)

    def start_app(self) -> None:
        self.children.append(Child(self.app_argv, self.app_env, self.project.parent / f"app{len(self.children)}.log"))
        wait_for(lambda: httpx.get(f"{self.app}/health", timeout=5).status_code == 200, 60,
                 "the app server to answer", self.logs, (self.children[-1],))

    def start_run(self, workflow: str) -> str:
        body = httpx.post(f"{self.app}/api/workflows/{workflow}/runs", json={"input": {}}, timeout=30)
        assert body.status_code == 202, body.text
        run_id = body.json()["data"]["run_id"]
        assert run_id, body.text
        return str(run_id)

    def run(self, run_id: str) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"{self.engine}/v1/runs/{run_id}", timeout=10).json()["data"]
        return data

    def wait_status(self, run_id: str, status: str) -> dict[str, Any]:
        return wait_for(lambda: (r := self.run(run_id))["status"] == status and r, 60,  # type: ignore[no-any-return]
                        f"run {run_id} to be {status}", self.logs)


def _write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokenStack]:
    tmp = tmp_path_factory.mktemp("broken")
    project = tmp / "project"
    folder = project / ".agentcmd" / "workflows"
    folder.mkdir(parents=True)
    _write(folder, "a_twin.py", TWIN.format(who="original", phases=["wait", "finish"], first="wait", last="finish"))
    _write(folder, "good.py", QUICK.format(id="good"))
    _write(folder, "victim.py", QUICK.format(id="victim"))
    for name, (source, _, _) in BROKEN.items():
        _write(folder, name, source)
    engine_port, app_port = free_port(), free_port()
    engine, app = f"http://127.0.0.1:{engine_port}", f"http://127.0.0.1:{app_port}"
    base = clean_env(tmp / "home")
    app_argv = [sys.executable, "-m", "agentcmd.server", "--port", str(app_port), "--project", str(project),
                "--log-level", "warning"]
    stack = BrokenStack(engine, app, project, folder, app_argv, inngest_env(Mode.DEV, engine, base=base), [], {})
    try:
        stack.children.append(Child([sys.executable, "-m", "agentcmd", "engine", "dev", "--port", str(engine_port),
                                     "--no-discovery", "--poll-interval", "0.5", "-u", f"{app}/api/workflows/inngest"],
                                    base, tmp / "engine.log"))
        stack.start_app()
        wait_for(lambda: len(httpx.get(f"{engine}/v1/functions", timeout=5).json().get("data") or []) == 3, 60,
                 "the engine to sync the three loadable workflows", stack.logs, tuple(stack.children))
        for wf in ("good", "victim"):
            stack.runs[wf] = stack.start_run(wf)
            stack.wait_status(stack.runs[wf], "Completed")
        stack.runs["twin"] = stack.start_run("twin")
        wait_for(lambda: any(w["kind"] == "wait" for w in httpx.get(
            f"{engine}/runs/{stack.runs['twin']}.json", timeout=10).json()["waits"]), 60,
            "the twin run to wait for its event", stack.logs)
        # Now: the victim's file breaks, a newcomer that sorts first declares "twin", another declares "victim".
        _write(folder, "victim.py", "def broken(:\n")
        _write(folder, "0_twin.py", TWIN.format(who="newcomer", phases=["other", "steps"], first="other",
                                                last="steps"))
        _write(folder, "z_victim.py", QUICK.format(id="victim"))
        first = stack.children.pop(1)
        first.stop()
        stack.children.append(first)  # keep its log for failures, already stopped
        stack.start_app()
        yield stack
    finally:
        for child in stack.children:
            child.stop()


def test_the_index_page_lists_every_load_error_with_file_line_and_hint(broken: BrokenStack) -> None:
    body = httpx.get(f"{broken.app}/api/workflows", timeout=10).json()
    assert sorted(w["id"] for w in body["data"]) == ["good", "twin"]
    errors = {Path(e["source"]).name: e for e in body["errors"]}
    for name, (_, line, kind) in BROKEN.items():
        assert (errors[name]["line"], errors[name]["kind"]) == (line, kind), errors[name]
    assert errors["victim.py"]["kind"] == "syntax_error"
    dup = errors["0_twin.py"]
    assert (dup["kind"], dup["workflow_id"], dup["other"]) == ("duplicate_id", "twin",
                                                                f"{broken.workflows / 'a_twin.py'}:4")
    reserved = errors["z_victim.py"]
    assert reserved["kind"] == "duplicate_id" and reserved["other"] == str(broken.workflows / "victim.py")
    page = httpx.get(f"{broken.app}/", timeout=10)
    assert page.status_code == 200, page.text
    assert f"{len(body['errors'])} workflow load errors" in page.text
    for err in body["errors"]:
        assert str(escape(err["where"])) in page.text and str(escape(err["hint"])) in page.text, err
    assert httpx.get(f"{broken.app}/index.json", timeout=10).json()["load_errors"] == body["errors"]
    assert httpx.get(f"{broken.app}/health", timeout=10).json()["load_errors"] == len(body["errors"])


def test_the_duplicate_does_not_take_over_the_workflow_that_has_runs(broken: BrokenStack) -> None:
    twin = httpx.get(f"{broken.app}/api/workflows/twin", timeout=10).json()["data"]
    assert twin["source"] == str(broken.workflows / "a_twin.py") and twin["phases"] == ["wait", "finish"]
    sent = httpx.post(f"{broken.app}/api/events", json={"name": "test/gate", "data": {}}, timeout=30)
    assert sent.status_code == 200, sent.text
    run = broken.wait_status(broken.runs["twin"], "Completed")
    assert run["output"] in ({"from": "original"}, '{"from": "original"}')  # the in-flight run kept its code
    view = httpx.get(f"{broken.app}/runs/{broken.runs['twin']}.json", timeout=10).json()["run"]
    assert view["phases"] == ["wait", "finish"] and view["phase"] == "finish"
    listed = run_cli("workflows", "list", env={"PORT": broken.app.rsplit(":", 1)[1]})
    assert listed.returncode == 1, listed
    assert (f"not loaded: {broken.workflows / '0_twin.py'}:4: duplicate workflow id 'twin': also defined in "
            f"{broken.workflows / 'a_twin.py'}:4, which is served") in listed.stderr
    assert "fix: give one of them another id" in listed.stderr


def test_a_workflow_whose_file_broke_is_not_served_by_its_duplicate(broken: BrokenStack) -> None:
    resp = httpx.get(f"{broken.app}/api/workflows/victim", timeout=10)
    assert resp.status_code == 404 and "failed to load" in resp.json()["error"]
    page = httpx.get(f"{broken.app}/runs/{broken.runs['victim']}", timeout=10)
    assert page.status_code == 200 and broken.runs["victim"] in page.text  # its old run is still shown


def _routes() -> set[tuple[str, str]]:
    """(method, path template) of every route of both web UIs and the app API."""
    from agentcmd.engine.dashboard import DashboardConfig, create_router
    from agentcmd.server import api
    from agentcmd.ui.views import create_router as ui_router
    from agentcmd.webauth.guard import WebAuth

    out: set[tuple[str, str]] = set()
    auth = WebAuth.build(Mode.DEV, "127.0.0.1", False, None)
    for prefix, router in (("app", ui_router(auth)), ("app", api.router),
                           ("engine", create_router(None, DashboardConfig(Mode.DEV, auth), None))):  # type: ignore[arg-type]
        for route in router.routes:
            path = getattr(route, "path", None)
            for method in getattr(route, "methods", None) or ():
                if method != "HEAD" and path:
                    out.add((method, f"{prefix}:{path}"))
    assert len(out) > 40, out  # the routers were read
    return out


def test_every_page_of_both_web_uis_answers_without_a_server_error(broken: BrokenStack) -> None:
    runs = broken.runs
    event_id = broken.run(runs["good"])["event_id"]
    slugs = [f["slug"] for f in httpx.get(f"{broken.engine}/v1/functions", timeout=10).json()["data"]]
    assert "agentcmd-twin" in slugs, slugs
    app_gets = ["/", "/index.json", "/?format=json", "/health", "/login", "/_ui/static/dashboard.css",
                "/_ui/static/nope",
                "/api/workflows", "/api/runs", "/api/runs?workflow=twin", "/api/runs?workflow=victim",
                "/api/runs?workflow=bad", "/api/runs/01NOPE",
                "/metrics",
                "/live?run=01NOPE", "/live?workflow=nope"]  # a live stream that would never end is not asked for
    for wf in ("good", "twin", "victim", "bad", "nope"):
        app_gets += [f"/workflows/{wf}", f"/workflows/{wf}.json", f"/workflows/{wf}?format=json",
                     f"/api/workflows/{wf}"]
    for run_id in (*runs.values(), "01NOPE"):
        app_gets += [f"/runs/{run_id}", f"/runs/{run_id}.json", f"/api/runs/{run_id}",
                     f"/runs/{run_id}/artifacts/report.txt", f"/api/runs/{run_id}/questions"]
    engine_gets = ["/", "/runs", "/runs.json", "/runs?status=Completed", "/events", "/events.json", "/apps",
                   "/apps.json", "/send", "/login", "/_dashboard/static/dashboard.js", "/_dashboard/static/nope",
                   f"/events/{event_id}", f"/events/{event_id}.json", "/events/01NOPE",
                   # live streams that would never end are not asked for: one that is refused at once
                   "/runs/live?since=not-a-time", "/runs/01NOPE/live", "/functions/nope/live", "/metrics"]
    for slug in (*slugs, "agentcmd-victim", "agentcmd-bad", "nope"):
        engine_gets += [f"/functions/{slug}", f"/functions/{slug}.json"]
    for run_id in (*runs.values(), "01NOPE"):
        engine_gets += [f"/runs/{run_id}", f"/runs/{run_id}.json"]
    # Forms posted without a CSRF token (nothing is changed): refused, never a server error.
    app_posts = ["/workflows/twin/start", "/workflows/victim/start", "/workflows/nope/start",
                 f"/runs/{runs['good']}/cancel", "/login", "/logout", "/api/workflows/victim/runs",
                 "/api/workflows/nope/runs", "/api/runs/01NOPE/cancel", "/api/events",
                 "/api/webhooks/github", "/api/webhooks/linear", "/api/webhooks/generic/nope",  # unsigned: 404/401
                 # approvals and questions: a run that asked none, an unknown run, a question id with a phase
                 f"/runs/{runs['good']}/questions/check/deploy/approve", f"/runs/{runs['good']}/questions/x/answer",
                 "/runs/01NOPE/questions/x/approve", f"/api/runs/{runs['good']}/approve", "/api/runs/01NOPE/answer",
                 f"/runs/{runs['good']}/resume", "/api/runs/01NOPE/resume"]
    engine_posts = [f"/runs/{runs['good']}/cancel", f"/runs/{runs['good']}/rerun", "/apps/agentcmd/resync", "/send",
                    "/functions/agentcmd-twin/replay", "/functions/agentcmd-twin/pause",
                    "/functions/agentcmd-twin/unpause", "/functions/agentcmd-twin/cancel-runs", "/login", "/logout",
                    f"/runs/{runs['good']}/resume"]
    seen: set[tuple[str, str]] = set()
    answers: list[str] = []
    for side, base, method, paths in (("app", broken.app, "GET", app_gets),
                                      ("engine", broken.engine, "GET", engine_gets),
                                      ("app", broken.app, "POST", app_posts),
                                      ("engine", broken.engine, "POST", engine_posts)):
        for path in paths:
            resp = httpx.request(method, base + path, timeout=30, follow_redirects=False,
                                 **({"data": {"input": "{}"}} if method == "POST" and "/api/" not in path else {}))
            answers.append(f"{method} {side}{path} -> {resp.status_code}")
            assert resp.status_code < 500, f"{method} {base}{path}: {resp.status_code}\n{resp.text[:2000]}"
            if path.endswith(".json") or "format=json" in path or "/api/" in path:
                assert isinstance(resp.json(), dict), path
            seen.add((method, f"{side}:{urlsplit(path).path}"))
    # Every route of both UIs (and the app API) was requested at least once.
    missing = []
    for method, template in sorted(_routes()):
        side, _, path = template.partition(":")
        if side == "app" and path.startswith("/api/workflows/inngest"):
            continue  # the SDK's endpoint, not a page
        pattern = re.compile(re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")
        if not any(m == method and s.startswith(side + ":") and pattern.match(s.partition(":")[2]) for m, s in seen):
            missing.append(f"{method} {template}")
    assert not missing, f"routes not exercised: {missing}\n" + "\n".join(answers)
