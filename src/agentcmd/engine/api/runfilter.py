"""``GET /v1/runs``'s query parameters as a ``RunFilter``: the dashboard's ``/runs`` filters.

``status`` (repeated or comma-separated, any case), ``function`` (or
``function_id``; a slug or a uuid), ``since`` (``15m``, ``1h``, ``7d`` or an
ISO time), ``ended_after`` (an ISO time: runs that ended after it, for
watchers such as the app's notifications) and the keyset cursor (``cursor`` or ``before``). The list itself
is ``store.queries.api_runs``, the query behind the dashboard's
``/runs.json`` too. Bad values raise ``InputError`` (422) with what to use.
"""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request

from agentcmd.engine.store.queries.models import RunFilter, parse_since, parse_statuses
from agentcmd.errors import InputError


def _one(request: Request, *names: str) -> str | None:
    """The value of the first of ``names`` given (aliases of one parameter); two different values are an error."""
    given = {n: v for n in names if (v := request.query_params.get(n))}
    if len(set(given.values())) > 1:
        raise InputError(f"query parameters {' and '.join(given)} disagree", f"pass only one of {', '.join(names)}")
    return next(iter(given.values()), None)


def _ended_after(value: str | None) -> int | None:
    """``ended_after`` as epoch ms: an ISO time (UTC if no zone), or ``15m``-style like ``since``."""
    try:
        return parse_since(value, int(datetime.now(UTC).timestamp() * 1000))
    except InputError:
        raise InputError(f"'ended_after' must be an ISO time such as 2026-01-31T12:00:00.000Z, not {value!r}",
                         "pass the ended_at of the last run seen") from None


def run_filter(request: Request) -> tuple[RunFilter, str | None]:
    """``GET /v1/runs``'s filters, the dashboard's ``/runs`` ones: ``status`` (repeated or comma-separated),
    ``function`` (or ``function_id``; slug or uuid), ``since`` (15m, 1h, 7d or an ISO time), and the cursor."""
    statuses = parse_statuses(request.query_params.getlist("status"))
    since = parse_since(request.query_params.get("since"), int(datetime.now(UTC).timestamp() * 1000))
    ended_after = _ended_after(request.query_params.get("ended_after"))
    filt = RunFilter(statuses or None, _one(request, "function_id", "function"), since, ended_after=ended_after)
    return filt, _one(request, "cursor", "before")
