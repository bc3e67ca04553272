"""In a real Chromium, against ``agentcmd dev``: the workflow views update live over server-sent events.

- a run page's transcript grows while a step streams (entries counted
  increasing before the step ends, the page never reloaded), the running
  step shows its clock, and the page swaps to the final state when the run ends;
- an agent step's stream (the fake ``claude``) reads as a transcript:
  assistant messages, tool calls folded with their summary and result status;
- with JavaScript off, the run page is complete HTML (the transcript so far,
  the raw events link, the running step);
- the index and workflow pages change a run's status live.

Skipped with the printed reason where Playwright or Chromium is missing.
A failing test saves a screenshot under its tmp dir.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.harness.keys import app_headers
from tests.harness.processes import Spawned, free_port
from tests.polling import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(180)]

TALK = '''
from agentcmd import define_workflow

@define_workflow(id="talk", name="Talk", phases=["work"], retries=0)
async def talk(ctx, step):
    with step.phase("work"):
        await step.cli("count", "i=0; while [ ! -f {release} ]; do i=$((i+1)); echo \\"line $i\\"; sleep 0.2; done; "
                                "echo finished")
    return {{"ok": True}}
'''

REVIEW = '''
from agentcmd import define_workflow

@define_workflow(id="review", name="Review", phases=["review"], retries=0)
async def review(ctx, step):
    with step.phase("review"):
        result = await step.agent("look", prompt="review the diff", agent="claude")
    return {"text": result.text}
'''


SLOW = {"steps": [{"text": "I'll look at the failing test first."},
                  {"tool": "Bash", "input": {"command": "pytest -q tests/test_x.py"}, "output": "1 failed, 3 passed",
                   "is_error": False},
                  {"text": "The assertion compares against the old value; fixing it."},
                  {"tool": "Edit", "input": {"file_path": "src/x.py", "old_string": "a = 1", "new_string": "a = 2"},
                   "output": "The file src/x.py has been updated.", "is_error": False}],
        "usage": {"input_tokens": 1200, "output_tokens": 300, "cached_tokens": 800, "cost_usd": 0.0123}}
HOSTILE = {"steps": [{"text": '<img src=x onerror="window.__xss=1"> <b>bold</b>'},
                     {"tool": "Bash", "input": {"command": "echo '<script>window.__xss=2</script>'"},
                      "output": '<i onmouseover="window.__xss=3">out</i>', "is_error": True},
                     {"error": '<svg onload="window.__xss=4"></svg>'}]}


@dataclass
class Stack:
    url: str
    release: Path
    child: Spawned

    scenario: Path

    def start(self, workflow: str) -> str:
        resp = httpx.post(f"{self.url}/api/workflows/{workflow}/runs", json={}, timeout=15)
        assert resp.status_code == 202, resp.text
        run_id: str = resp.json()["data"]["run_id"]
        return run_id

    def run(self, run_id: str) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"{self.url}/api/runs/{run_id}", timeout=15).json()["data"]
        return data

    def wait_status(self, run_id: str, status: str) -> None:
        wait_for(lambda: self.run(run_id)["status"] == status, 60, f"run {run_id} {status}",
                 seen=lambda: self.run(run_id), children=[self.child])


@pytest.fixture
def project_workflows(tmp_path: Path) -> dict[str, str]:
    return {"talk.py": TALK.format(release=tmp_path / "release"), "review.py": REVIEW}


@pytest.fixture
def stack(spawn: Callable[..., Spawned], project: Path, tmp_path: Path, fake_agents: Any) -> Iterator[Stack]:
    scenario = tmp_path / "scenario.json"  # a test may write its own before it starts a run
    scenario.write_text(json.dumps({**SLOW, "delay": 0.3}))
    fake_agents.set(FAKE_AGENT_SCENARIO=str(scenario))  # the fakes stream every 0.3 s and hold before their result
    fake_agents.hold()
    app_port, engine_port = free_port(), free_port()
    child = spawn("dev", "--port", str(app_port), "--engine-port", str(engine_port), "--project", str(project),
                  "--stop-grace", "5", env=fake_agents.env())
    wait_for(lambda: "ready in " in child.output(), 60, "agentcmd dev ready", seen=child.output, children=[child])
    yield Stack(f"http://127.0.0.1:{app_port}", tmp_path / "release", child, scenario)
    (tmp_path / "release").write_text("go")  # let a step still waiting finish before the stack stops
    fake_agents.release()


def count(page: Any, selector: str) -> int:
    n: int = page.locator(selector).count()
    return n


def test_a_run_page_transcript_grows_while_the_step_streams(stack: Stack, page: Any) -> None:
    from playwright.sync_api import expect

    run_id = stack.start("talk")
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{stack.url}/runs/{run_id}")
    page.evaluate("window.__notReloaded = true")
    expect(page.get_by_test_id("running-step")).to_contain_text("count")
    wait_for(lambda: count(page, "#transcript .tx") >= 2, 30, "first entries", children=[stack.child])
    first = count(page, "#transcript .tx")
    wait_for(lambda: count(page, "#transcript .tx") >= first + 3, 30, "more entries while the step runs",
             seen=lambda: count(page, "#transcript .tx"), children=[stack.child])
    assert stack.run(run_id)["status"] == "Running"  # the step cannot end before the release file exists
    assert page.evaluate("window.__notReloaded") is True, "the transcript grew without a reload"
    streams = [u.split("?")[0] for u in requested if "live" in u]
    assert streams == [f"{stack.url}/runs/{run_id}/live"], "one stream for the whole page"
    expect(page.locator("#transcript .tx-output").first).to_contain_text("line 1")
    clock = page.locator(".running-step .elapsed")
    before = clock.text_content()
    wait_for(lambda: clock.text_content() != before, 10, "the running step's clock ticks")

    stack.release.write_text("go")
    expect(page.get_by_test_id("run-status")).to_contain_text("Completed", timeout=30_000)
    expect(page.locator("#transcript .tx-output").last).to_contain_text("finished")
    expect(page.get_by_test_id("running-step")).to_have_count(0)
    assert page.evaluate("window.__notReloaded") is True
    seqs = [int(s) for s in page.locator("#transcript [data-seq]").evaluate_all(
        "els => els.map(e => e.getAttribute('data-seq'))")]
    assert seqs == sorted(set(seqs)), "every event once, in order"
    kept = httpx.get(f"{stack.url}/runs/{run_id}/stream.json", timeout=15).json()["data"]
    assert [e["seq"] for e in kept if e["kind"] == "output"] == seqs


def test_an_agent_stream_reads_as_a_transcript(stack: Stack, page: Any, fake_agents: Any) -> None:
    from playwright.sync_api import expect

    run_id = stack.start("review")
    page.goto(f"{stack.url}/runs/{run_id}")
    page.evaluate("window.__notReloaded = true")
    expect(page.locator("#transcript .tx-text").first).to_contain_text("failing test first", timeout=30_000)
    grown = count(page, "#transcript .tx")
    tool = page.locator("#transcript details.tx-tool").first
    expect(tool.locator("summary")).to_contain_text("Bash")
    expect(tool.locator("summary")).to_contain_text("pytest")
    expect(tool.locator(".tx-status")).to_contain_text("ok", timeout=30_000)
    wait_for(lambda: count(page, "#transcript .tx") > grown, 30, "more entries before the step ends",
             children=[stack.child])
    assert stack.run(run_id)["status"] == "Running"  # held before its result
    assert not tool.evaluate("d => d.open"), "tool calls are folded"
    tool.locator("summary").click()
    expect(tool.locator(".tx-detail")).to_contain_text("1 failed, 3 passed")
    assert page.evaluate("window.__notReloaded") is True
    fake_agents.release()
    expect(page.get_by_test_id("run-status")).to_contain_text("Completed", timeout=30_000)


def test_without_javascript_the_run_page_is_complete(stack: Stack, browser: Any) -> None:
    from playwright.sync_api import expect

    run_id = stack.start("talk")
    wait_for(lambda: len(httpx.get(f"{stack.url}/runs/{run_id}/stream.json", timeout=15).json()["data"]) >= 3,
             30, "three lines kept", children=[stack.child])
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{stack.url}/runs/{run_id}")
        expect(page.get_by_test_id("running-step")).to_contain_text("count")
        expect(page.locator("#transcript .tx-output").first).to_contain_text("line 1")
        assert count(page, "#transcript .tx-output") >= 3
        raw = page.get_by_test_id("raw-events")
        expect(raw).to_have_attribute("href", f"/runs/{run_id}/stream.json")
        raw.click()
        events = json.loads(page.locator("body").inner_text())["data"]
        assert events[0]["kind"] == "output" and events[0]["text"] == "line 1"
    finally:
        context.close()
    stack.release.write_text("go")
    stack.wait_status(run_id, "Completed")


@pytest.mark.parametrize("where", ["/", "/workflows/talk"])
def test_run_lists_change_status_live(stack: Stack, page: Any, where: str) -> None:
    from playwright.sync_api import expect

    page.goto(stack.url + where)
    page.evaluate("window.__notReloaded = true")
    expect(page.locator("#live")).to_have_attribute("data-live", "/live" if where == "/" else "/live?workflow=talk")
    run_id = stack.start("talk")
    row = page.locator(f'tr[data-run-id="{run_id}"]')
    expect(row).to_contain_text("Running", timeout=30_000)
    stack.release.write_text("go")
    expect(row).to_contain_text("Completed", timeout=30_000)
    assert page.evaluate("window.__notReloaded") is True, "the list changed without a reload"


def test_a_run_stream_follows_the_run_page_twin_and_ends_with_the_run(stack: Stack) -> None:
    run_id = stack.start("talk")
    stack.wait_status(run_id, "Running")
    messages: list[tuple[str, dict[str, Any]]] = []
    with httpx.Client(base_url=stack.url, timeout=60) as client, \
            client.stream("GET", f"/live?run={run_id}", headers={"Accept": "text/event-stream"}) as response:
        event = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[len("event: "):]
            elif line.startswith("data: "):
                messages.append((event, json.loads(line[len("data: "):])))
                if len(messages) == 1:
                    twin = client.get(f"/runs/{run_id}.json").json()
                    assert messages[0] == ("version", {"version": twin["version"]})
                    stack.release.write_text("go")
                if event == "end":
                    break
    assert messages[-1][0] == "end"
    assert messages[-1][1]["version"] == httpx.get(f"{stack.url}/runs/{run_id}.json").json()["version"]
    assert stack.run(run_id)["status"] == "Completed"


def test_event_text_is_shown_as_text_never_as_html(stack: Stack, page: Any, fake_agents: Any) -> None:
    from playwright.sync_api import expect

    stack.scenario.write_text(json.dumps({**HOSTILE, "delay": 0.3}))
    run_id = stack.start("review")
    page.goto(f"{stack.url}/runs/{run_id}")
    box = page.locator("#transcript")
    expect(box.locator(".tx-error")).to_contain_text("<svg onload=", timeout=30_000)  # appended live
    for _ in ("live", "rendered on load"):
        expect(box.locator(".tx-text").first).to_contain_text('<img src=x onerror="window.__xss=1"> <b>bold</b>')
        expect(box.locator("details.tx-tool summary")).to_contain_text("<script>window.__xss=2</script>")
        expect(box.locator("details.tx-tool .tx-status")).to_contain_text("error")
        box.locator("details.tx-tool summary").click()
        expect(box.locator("details.tx-tool .tx-detail")).to_contain_text("<i onmouseover=")
        box.locator("details.tx-tool .tx-detail").hover()
        assert box.locator("img, b, i, script, svg").count() == 0
        assert page.evaluate("window.__xss") is None
        page.reload()
    fake_agents.release()
    stack.wait_status(run_id, "Completed")


def test_without_event_source_a_list_polls_its_twin(stack: Stack, page: Any) -> None:
    from playwright.sync_api import expect

    page.add_init_script("delete window.EventSource")
    page.goto(f"{stack.url}/workflows/talk")
    page.evaluate("window.__notReloaded = true")
    run_id = stack.start("talk")
    row = page.locator(f'tr[data-run-id="{run_id}"]')
    expect(row).to_contain_text("Running", timeout=30_000)
    stack.release.write_text("go")
    expect(row).to_contain_text("Completed", timeout=30_000)
    assert page.evaluate("window.__notReloaded") is True


def test_an_open_run_page_carries_on_after_agentcmd_start_restarts(spawn: Callable[..., Spawned], project: Path,
                                                                   tmp_path: Path, page: Any) -> None:
    """The page's stream drops with the app server and resumes (Last-Event-ID) from the restarted one."""
    from playwright.sync_api import expect

    ports = (str(free_port()), str(free_port()))

    def start() -> Spawned:
        child = spawn("start", "--port", ports[0], "--engine-port", ports[1], "--project", str(project),
                      "--stop-grace", "5")
        wait_for(lambda: "ready in " in child.output(), 60, "agentcmd start ready", seen=child.output,
                 children=[child])
        return child

    url = f"http://127.0.0.1:{ports[0]}"
    first = start()
    resp = httpx.post(f"{url}/api/workflows/talk/runs", json={}, headers=app_headers(), timeout=15)
    assert resp.status_code == 202, resp.text
    run_id = resp.json()["data"]["run_id"]
    page.goto(f"{url}/runs/{run_id}")
    page.evaluate("window.__notReloaded = true")
    wait_for(lambda: count(page, "#transcript .tx") >= 3, 30, "entries before the restart", children=[first])
    first.proc.send_signal(signal.SIGINT)
    assert first.proc.wait(30) == 0
    before = count(page, "#transcript .tx")
    expect(page.locator("#live-status")).to_contain_text("reconnecting")
    second = start()
    wait_for(lambda: count(page, "#transcript .tx") >= before + 3, 60, "entries after the restart",
             seen=lambda: count(page, "#transcript .tx"), children=[second])
    (tmp_path / "release").write_text("go")
    expect(page.get_by_test_id("run-status")).to_contain_text("Completed", timeout=60_000)
    assert page.evaluate("window.__notReloaded") is True
    seqs = [int(s) for s in page.locator("#transcript [data-seq]").evaluate_all(
        "els => els.map(e => e.getAttribute('data-seq'))")]
    assert seqs == sorted(set(seqs)), "every event once, in order, across the restart"
    kept = httpx.get(f"{url}/api/runs/{run_id}/stream", headers=app_headers(), timeout=15).json()["data"]
    assert [e["seq"] for e in kept if e["kind"] == "output"] == seqs
