"""The runs lists of the index and workflow pages: the latest runs and their fingerprint.

Shared by the pages (``views.py``) and their live streams (``livepages.py``),
so a stream's ``version`` is the one the page's JSON twin carries.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from agentcmd.errors import AgentcmdError
from agentcmd.server import api
from agentcmd.web.render import version_of

RECENT_RUNS = 20


async def recent_runs(request: Request, workflow_id: str | None) -> tuple[list[Any], str]:
    """The latest runs, or none and why: the engine being down still leaves the workflows to show."""
    try:
        runs = (await api.list_runs(request, workflow=workflow_id, status=None, limit=RECENT_RUNS, cursor=None))
    except AgentcmdError as exc:
        return [], exc.what
    return list(runs["data"]), ""


def runs_version(runs: list[Any], questions: list[dict[str, Any]] | None = None) -> str:
    """What a runs list shows, as a fingerprint: each run's id, status and phase.

    A workflow page also shows the questions its runs wait for (``questions``): a run that starts
    waiting for an approval keeps its status and phase, so the waiting questions are part of the
    fingerprint, or the page (and its live stream) would not change when one is asked or answered.
    """
    shown = [(r["run_id"], r["status"], r.get("phase")) for r in runs]
    if questions is None:
        return version_of(shown)
    return version_of(shown, [(q.get("run_id"), q.get("question")) for q in questions])


async def workflow_version(request: Request, workflow_id: str) -> str:
    """The workflow page's fingerprint, as the page computes it: its recent runs and their waiting questions."""
    from agentcmd.ui import questions as ui_questions

    runs, _ = await recent_runs(request, workflow_id)
    return runs_version(runs, await ui_questions.for_runs(request, runs, workflow_id))
