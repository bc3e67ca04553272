"""Take the docs' screenshots of a waiting question (docs/dashboard.md, "Approvals and questions").

    .venv/bin/python scripts/approval_screenshots.py [--out docs/images]

Starts ``agentcmd dev`` for a throwaway project with two workflows, starts a
run of each and, once each waits for a human, opens its run page in Debian's
Chromium (Playwright) and saves:

- ``workflow-approval.png``: the run page of a run waiting in
  ``step.approval`` (Approve / Reject with a comment);
- ``workflow-ask.png``: the question of a run waiting in ``step.ask``, its
  form generated from a pydantic model (a select, a text field, a number, a
  checkbox).

Then it answers both (the approval through the form, the question through
the API) so the runs end. Everything it starts is stopped by PID at the
end; nothing outside a temporary directory is written except the PNG files.
"""

from __future__ import annotations

import httpx
from devshots import chromium_page, dev_server, out_dir, wait

WORKFLOWS = '''
from typing import Literal

from pydantic import BaseModel, Field

from agentcmd import define_workflow


@define_workflow(id="release", name="Release with approval", phases=["build", "approve", "ship"], retries=0)
async def release(ctx, step):
    with step.phase("build"):
        await step.cli("test", "echo '42 passed'")
        await step.cli("package", "echo 'built dist/app-1.4.0.tar.gz'")
    with step.phase("approve"):
        decision = await step.approval("ship", "Ship app 1.4.0 to production? 42 tests passed.", timeout="4h")
    with step.phase("ship"):
        if decision.approved:
            await step.cli("upload", "echo uploaded")
    return decision.to_json()


class Triage(BaseModel):
    priority: Literal["low", "medium", "high"] = Field(description="How soon it must be fixed")
    owner: str = Field(description="Who looks at it")
    hours: int = Field(description="The agent's time budget, in hours")
    notify: bool = False


@define_workflow(id="triage", name="Triage with a human", retries=0)
async def triage(ctx, step):
    plan = await step.ask("plan", "How should we handle: the login page is slow?", schema=Triage, timeout="2h")
    return plan.model_dump()
'''


def main() -> int:
    out = out_dir(__doc__ or "")
    if out is None:
        return 1
    from playwright.sync_api import expect

    with dev_server({"humans.py": WORKFLOWS}) as dev:
        url = dev.url

        def asked(run_id: str) -> bool:
            found = httpx.get(f"{url}/api/runs/{run_id}/questions", timeout=15).json()["data"]
            return any(q["waiting"] for q in found)

        runs = {wf: httpx.post(f"{url}/api/workflows/{wf}/runs", json={}, timeout=15).json()["data"]["run_id"]
                for wf in ("release", "triage")}
        for run_id in runs.values():
            wait(lambda r=run_id: asked(r), 60, "the run to ask")  # type: ignore[misc]
        out.mkdir(parents=True, exist_ok=True)
        with chromium_page(900) as page:
            page.goto(f"{url}/runs/{runs['release']}")
            form = page.get_by_test_id("approval-form")
            expect(form).to_be_visible()
            form.locator("textarea").fill("Checked the changelog with Ana.")
            page.screenshot(path=str(out / "workflow-approval.png"), full_page=True)
            page.goto(f"{url}/runs/{runs['triage']}")
            expect(page.get_by_test_id("ask-form")).to_be_visible()
            page.get_by_test_id("questions").screenshot(path=str(out / "workflow-ask.png"))
            page.goto(f"{url}/runs/{runs['release']}")
            page.get_by_role("button", name="Approve").click()
            expect(page.get_by_test_id("question-answer")).to_be_visible(timeout=30_000)
        httpx.post(f"{url}/api/runs/{runs['triage']}/answer", timeout=15,
                   json={"answer": {"priority": "high", "owner": "ana", "hours": 2}})
        for run_id in runs.values():
            wait(lambda r=run_id: httpx.get(f"{url}/api/runs/{r}", timeout=15).json()["data"]["status"]  # type: ignore[misc]
                 == "Completed", 60, "the run to complete")
    for name in ("workflow-approval.png", "workflow-ask.png"):
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
