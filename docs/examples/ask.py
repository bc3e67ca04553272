"""Ask a human how to handle an issue, with typed answers, then hand it to an agent.

    agentcmd workflows run triage --input '{"issue": "the login page is slow"}'
    agentcmd runs answer RUN_ID --question plan --input '{"priority": "high", "owner": "ana"}'
    agentcmd runs answer RUN_ID --question hours --input 3
"""

from typing import Literal

from pydantic import BaseModel

from agentcmd import define_workflow


class Plan(BaseModel):
    priority: Literal["low", "medium", "high"]
    owner: str
    notify: bool = False


@define_workflow(id="triage", name="Triage with a human")
async def triage(ctx, step):
    issue = ctx.input["issue"]
    plan = await step.ask("plan", f"How should we handle: {issue}?", schema=Plan, timeout="2h")
    hours = await step.ask("hours", "How many hours may the agent spend?", timeout="30m", default=1,
                           schema={"type": "integer", "minimum": 1, "maximum": 8})
    if plan.priority == "low":
        return {"priority": plan.priority, "owner": plan.owner, "fixed": False}
    fix = await step.agent("fix", prompt=f"Fix within {hours} hour(s): {issue}")
    return {"priority": plan.priority, "owner": plan.owner, "hours": hours, "fix": fix.text}
