"""Body size limits, after Inngest's own (https://www.inngest.com/docs/usage-limits/inngest and
https://www.inngest.com/docs/durable-execution/limits; table in docs/security.md).

Inngest Cloud takes events up to 256 KiB (free plan) or 3 MiB (paid plans),
step output up to 4 MB and run state up to 32 MB. The embedded engine is a
self-hosted single user's: it takes the paid plans' 3 MiB per event. The
app's SDK endpoint receives the engine's inline state (up to
``engine.executor.MAX_INLINE_STATE``, ~4 MiB, beyond which the SDK fetches
it through the API) plus the triggering event, so it gets 16 MiB. Forms
(logins, dashboard actions) are small.
"""

from __future__ import annotations

KIB = 1024
MIB = 1024 * KIB

EVENT_MAX = 3 * MIB          # one event, encoded as JSON (Inngest's paid-plan maximum event size)
EVENTS_REQUEST_MAX = 10 * MIB  # one POST /e/{key} (a batch of events)
SYNC_MAX = 4 * MIB           # one app registration (POST /fn/register)
SDK_MAX = 16 * MIB           # the app's SDK endpoint: inline run state (~4 MiB) + the event (3 MiB) + slack
JSON_API_MAX = 1 * MIB       # other JSON APIs (REST actions, GraphQL)
APP_API_MAX = EVENT_MAX + 64 * KIB  # the app API: an event's data or a run's input, plus the envelope
FORM_MAX = 64 * KIB          # logins and dashboard forms


def describe(limit: int) -> str:
    """``3 MiB`` / ``64 KiB``: the size as the docs write it."""
    if limit % MIB == 0:
        return f"{limit // MIB} MiB"
    if limit % KIB == 0:
        return f"{limit // KIB} KiB"
    return f"{limit} bytes"
