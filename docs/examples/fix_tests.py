"""Plan with an agent, run the tests, cool down, commit: the workflow from the guide's first page.

Copy this file into .agentcmd/workflows/ and run:
    agentcmd workflows run fix-tests --input '{"issue": "test_login fails"}' --wait
"""

from agentcmd import define_workflow


@define_workflow(id="fix-tests", name="Fix failing tests", phases=["plan", "fix", "ship"],
                 trigger="agentcmd/fix-tests", retries=2, timeout="30m")
async def fix_tests(ctx, step):
    with step.phase("plan"):
        plan = await step.agent("plan", agent="claude", prompt=f"Plan a fix for: {ctx.input['issue']}")
    with step.phase("fix"):
        result = await step.cli("tests", "python -m pytest -q", cwd=ctx.project_dir, check=False)
        await step.sleep("cool-down", "1s")
    with step.phase("ship"):
        await step.git("commit", commit_message="fix: failing tests")
    return {"plan": plan.text, "tests_ok": result.exit_code == 0}
