"""Flow-control tests reuse the engine fixtures (real engine subprocesses, the real SDK)."""

from __future__ import annotations

from tests.engine.conftest import (  # noqa: F401  (pytest finds fixtures by name)
    client_for_fixture,
    engine_factory,
    module_engine,
    runs_for_event_fixture,
    sdk_factory,
    send_event_fixture,
    serve_sdk,
    step_log,
    wait_for_run_status_fixture,
)
