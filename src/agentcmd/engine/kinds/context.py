"""What a queue-kind handler may use: the parts of the engine a due row needs, not the ``Engine``.

Handlers get this instead of the ``Worker`` or ``Engine`` so each one's
reach is plain from its signature: the store to commit in, the executor
for leases (and nothing of its SDK driving), the dispatcher to start
runs, the function registry, the clock, and ``wake`` to have the worker
look at the queue again after a commit that made work due.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agentcmd.engine.clock import Clock
from agentcmd.engine.executor import Executor
from agentcmd.engine.ingest import Dispatcher
from agentcmd.engine.registry import Registry
from agentcmd.engine.store import Store


@dataclass(frozen=True)
class KindContext:
    store: Store
    executor: Executor
    dispatcher: Dispatcher
    clock: Clock
    wake: Callable[[], None]

    @property
    def registry(self) -> Registry:
        """The functions known now (the dispatcher's; read on use, as apps sync in and out)."""
        return self.dispatcher.registry

    def lease_until(self) -> int:
        """The lease for calls a handler's commit hands back to the worker."""
        return self.executor.lease_until()
