"""Ask an agent for a review, keep it as an artifact, and wait for a human to approve it.

    agentcmd workflows run review --input '{"path": "src/"}'
    agentcmd send agentcmd/review.approved --data '{"approved": true}'
"""

from agentcmd import define_workflow


@define_workflow(id="review", name="Review with approval", phases=["review", "approve"], retries=1)
async def review(ctx, step):
    with step.phase("review"):
        answer = await step.agent("review", prompt=f"Review the code in {ctx.input['path']}")
        await step.artifact("review.md", answer.text)
        await step.log(f"review ready (agent session {answer.session_id})")
    with step.phase("approve"):
        approval = await step.wait_for_event("approval", event="agentcmd/review.approved", timeout="1h")
    if approval is None:
        return {"approved": False, "reason": "nobody answered within the hour"}
    return {"approved": bool(approval["data"].get("approved")), "session": answer.session_id}
