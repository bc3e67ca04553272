"""Connect fixtures: an engine with its gateway on a known free port, and real SDK connect workers.

* ``connect_engine(mode, *args)`` starts an engine (``engine_factory``) with
  ``--connect-port <free port>``, so a port + 1 taken by someone else cannot
  turn the gateway off under a test.
* ``connect_worker(engine, client, functions, **kw)`` runs the official SDK's
  ``inngest.connect.connect([(client, functions)], **kw)`` in a thread of its
  own (its own event loop, as a worker process would) and waits until its
  connection is ACTIVE; ``close()`` is the SDK's graceful close (WORKER_PAUSE,
  in-flight requests finish). Stopped at teardown.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from inngest.connect import ConnectionState, connect
from tests.harness.engine import EngineProc
from tests.harness.processes import free_port
from tests.polling import wait_for


class ConnectWorker:
    def __init__(self, client: Any, functions: list[Any], **kw: Any) -> None:
        self.conn = connect([(client, functions)], **kw)
        self.loop = asyncio.new_event_loop()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.loop.run_until_complete(self.conn.start())
        except BaseException as exc:
            self.error = exc
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def wait_active(self, timeout: float = 15) -> ConnectWorker:
        wait_for(lambda: self.error or self.conn.get_state() == ConnectionState.ACTIVE, timeout,
                 "the connect worker to be ACTIVE")
        assert self.error is None, self.error
        return self

    def close(self, wait: bool = True) -> None:
        if self.thread.is_alive() and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):    # the loop closed meanwhile
                asyncio.run_coroutine_threadsafe(self.conn.close(), self.loop)
        if wait:
            self.thread.join(30)


@pytest.fixture
def connect_engine(engine_factory: Callable[..., EngineProc]) -> Callable[..., EngineProc]:
    def make(mode: str = "dev", *args: str) -> EngineProc:
        proc = engine_factory(mode, args=("--connect-port", str(free_port()), *args))
        proc.connect_port = int(proc.args[proc.args.index("--connect-port") + 1])  # type: ignore[attr-defined]
        return proc

    return make


@pytest.fixture
def connect_worker() -> Iterator[Callable[..., ConnectWorker]]:
    workers: list[ConnectWorker] = []

    def make(client: Any, functions: list[Any], wait: bool = True, **kw: Any) -> ConnectWorker:
        worker = ConnectWorker(client, functions, **kw)
        workers.append(worker)
        return worker.wait_active() if wait else worker

    yield make
    for worker in workers:
        worker.close(wait=False)
    for worker in workers:
        worker.thread.join(10)
