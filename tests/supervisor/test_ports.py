"""Port-in-use detection names the process holding the port."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
from tests.harness.processes import free_port

from agentcmd.errors import PortInUseError
from agentcmd.supervisor.ports import ensure_port_free, listening_inodes, port_is_free, port_owner


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_free_port_is_free() -> None:
    assert port_is_free("127.0.0.1", free_port())


def test_a_listening_port_is_not_free_and_its_owner_is_named(listener: int) -> None:
    assert not port_is_free("127.0.0.1", listener)
    assert listening_inodes(listener)
    owner = port_owner(listener)
    assert owner is not None and owner.pid == os.getpid()
    assert "python" in owner.command or "pytest" in owner.command


def test_ensure_port_free_says_who_holds_it_and_which_flag_to_change(listener: int) -> None:
    with pytest.raises(PortInUseError) as info:
        ensure_port_free("127.0.0.1", listener, role="app server", flag="--port")
    err = info.value
    assert f"port {listener}" in err.what and f"pid {os.getpid()}" in err.what and "app server" in err.what
    assert err.fix is not None and "--port " in err.fix and f"stop pid {os.getpid()}" in err.fix
    assert err.exit_code == 2


def test_nobody_listens_on_an_unused_port() -> None:
    assert port_owner(free_port()) is None
