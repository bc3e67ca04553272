"""The warning of an engine whose port + 1 is taken must not read as 'agentcmd dev' being ready.

The OS's own words, "Address already in use", contain "ready in ", the line
supervisors and tests wait for: an 'agentcmd dev' whose engine printed them
was taken for ready before its app server listened (tests/supervisor/
test_lifecycle.py's twenty fresh starts failed with a refused connection).
"""

from __future__ import annotations

from typing import Any

from tests.harness.processes import port_with_the_next_one_taken
from tests.polling import wait_for


def test_the_taken_port_warning_never_says_ready_in(engine_factory: Any) -> None:
    with port_with_the_next_one_taken() as port:
        engine = engine_factory("dev", port=port)
        out = wait_for(lambda: "runs without connect workers" in engine.output() and engine.output(), 5,
                       "the warning in the log")
    assert f"port {port + 1} (the engine's port + 1) is taken" in out
    assert "ready in " not in out
