"""The HTTP edge's fixtures: the engine subprocesses of tests/engine and the app servers of tests/server.

Re-exported, not copied: ``engine_factory`` / ``module_engine`` start real
``agentcmd engine dev|start`` processes; ``app_server(mode, host)`` serves
``create_app`` under uvicorn on an ephemeral loopback port, next to a real
dev engine (``engine_url``).
"""

from __future__ import annotations

from tests.engine.conftest import engine_factory, module_engine
from tests.server.conftest import app_server, engine_url, project

__all__ = ["app_server", "engine_factory", "engine_url", "module_engine", "project"]
