"""Resume a failed run from the step that failed: the agent's plan is kept, only the build runs again.

    touch BROKEN                                                    # something is wrong in the project
    agentcmd workflows run plan-build --input '{"target": "docs"}' --wait    # fails at "build"
    rm BROKEN                                                       # fix it
    agentcmd runs resume RUN_ID --wait                              # "plan" is not asked again
    agentcmd runs resume RUN_ID --input '{"target": "site"}'        # or: the steps that run now see new input
"""

from agentcmd import define_workflow

TARGET = {"type": "object", "properties": {"target": {"type": "string"}}, "required": ["target"]}


@define_workflow(id="plan-build", name="Plan, then build", phases=["plan", "build"], retries=0,
                 args_schema=TARGET)
async def plan_build(ctx, step):
    with step.phase("plan"):
        plan = await step.agent("plan", prompt=f"Plan the build of {ctx.input['target']}")
    with step.phase("build"):
        build = await step.cli("build", "test ! -e BROKEN && echo built")
    return {"plan": plan.text, "build": build.stdout.strip(), "target": ctx.input["target"]}
