"""The queue-kind table: every kind has exactly one handler, documented, and the worker holds no kind's code."""

from __future__ import annotations

import inspect
import re
from typing import Any

from agentcmd.engine import kinds, worker
from agentcmd.engine.clock import system_clock
from agentcmd.engine.store import now_ms, open_store, queue
from agentcmd.engine.store.models import NewItem, QueueKind


def test_every_queue_kind_has_a_handler() -> None:
    missing = sorted(k.value for k in QueueKind if k not in kinds.HANDLERS)
    assert not missing, f"queue kinds without a handler in engine/kinds/__init__.py HANDLERS: {missing}"
    assert set(kinds.HANDLERS) == set(QueueKind)


def test_the_table_documents_every_kind() -> None:
    doc = kinds.__doc__ or ""
    rows = {m.group(1) for m in re.finditer(r"^([a-z_]+)\s{2,}", doc, re.MULTILINE)}
    assert {k.value for k in QueueKind} <= rows, "every kind gets a row in the kinds package docstring"
    for handler in kinds.HANDLERS.values():
        name = f"{handler.__module__.rsplit('.', 1)[-1]}.{handler.__name__}"
        assert name in doc, f"{name} is in HANDLERS but not in the docstring's table"


def test_the_worker_routes_without_knowing_kinds() -> None:
    source = inspect.getsource(worker)
    assert "QueueKind" not in source, "per-kind code belongs in engine/kinds/, not the worker"


async def test_a_row_of_a_kind_without_a_handler_is_dropped_not_retried(monkeypatch: Any) -> None:
    store = open_store(None)
    try:
        item = await store.write(lambda c: queue.enqueue_txn(c, None, NewItem(QueueKind.CRON, None, now_ms())))
        assert item is not None
        monkeypatch.delitem(kinds.HANDLERS, QueueKind.CRON)
        assert await kinds.route(kinds.KindContext(store, None, None, system_clock, lambda: None),  # type: ignore[arg-type]
                                 item) == []
        assert await store.next_ready_at() is None      # acked: a row nobody handles would loop forever
    finally:
        store.close()
