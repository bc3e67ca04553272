"""The one read path: REST, GraphQL, the dashboard and the CLI all read through these.

Each question has one query, a plain function of a read connection (run it
with ``Store.read``/``HistoryReader.read``), in the module of its noun:

* ``runs.py``: a run (``get_run``, REST shape; ``run_detail``, the
  dashboard's page), the runs list behind both ``GET /v1/runs`` and the
  dashboard's ``/runs`` (``run_records``, projected by ``api_runs`` and
  ``list_runs``), counts per status, steps, history, memos;
* ``events.py``: an event, the events lists, the pauses an event resolves;
* ``functions.py``: functions, apps, a function's page, skipped events;
* ``flow.py``: flow-control state (paused functions, parked and delayed
  calls, what a run waits on, how many runs a replay selects);
* ``paging.py``: keyset paging, the one helper every newest-first list uses;
* ``models.py``: the row types, ``RunFilter`` and ``as_json``;
  ``flowtext.py``: flow-control state in words.

This package is the bottom layer: it imports nothing from the engine's
flow policy or its web UI. REST/GraphQL shapes are docs/architecture.md's
(times as RFC 3339 strings); the dashboard's rows are ``models.py``'s.
"""

from __future__ import annotations

from agentcmd.engine.store.queries.events import (
    api_events,
    event_body,
    event_row,
    get_event,
    list_events,
    pauses_for_event,
)
from agentcmd.engine.store.queries.flow import (
    function_waiting,
    paused_at,
    paused_functions,
    paused_slugs,
    replay_count,
    run_waits,
)
from agentcmd.engine.store.queries.functions import (
    api_functions,
    app_rows,
    event_skip_rows,
    event_skips,
    function_detail,
    function_rows,
    function_skip_rows,
    function_skips,
    list_apps,
    list_functions,
)
from agentcmd.engine.store.queries.runs import (
    active_runs,
    api_runs,
    count_runs,
    counts,
    event_run_summaries,
    event_runs,
    get_run,
    get_run_raw,
    history_rows,
    list_runs,
    next_ready_at,
    replay_of,
    run_detail,
    run_events,
    run_history,
    run_memos,
    run_records,
    run_replays,
    run_steps,
    run_trigger_events,
    step_output,
    step_rows,
)

__all__ = [
    "active_runs",
    "api_events",
    "api_functions",
    "api_runs",
    "app_rows",
    "count_runs",
    "counts",
    "event_body",
    "event_row",
    "event_run_summaries",
    "event_runs",
    "event_skip_rows",
    "event_skips",
    "function_detail",
    "function_rows",
    "function_skip_rows",
    "function_skips",
    "function_waiting",
    "get_event",
    "get_run",
    "get_run_raw",
    "history_rows",
    "list_apps",
    "list_events",
    "list_functions",
    "list_runs",
    "next_ready_at",
    "paused_at",
    "paused_functions",
    "paused_slugs",
    "pauses_for_event",
    "replay_count",
    "replay_of",
    "run_detail",
    "run_events",
    "run_history",
    "run_memos",
    "run_records",
    "run_replays",
    "run_steps",
    "run_trigger_events",
    "run_waits",
    "step_output",
    "step_rows",
]
