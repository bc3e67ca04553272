"""The apps page lists each connect worker under its app (engine/connect's ``WorkerView`` snapshots).

The dashboard reads the workers through ``Commands.connect_workers()``; here a store-backed stand-in
gives it fixed snapshots, so the page's rendering is checked without a gateway (the end-to-end tests in
tests/workers/ check it against real workers).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from typing import TypeVar

import httpx
import pytest
from fastapi import FastAPI
from tests.engine.dashboard.seeder import Seeder
from tests.harness.servers import LiveServer

from agentcmd.engine.connect.view import WorkerView
from agentcmd.engine.dashboard import DashboardConfig, create_router
from agentcmd.engine.dashboard.reads import DashboardReads
from agentcmd.engine.store import Store
from agentcmd.mode import Mode
from agentcmd.webauth.guard import WebAuth

T = TypeVar("T")
NOW = 1_764_000_000_000


class WithWorkers:
    """The facade's two reads the apps page uses: the store, and the gateway's workers."""

    def __init__(self, store: Store, workers: list[WorkerView]) -> None:
        self._store = store
        self.workers = workers

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._store.read(fn)

    def connect_workers(self) -> list[WorkerView]:
        return list(self.workers)


def worker(n: int, app: str = "agentcmd", **kw: object) -> WorkerView:
    base = dict(connection_id=f"conn-{n}", instance_id=f"box-{n}", app_ids=(app,), address=f"10.0.0.{n}:5{n}000",
                connected_at_ms=NOW, last_heartbeat_ms=NOW + 10_000, in_flight=n, capacity=4 if n == 1 else None,
                status="ready", sdk="python v0.5.19")
    base.update(kw)
    return WorkerView(**base)  # type: ignore[arg-type]


@pytest.fixture
def served(store: Store) -> Iterator[Callable[[list[WorkerView]], str]]:
    servers: list[LiveServer] = []

    def serve(workers: list[WorkerView]) -> str:
        auth = WebAuth.build(Mode.DEV, "127.0.0.1", False, None)
        app = FastAPI()
        app.include_router(create_router(DashboardReads(WithWorkers(store, workers)),
                                         DashboardConfig(Mode.DEV, auth, db_description=store.describe()), None))
        server = LiveServer(app, lifespan="off").start()
        servers.append(server)
        return server.url

    yield serve
    for server in servers:
        server.stop()


def test_each_worker_is_listed_under_its_app_with_its_state(served: Callable[[list[WorkerView]], str],
                                                            seed: Seeder) -> None:
    seed.app("agentcmd")
    seed.app("other")
    workers = [worker(1), worker(2, status="draining"), worker(3, app="other")]
    base = served(workers)
    html = httpx.get(base + "/apps").text
    agentcmd_part, other_part = html.split('id="app-2"')
    assert "Connected workers of agentcmd" in agentcmd_part
    assert "box-1" in agentcmd_part and "box-2" in agentcmd_part and "box-3" not in agentcmd_part
    assert "10.0.0.1:51000" in agentcmd_part and "draining" in agentcmd_part and "no limit" in agentcmd_part
    assert "box-3" in other_part
    twin = httpx.get(base + "/apps.json").json()
    assert [w["connection_id"] for w in twin["workers_by_app"]["agentcmd"]] == ["conn-1", "conn-2"]
    assert twin["workers_by_app"]["agentcmd"][0]["capacity"] == 4


def test_the_page_version_follows_the_workers(served: Callable[[list[WorkerView]], str], seed: Seeder,
                                              store: Store) -> None:
    """A live page re-renders when a worker connects, drains or reports in-flight work."""
    seed.app("agentcmd")
    workers: list[WorkerView] = []
    base = served(workers)
    empty = httpx.get(base + "/apps.json").json()
    assert "Connected workers" not in httpx.get(base + "/apps").text
    workers.append(worker(1))
    one = httpx.get(base + "/apps.json").json()
    workers[0] = worker(1, in_flight=3)
    busier = httpx.get(base + "/apps.json").json()
    assert len({empty["version"], one["version"], busier["version"]}) == 3


def test_a_worker_of_an_app_not_synced_yet_is_shown_too(served: Callable[[list[WorkerView]], str]) -> None:
    html = httpx.get(served([worker(1, app="newcomer", status="connected")]) + "/apps").text
    assert "Connected workers of apps not synced yet" in html and "box-1" in html
    assert "No app has synced yet" not in html
