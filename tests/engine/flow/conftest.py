"""Flow-control tests reuse the engine fixtures (real engine subprocesses, the real SDK)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

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


@contextlib.contextmanager
def app_stack(engine: Any, serve: Any, client_for: Any, prefix: str,
              build: Callable[[Any, dict[str, Any]], list[Any]]) -> Iterator[tuple[Any, dict[str, Any], str]]:
    """``(engine, state, app_id)``: an SDK app named ``<prefix>-<mode>`` serving ``build(client, state)``.

    For module-scoped ``stack`` fixtures (``serve`` is the ``serve_sdk`` fixture); ``state`` is what
    the functions record for the tests to read.
    """
    state: dict[str, Any] = {}
    app_id = f"{prefix}-{engine.mode}"
    client = client_for(engine, app_id=app_id)
    app = serve(engine, client, build(client, state))
    try:
        yield engine, state, app_id
    finally:
        app.stop()
