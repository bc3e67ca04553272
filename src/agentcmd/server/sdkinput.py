"""Input checks for the dev SDK endpoint's ``POST`` (the engine's call to run a step).

The official SDK answers a request it cannot use (an empty body, a body
that is not an execution request, a missing or unknown ``fnId``) with a 500
and logs an error: to a caller, a server fault. In dev the endpoint has no
signature, so anyone on this machine can send it anything; this check
answers those with a 400 naming the problem, using the SDK's own request
model, before the SDK sees them. In production the SDK verifies the
request signature first (401 for anything unsigned), so the check is not
needed there and the engine's calls are not parsed twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from agentcmd.errors import InputError


def sdk_call_check(app_id: str, function_ids: Callable[[], Iterable[str]]) -> Callable[[str, str, Any], None]:
    """A check for ``(method, query string, parsed body)``; raises InputError (400).

    ``function_ids`` is asked on every call, not once: a reload swaps the served functions in place
    (server/reload.py), and a workflow added by a reload must be callable at once.
    """

    def check(method: str, query: str, body: Any) -> None:
        if method != "POST":
            return
        params = parse_qs(query)
        if params.get("probe", [""])[-1] == "trust":
            return
        fn_id = params.get("fnId", [""])[-1]
        if not fn_id:
            raise InputError("the SDK call has no fnId query parameter",
                             "the engine calls this endpoint with ?fnId=<function id>&stepId=step")
        known = {i for i in function_ids() if i}
        if fn_id not in known and f"{app_id}-{fn_id}" not in known:
            raise InputError(f"no function {fn_id[:200]!r} in this app", "sync the app, then call one of its functions")
        from inngest._internal.server_lib import ServerRequest
        from pydantic import ValidationError

        try:
            ServerRequest.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "body"
            raise InputError(f"the SDK call's body is not an execution request ({where}: {first.get('msg')})",
                             "the engine sends {ctx, event, events, steps, use_api}") from None

    return check
