"""The warning of an engine whose port + 1 is taken must not read as 'agentcmd dev' being ready.

The OS's own words, "Address already in use", contain "ready in ", the line
supervisors and tests wait for: an 'agentcmd dev' whose engine printed them
was taken for ready before its app server listened (tests/supervisor/
test_lifecycle.py's twenty fresh starts failed with a refused connection).
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
from tests.harness.processes import free_port
from tests.polling import wait_for


def test_the_taken_port_warning_never_says_ready_in(engine_factory: Any) -> None:
    port = free_port()
    with socket.socket() as taken:
        try:
            taken.bind(("127.0.0.1", port + 1))
        except OSError:
            pytest.skip("port + 1 is not free on this machine")
        taken.listen(1)
        engine = engine_factory("dev", port=port)
        out = wait_for(lambda: "runs without connect workers" in engine.output() and engine.output(), 5,
                       "the warning in the log")
    assert f"port {port + 1} (the engine's port + 1) is taken" in out
    assert "ready in " not in out
