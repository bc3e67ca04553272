"""What the app server, the supervisor and ``agentcmd worker`` share about worker mode connect.

A module of its own, importing nothing of the server, so that the app
server's reload and run start (``reload.py``, ``startrun.py``) and the
supervisor (``supervisor/workermode.py``) can ask without importing the
worker (``connectworker.py``), which imports the app server's loading code.
"""

from __future__ import annotations

READY_LINE = "connected to the engine at"
"""Logged once the gateway said the connection is ready: the supervisor waits for it (``ChildSpec.ready_lines``)."""
WAITING_LINE = "waiting for a reload (SIGHUP) to connect"
"""Logged by a worker with no workflows yet, once its SIGHUP handler is in place."""


def workers_serve_workflows() -> bool:
    """``worker_mode`` connect: connect workers serve the workflows, so the app server never syncs itself
    with the engine (one app id served from two places: the engine would take whichever synced last)."""
    from agentcmd.config import load_settings

    return load_settings().worker_mode == "connect"
