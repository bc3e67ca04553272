"""Every weekday at 09:00 Paris time, turn yesterday's commits into standup notes.

    agentcmd workflows run standup       # also by hand, any time (the input is empty, as on a schedule)

The workflow page (and GET /api/workflows/standup) shows the schedule and its next three fire times.
"""

from agentcmd import define_workflow


@define_workflow(id="standup", name="Standup notes", cron="0 9 * * 1-5", timezone="Europe/Paris", concurrency=1)
async def standup(ctx, step):
    log = await step.cli("commits", ["git", "log", "--since=1 day ago", "--oneline"])
    commits = log.stdout.splitlines()
    notes = await step.agent("notes", prompt="Write short standup notes from these commits:\n"
                                             + ("\n".join(commits) or "(no commits)"))
    await step.artifact("standup.md", notes.text)
    return {"commits": len(commits), "notes": notes.text}
