"""A discovery asked for while another is in flight is not lost (``step.parallel(mode="race")``).

In race mode every finished branch step asks for the body to run again. When
one asks while an earlier discovery is still waiting for the app, that call
saw the state from before the step finished; if its answer only re-plans the
step that has since finished, nothing would ever call the body again and the
run would hang. The store runs the body once more after that call instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.engine.store.test_store import _run

from agentcmd.engine.store import Store, now_ms, open_store, queries
from agentcmd.engine.store.models import DISCOVERY, CallContext, MemoWrite, Outcome, RunStatus


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = open_store(None if request.param == "memory" else tmp_path / "engine.db")
    yield s
    s.close()


def _memo(step_id: str) -> Outcome:
    return Outcome(memos=[MemoWrite(step_id, step_id, "StepRun", {"data": step_id})])


async def _race_with_a1_done(store: Store) -> tuple[CallContext, CallContext]:
    """Plan a1 and b1 in race mode and finish a1: (the discovery now in flight, b1's call)."""
    await _run(store)
    now = now_ms()
    [start] = await store.lease_due(now, 10, now + 60_000)
    planned = await store.apply_outcome("01RUN", start, Outcome(planned=[("a1", True), ("b1", True)],
                                                                force_plan=True), now + 60_000)
    a1, b1 = sorted(planned, key=lambda c: c.item.step_id or "")
    [discovery] = await store.apply_outcome("01RUN", a1.item, _memo("a1"), now + 60_000)
    assert discovery.item.step_id == DISCOVERY and "b1" not in discovery.steps
    return discovery, b1


async def test_a_step_ending_while_a_discovery_is_in_flight_gets_the_body_called_again(store: Store) -> None:
    discovery, b1 = await _race_with_a1_done(store)
    # b1 ends while the discovery is still out: its own discovery request meets the one in flight.
    assert await store.apply_outcome("01RUN", b1.item, _memo("b1"), now_ms() + 60_000) == []
    # The discovery in flight saw b1 unfinished: it answers with b1 planned again, which is already done.
    again = await store.apply_outcome("01RUN", discovery.item, Outcome(planned=[("b1", True)]), now_ms() + 60_000)
    assert [c.item.step_id for c in again] == [DISCOVERY], "the body runs once more, now seeing b1's result"
    assert set(again[0].steps) == {"a1", "b1"}
    done = Outcome(finish=(RunStatus.COMPLETED, '["a1","b1"]', None))
    assert await store.apply_outcome("01RUN", again[0].item, done, now_ms() + 60_000) == []
    run = await store.read(lambda c: queries.get_run(c, "01RUN"))
    assert run is not None and run["status"] == RunStatus.COMPLETED


async def test_a_discovery_that_sees_every_result_is_not_followed_by_another(store: Store) -> None:
    discovery, b1 = await _race_with_a1_done(store)
    # No overlap this time: the discovery answers first, then b1 ends and asks for its own.
    assert await store.apply_outcome("01RUN", discovery.item, Outcome(planned=[("b1", True)]),
                                     now_ms() + 60_000) == []
    [after_b1] = await store.apply_outcome("01RUN", b1.item, _memo("b1"), now_ms() + 60_000)
    assert after_b1.item.step_id == DISCOVERY and set(after_b1.steps) == {"a1", "b1"}
    rows = await store.read(lambda c: c.execute("SELECT step_id FROM queue WHERE run_id='01RUN'").fetchall())
    assert rows == [(DISCOVERY,)], "one discovery, not one more for the call that had already answered"
