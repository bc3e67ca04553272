"""Ask an agent for a review, keep it as an artifact, and wait for a human to approve shipping it.

    agentcmd workflows run review --input '{"path": "src/"}'
    agentcmd runs approve RUN_ID --comment "ship it"      # or --reject; or the run page's buttons
"""

from agentcmd import define_workflow


@define_workflow(id="review", name="Review with approval", phases=["review", "approve"], retries=1)
async def review(ctx, step):
    with step.phase("review"):
        answer = await step.agent("review", prompt=f"Review the code in {ctx.input['path']}")
        await step.artifact("review.md", answer.text)
        await step.log(f"review ready (agent session {answer.session_id})")
    with step.phase("approve"):
        decision = await step.approval("ship", f"Ship the review of {ctx.input['path']}?", timeout="1h")
    if not decision.approved:   # rejected, or "timed_out" when nobody answered within the hour
        return {"approved": False, "decision": decision.decision, "comment": decision.comment}
    return {"approved": True, "by": decision.by, "comment": decision.comment, "session": answer.session_id}
