"""The run page's Resume button and edit-input form (``POST /runs/{id}/resume``).

A failed or cancelled run shows "Resume from the failed step" and, folded,
the same with an edited input: a JSON textarea prefilled with the input the
run started with. Both post with the UI's CSRF token and go through the
app API's handler (``server/resume.py``), so the input is validated against
the workflow's ``args_schema`` the same way; a bad input shows the run page
again with the input as typed and every problem (422). Success redirects
to the new run's page.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from agentcmd.errors import AgentcmdError, InputError
from agentcmd.httpedge import jsonbody
from agentcmd.server import resume as app_resume


async def form_state(request: Request, run: dict[str, Any]) -> dict[str, Any] | None:
    """What the run page's resume form shows, or None when the run cannot be resumed from here."""
    if run.get("status") not in app_resume.RESUMABLE or run.get("resumed_as"):
        return None
    raw = await app_resume.run_input(request, run)
    return {"input": json.dumps(raw if raw is not None else {}, indent=2, ensure_ascii=False), "error": "",
            "problems": []}


CsrfForm = Callable[[Request], Awaitable[dict[str, str]]]
RunPage = Callable[..., Awaitable[Response]]
ErrorPage = Callable[[Request, AgentcmdError], Response]


async def resume_run(request: Request, run_id: str, csrf_form: CsrfForm, run_page: RunPage,
                     error_page: ErrorPage) -> Response:
    """The posted form: ``edit`` = "1" resumes with the typed ``input``, else with the run's own."""
    fields: dict[str, str] = {}
    try:
        fields = await csrf_form(request)
        body: dict[str, Any] = {}
        if fields.get("edit") == "1":
            body["input"] = jsonbody.loads((fields.get("input") or "{}").encode(), "the input")
        resumed = await app_resume.resume(request, run_id, body)
    except InputError as exc:
        problems = [f"{d.get('path')}: {d.get('message')}" for d in exc.details or [] if isinstance(d, dict)]
        retry = {"input": fields.get("input", ""), "error": f"{exc.what} ({exc.fix})" if exc.fix else exc.what,
                 "problems": problems}
        return await run_page(request, run_id, resume_form=retry, status_code=exc.http_status)
    except AgentcmdError as exc:
        return error_page(request, exc)
    return RedirectResponse(f"/runs/{quote(resumed['run_id'])}?notice=resumed", status_code=303)
