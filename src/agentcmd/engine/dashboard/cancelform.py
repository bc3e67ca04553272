"""The "Cancel running runs" form on a function's page: its two optional times and the request they make.

Both fields are optional (empty: that end is open), typed in a browser's
``datetime-local`` input and read as UTC as the form says, then checked by
``flow.bulkcancel.parse_range``, the REST route's own validation, so the
form refuses what ``POST /v1/cancellations`` refuses, in the same words.
"""

from __future__ import annotations

from collections.abc import Mapping

from agentcmd.engine.dashboard.replayform import _rfc3339
from agentcmd.engine.flow.bulkcancel import CancelRequest, parse_range


def to_request(values: Mapping[str, str]) -> CancelRequest:
    """The posted ``from``/``to`` -> a bulk cancel request; raises ``CancelInputError`` (what + fix)."""
    return parse_range({"started_after": _rfc3339(values.get("from", "").strip()),
                        "started_before": _rfc3339(values.get("to", "").strip())})
