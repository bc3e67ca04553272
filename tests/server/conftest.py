"""The app server's tests serve ``create_app`` under an auth policy (``tests/harness/appserver.py``)."""

from __future__ import annotations

from tests.harness.appserver import app_server, engine_url, project_workflows

__all__ = ["app_server", "engine_url", "project_workflows"]
