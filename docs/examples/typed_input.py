"""Typed input, an isolated worktree, a resumed agent session and a failure the code handles.

    agentcmd workflows run refactor --input '{"target": "utils.py", "rounds": 2}' --wait
"""

import shlex

import inngest
from pydantic import BaseModel, Field

from agentcmd import define_workflow


class RefactorInput(BaseModel):
    target: str
    rounds: int = Field(1, ge=1, le=5)


@define_workflow(id="refactor", name="Refactor in a worktree", phases=["work", "check"],
                 args_schema=RefactorInput, workspace="worktree", retries=0,
                 cancel_on=["agentcmd/refactor.cancel"])
async def refactor(ctx, step):
    with step.phase("work"):
        session = None
        for n in range(ctx.input["rounds"]):
            answer = await step.agent(f"round-{n}", prompt=f"Refactor {ctx.input['target']}", resume=session)
            session = answer.session_id
        # Input never goes into a shell string unquoted: shlex.quote, or pass a list (no shell at all).
        await step.cli("edit", f"echo '# refactored' >> {shlex.quote(ctx.input['target'])}")
        commit = await step.git("commit", commit_message=f"refactor {ctx.input['target']}")
    with step.phase("check"):
        try:
            await step.cli("lint", "exit 3")  # fails; retries=0, so the body sees StepError at once
            lint_ok = True
        except inngest.StepError:  # a step's final failure; the SDK's own control flow is not an Exception
            lint_ok = False
    return {"session": session, "commit": commit.sha, "lint_ok": lint_ok, "branch": ctx.branch}
