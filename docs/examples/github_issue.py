"""A run for each GitHub issue that gets the label ``agent``, with the issue's title and body as input.

Configure the secret (the same one as in GitHub's webhook settings), start agentcmd,
and point a GitHub webhook ("Issues" events, content type application/json) at
``https://<your host>/api/webhooks/github``:

    agentcmd config set webhooks '{"github": {"secret": "<openssl rand -hex 32>"}}'
    agentcmd start

Any other label, or any other issue action, starts nothing: the filter runs on the engine.
"""

from pydantic import BaseModel

from agentcmd import define_workflow, on_event


class IssueInput(BaseModel):
    title: str
    body: str = ""
    number: int
    url: str


@define_workflow(
    id="github-issue", name="Work on a labelled GitHub issue", phases=["plan"], args_schema=IssueInput,
    on=on_event(
        "github/issues",
        filter="event.data.action == 'labeled' && event.data.label.name == 'agent'",
        input={
            "title": "event.data.issue.title",
            # GitHub sends "body": null for an issue without a description.
            "body": "has(event.data.issue.body) && event.data.issue.body != null ? event.data.issue.body : ''",
            "number": "event.data.issue.number",
            "url": "event.data.issue.html_url",
        },
    ),
)
async def github_issue(ctx, step):
    with step.phase("plan"):
        answer = await step.agent("plan", prompt=f"Plan a fix for issue #{ctx.input['number']}: "
                                                 f"{ctx.input['title']}\n\n{ctx.input['body']}")
    return {"issue": ctx.input["number"], "title": ctx.input["title"], "plan": answer.text}
