"""Take the docs' screenshots of a live transcript (docs/dashboard.md, "Live transcript").

    .venv/bin/python scripts/live_transcript_screenshots.py [--out docs/images]

Starts ``agentcmd dev`` for a throwaway project whose workflow runs one
``step.agent`` with the fake ``claude`` of the tests (``tests/fakes/bin``:
the real CLIs are not installed here; the fake prints claude's real
``stream-json`` format, slowly, and holds before its result), opens the run
page in Debian's Chromium (Playwright) while the agent streams, and saves:

- ``workflow-live-transcript.png``: the run page mid-stream (running step
  with its clock, messages, folded tool calls, an error highlighted);
- ``workflow-live-tool.png``: the transcript with a tool call unfolded.

Everything it starts is stopped by PID at the end; nothing outside a
temporary directory is written except the two PNG files.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
FAKES = ROOT / "tests" / "fakes" / "bin"
CHROMIUM = os.environ.get("AGENTCMD_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

WORKFLOW = '''
from agentcmd import define_workflow

@define_workflow(id="fix-tests", name="Fix the failing test", phases=["plan", "fix"], retries=0)
async def fix_tests(ctx, step):
    with step.phase("plan"):
        await step.cli("status", "echo 'On branch fix-total'; echo '1 file changed'")
    with step.phase("fix"):
        result = await step.agent("fix", prompt="Make tests/test_totals.py pass", agent="claude")
    return {"summary": result.text}
'''

SCENARIO = {
    "session_id": "5c1d9a7e-61b2-4c55-9a0e-3f2b8d7c1e42",
    "steps": [
        {"text": "I'll run the failing test first to see what it expects."},
        {"tool": "Bash", "input": {"command": "pytest -q tests/test_totals.py", "description": "Run the test"},
         "output": "F.\nFAILED tests/test_totals.py::test_sum_with_tax - assert 107.0 == 107.5\n1 failed, 1 passed",
         "is_error": False},
        {"text": "The tax is rounded before it is added. Let me read the function."},
        {"tool": "Read", "input": {"file_path": "src/shop/totals.py"},
         "output": "def total(items, rate):\n    tax = round(sum(items) * rate)\n    return sum(items) + tax",
         "is_error": False},
        {"error": "rate limited (429), retrying in 2 s"},
        {"tool": "Edit", "input": {"file_path": "src/shop/totals.py", "old_string": "round(sum(items) * rate)",
                                   "new_string": "sum(items) * rate"},
         "output": "The file src/shop/totals.py has been updated.", "is_error": False},
        {"text": "Fixed: the tax is no longer rounded to whole units. Running the tests again."},
        {"tool": "Bash", "input": {"command": "pytest -q", "description": "Run all tests"},
         "output": "..........\n10 passed", "is_error": False},
    ],
    "result": "The total now keeps the tax's cents; all 10 tests pass.",
    "usage": {"input_tokens": 18400, "output_tokens": 2100, "cached_tokens": 12800, "cost_usd": 0.0934},
    "turns": 5,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images", help="where to write the PNG files")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set AGENTCMD_CHROMIUM)", file=sys.stderr)
        return 1
    from playwright.sync_api import expect, sync_playwright

    with tempfile.TemporaryDirectory(prefix="agentcmd-shots-") as tmp_name:
        tmp = Path(tmp_name)
        project = tmp / "project"
        (project / ".agentcmd" / "workflows").mkdir(parents=True)
        (project / ".agentcmd" / "workflows" / "fix_tests.py").write_text(WORKFLOW)
        (tmp / "scenario.json").write_text(json.dumps(SCENARIO))
        release = tmp / "release"
        env = {**os.environ, "PATH": f"{FAKES}{os.pathsep}{os.environ.get('PATH', '')}",
               "AGENTCMD_HOME": str(tmp / "home"), "FAKE_AGENT_SCENARIO": str(tmp / "scenario.json"),
               "FAKE_AGENT_DELAY": "0.5", "FAKE_AGENT_HOLD": str(release), "FAKE_AGENT_LOG": str(tmp / "calls.jsonl")}
        app_port, engine_port = free_port(), free_port()
        log = (tmp / "dev.log").open("w")
        child = subprocess.Popen([sys.executable, "-m", "agentcmd", "dev", "--port", str(app_port), "--engine-port",
                                  str(engine_port), "--project", str(project)], env=env, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{app_port}"
        try:
            wait(lambda: "ready in " in (tmp / "dev.log").read_text(), 60, "agentcmd dev")
            run_id = httpx.post(f"{url}/api/workflows/fix-tests/runs", json={}, timeout=15).json()["data"]["run_id"]
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox",
                                                                             "--disable-gpu"])
                page = browser.new_page(viewport={"width": 1100, "height": 1000}, color_scheme="light")
                page.goto(f"{url}/runs/{run_id}")
                expect(page.locator("#transcript .tx-error")).to_have_count(1, timeout=60_000)
                expect(page.locator("#transcript details.tx-tool")).to_have_count(3, timeout=60_000)
                page.wait_for_timeout(1200)  # let the clock and the last tool's status settle for the picture
                args.out.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out / "workflow-live-transcript.png"), full_page=True)
                page.locator("#transcript details.tx-tool").first.locator("summary").click()
                page.locator("#transcript").screenshot(path=str(args.out / "workflow-live-tool.png"))
                browser.close()
            release.write_text("go")
            wait(lambda: httpx.get(f"{url}/api/runs/{run_id}", timeout=15).json()["data"]["status"] == "Completed",
                 60, "the run to complete")
        finally:
            release.write_text("go")
            child.terminate()  # SIGTERM to the supervisor we started: it stops its engine and app server
            child.wait(timeout=30)
            log.close()
    for name in ("workflow-live-transcript.png", "workflow-live-tool.png"):
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
