"""The keys tests use, and the bearer a test sends to the app server's API.

``ENGINE_SIGNING_KEY``/``ENGINE_EVENT_KEY`` are fixed strong keys (the engine
refuses weak ones, config/keys.py) for the engines of ``tests/harness/engine.py``;
``APP_SIGNING_KEY``/``APP_EVENT_KEY`` those of the app servers of
``tests/harness/appserver.py``.

Under ``agentcmd start`` the app's API needs the signing key as a bearer
(``app_headers``): ``agentcmd start`` writes its keys to
``$AGENTCMD_HOME/config.json`` on the first run (the ``agentcmd_home`` fixture
points every test at its own home); dev mode has none, and its API is open on
loopback, so the header is then empty.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

ENGINE_SIGNING_KEY = "signkey-prod-36a1f3b2dec415623923fcb56949e180259e4cfc2b583737062f1506a3ad3652"
ENGINE_EVENT_KEY = "f409725ceb54cf9c9f10e5a2b42c8feb9fc41e77509369e27bbc786651654796"
APP_SIGNING_KEY = "signkey-prod-df95a4e9e0de15573029d2c63a3af1655d7af9b9b1b8b50ceb04cafee2f6d982"
APP_EVENT_KEY = "bf9d36ad3886b8700f4d4fdf47879d1c3250e4f195bc6dad92875fc357da7a98"


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
