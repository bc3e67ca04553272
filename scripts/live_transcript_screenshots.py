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

import json
import os
from pathlib import Path

import httpx
from devshots import ROOT, chromium_page, dev_server, out_dir, wait

FAKES = ROOT / "tests" / "fakes" / "bin"

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


def main() -> int:
    out = out_dir(__doc__ or "")
    if out is None:
        return 1
    from playwright.sync_api import expect

    def fake_agent(tmp: Path) -> dict[str, str]:
        (tmp / "scenario.json").write_text(json.dumps(SCENARIO))
        return {"PATH": f"{FAKES}{os.pathsep}{os.environ.get('PATH', '')}",
                "FAKE_AGENT_SCENARIO": str(tmp / "scenario.json"), "FAKE_AGENT_DELAY": "0.5",
                "FAKE_AGENT_HOLD": str(tmp / "release"), "FAKE_AGENT_LOG": str(tmp / "calls.jsonl")}

    with dev_server({"fix_tests.py": WORKFLOW}, prepare=fake_agent) as dev:
        url, release = dev.url, dev.tmp / "release"
        try:
            run_id = httpx.post(f"{url}/api/workflows/fix-tests/runs", json={}, timeout=15).json()["data"]["run_id"]
            with chromium_page(1000) as page:
                page.goto(f"{url}/runs/{run_id}")
                expect(page.locator("#transcript .tx-error")).to_have_count(1, timeout=60_000)
                expect(page.locator("#transcript details.tx-tool")).to_have_count(3, timeout=60_000)
                page.wait_for_timeout(1200)  # let the clock and the last tool's status settle for the picture
                out.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(out / "workflow-live-transcript.png"), full_page=True)
                page.locator("#transcript details.tx-tool").first.locator("summary").click()
                page.locator("#transcript").screenshot(path=str(out / "workflow-live-tool.png"))
            release.write_text("go")
            wait(lambda: httpx.get(f"{url}/api/runs/{run_id}", timeout=15).json()["data"]["status"] == "Completed",
                 60, "the run to complete")
        finally:
            release.write_text("go")   # the fake agent holds until this file exists
    for name in ("workflow-live-transcript.png", "workflow-live-tool.png"):
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
