"""The bearer a test sends to the app server's API: under ``agentcmd start`` it needs the signing key.

``agentcmd start`` writes its keys to ``$AGENTCMD_HOME/config.json`` on the first run (the
``agentcmd_home`` fixture points every test at its own home); dev mode has none, and its API is
open on loopback, so the header is then empty.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def app_headers(home: str | None = None) -> dict[str, str]:
    """``home``: the child's AGENTCMD_HOME when it is not this test's own."""
    home = home or os.environ.get("AGENTCMD_HOME")
    if not home:
        return {}
    try:
        key = json.loads((Path(home) / "config.json").read_text()).get("signing_key")
    except (OSError, ValueError):
        return {}
    return {"Authorization": f"Bearer {key}"} if key else {}
