"""The HTTP edge's tests use the app servers of tests/server (engines come from the root conftest).

``app_server(mode, host)`` serves ``create_app`` under uvicorn on an
ephemeral loopback port, next to a real dev engine (``engine_url``).
"""

from __future__ import annotations

from tests.harness.appserver import app_server, engine_url, project_workflows

__all__ = ["app_server", "engine_url", "project_workflows"]
