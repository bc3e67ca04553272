"""Run the project's tests and tell people how it went: who hears of what is in the settings, not the code.

    agentcmd config set notifications '{"targets": {
        "team": {"type": "slack", "url": "https://hooks.slack.com/services/T000/B000/XXXX",
                 "events": ["failed", "cancelled", "waiting"]},
        "me": {"type": "desktop"}},
      "workflows": {"nightly-check": {"events": ["finished", "failed"]}}}'
    agentcmd workflows run nightly-check --input '{}' --wait

A failed run tells the team's Slack channel and this desktop; a finished
one only the desktop (Slack does not want "finished"); each message links
to the run's page. See docs/workflows.md, "Notifications".
"""

from agentcmd import define_workflow


@define_workflow(id="nightly-check", name="Nightly check", phases=["check"], retries=0)
async def nightly_check(ctx, step):
    with step.phase("check"):
        tests = await step.cli("tests", ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider"], check=False)
    if tests.exit_code != 0:
        raise RuntimeError(f"the tests failed:\n{tests.stdout[-2000:]}")
    return {"tests_ok": True}
