"""Upgrades: a database written at every earlier schema version opens with this code, data intact, runs resume.

The versions are the migration files themselves (``migration_files()``),
so a migration added later is covered without touching this test. For each
version N:

1. a database is built by applying the migrations up to N, as agentcmd at
   version N left it (one ``schema_version`` row per migration applied);
2. every table of version N is filled with real rows: those a production
   engine wrote while runs completed, failed, were cancelled, waited for an
   event, slept, were rate limited, skipped by a singleton, and parked behind
   a paused function (``dataset``), keeping only the columns version N has.
   A table of version N with no rows fails the test: a new table needs a
   scenario in ``_scenario`` that fills it;
3. the current code opens it (its migrations run): the version is the
   latest and each table still holds every row, column for column;
4. a production engine starts on it with the app served again: the run that
   was waiting for an event at version N completes on that event, and the
   runs that had ended keep their status and output.
"""

from __future__ import annotations

import datetime
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import inngest
import pytest
from tests.harness.engine import SdkApp, _make_engine, client_for, runs_for_event, send_event, wait_for_run_status
from tests.polling import wait_for

from agentcmd.engine.store import DB_FILE_NAME
from agentcmd.engine.store.migrations import _statements, latest_version, migration_files
from agentcmd.engine.store.sqlite import Database

pytestmark = pytest.mark.slow

VERSIONS = [number for number, _sql in migration_files()]
APP_ID = "upg"
BOOKKEEPING = {"schema_version", "sqlite_sequence"}
SYNTHETIC: dict[str, list[dict[str, Any]]] = {}
"""Rows for a table that running the engine in ``_scenario`` cannot fill (table -> rows, column -> value),
added to the dataset after the engine stopped. Prefer a scenario: real rows are what an upgrade meets."""


def _functions(client: Any) -> list[Any]:
    @client.create_function(fn_id="waits", trigger=inngest.TriggerEvent(event="upg/wait"), retries=0,
                            cancel=[inngest.Cancel(event="upg/cancel", if_exp="async.data.n == event.data.n")])
    async def waits(ctx: inngest.Context) -> Any:
        first = await ctx.step.run("before", lambda: "b")
        got = await ctx.step.wait_for_event("approval", event="upg/approve", if_exp="async.data.n == event.data.n",
                                            timeout=datetime.timedelta(hours=1))
        return [first, None if got is None else got.data["by"]]

    @client.create_function(fn_id="naps", trigger=inngest.TriggerEvent(event="upg/nap"), retries=0)
    async def naps(ctx: inngest.Context) -> str:
        await ctx.step.sleep("nap", datetime.timedelta(seconds=float(ctx.event.data["seconds"])))
        return "rested"

    @client.create_function(fn_id="limited", trigger=inngest.TriggerEvent(event="upg/limited"), retries=0,
                            rate_limit=inngest.RateLimit(limit=1, period=datetime.timedelta(minutes=5)))
    async def limited(ctx: inngest.Context) -> str:
        return await ctx.step.run("work", lambda: "worked")

    @client.create_function(fn_id="fails", trigger=inngest.TriggerEvent(event="upg/fail"), retries=0)
    async def fails(ctx: inngest.Context) -> None:
        async def boom() -> None:
            raise ValueError("boom")

        await ctx.step.run("boom", boom)

    @client.create_function(fn_id="single", trigger=inngest.TriggerEvent(event="upg/single"), retries=0,
                            singleton=inngest.Singleton(mode="skip", key="event.data.k"))
    async def single(ctx: inngest.Context) -> str:
        await ctx.step.sleep("hold", datetime.timedelta(hours=1))
        return "single"

    return [waits, naps, limited, fails, single]


def _scenario(engine: Any) -> dict[str, str]:
    """Runs in every state and rows in every flow table; returns the run ids the checks need."""
    runs: dict[str, str] = {}
    [runs["completed"]] = runs_for_event(engine, send_event(engine, "upg/limited"))
    wait_for_run_status(engine, runs["completed"], "Completed")
    send_event(engine, "upg/limited")                           # rate limited: flow_skips, flow_marks
    [runs["failed"]] = runs_for_event(engine, send_event(engine, "upg/fail"))
    wait_for_run_status(engine, runs["failed"], "Failed")
    [runs["cancelled"]] = runs_for_event(engine, send_event(engine, "upg/wait", {"n": 2}))
    send_event(engine, "upg/cancel", {"n": 2})
    wait_for_run_status(engine, runs["cancelled"], "Cancelled")
    [runs["waiting"]] = runs_for_event(engine, send_event(engine, "upg/wait", {"n": 1}))
    [runs["sleeping"]] = runs_for_event(engine, send_event(engine, "upg/nap", {"seconds": 3600}))
    [runs["single"]] = runs_for_event(engine, send_event(engine, "upg/single", {"k": "a"}))
    send_event(engine, "upg/single", {"k": "a"})                # skipped: the singleton runs
    # Parked: a run whose function is paused while it sleeps; its wake-up waits in flow_waiting.
    [runs["parked"]] = runs_for_event(engine, send_event(engine, "upg/nap", {"seconds": 0.5}))
    r = httpx.post(f"{engine.url}/v1/functions/{APP_ID}-naps/pause", headers=engine.headers, timeout=5)
    assert r.status_code == 200, r.text
    db = engine.sqlite_dir / DB_FILE_NAME
    wait_for(lambda: _count(db, "pauses WHERE kind = 'wait'") and _count(db, "pauses WHERE kind = 'cancel'")
             and _count(db, "flow_waiting") and _count(db, "flow_singleton"), 20, "waits, a parked call, a singleton")
    return runs


def _count(db: Path, where: str) -> int:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {where}").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """A production engine's database (latest schema) after ``_scenario``, and its run ids."""
    base = tmp_path_factory.mktemp("upgrade-dataset")
    engine = _make_engine(base, 0, "production").start()
    app: SdkApp | None = None
    try:
        client = client_for(engine, APP_ID)
        app = SdkApp(client, _functions(client))
        app.sync(engine)
        runs = _scenario(engine)
        assert engine.stop() == 0, engine.output()
    except BaseException:
        print(engine.output())
        raise
    finally:
        if app is not None:
            app.stop()
        engine.stop()
    assert engine.sqlite_dir is not None
    path = engine.sqlite_dir / DB_FILE_NAME
    conn = sqlite3.connect(path)
    for table, rows in SYNTHETIC.items():
        for row in rows:
            conn.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                         tuple(row.values()))
    conn.commit()
    conn.close()
    yield path, runs


def _columns(conn: sqlite3.Connection, table: str, schema: str = "main") -> list[str]:
    return [str(row[1]) for row in conn.execute(f"PRAGMA {schema}.table_info({table})")]


def _tables(conn: sqlite3.Connection) -> list[str]:
    return [str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            if r[0] not in BOOKKEEPING]


Snapshot = dict[str, tuple[list[str], list[tuple[Any, ...]]]]
"""table -> (its columns at the version, its rows)."""


def _build_at(path: Path, version: int, source: Path) -> Snapshot:
    """The database agentcmd at ``version`` would have, filled from ``source``; returns each table's rows."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for number, sql in migration_files():
        if number > version:
            break
        for statement in _statements(sql):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
    conn.execute("ATTACH DATABASE ? AS src", (f"{source.resolve().as_uri()}?mode=ro",))
    rows: Snapshot = {}
    for table in _tables(conn):
        columns = _columns(conn, table)
        missing = set(columns) - set(_columns(conn, table, "src"))
        assert not missing, f"version {version}: {table}.{missing} no longer exist: give them data in this test"
        names = ", ".join(columns)
        conn.execute(f"INSERT INTO main.{table} ({names}) SELECT {names} FROM src.{table}")
        rows[table] = (columns, sorted(conn.execute(f"SELECT {names} FROM main.{table}").fetchall(), key=repr))
        assert rows[table][1], (f"version {version}: the scenario left table {table} empty; add runs to _scenario() "
                                "that write it (or rows to SYNTHETIC), so its upgrade is tested with data")
    conn.execute("DETACH DATABASE src")
    conn.close()
    return rows


def test_the_migrations_are_numbered_without_gaps() -> None:
    assert list(range(1, len(VERSIONS) + 1)) == VERSIONS
    assert VERSIONS[-1] == latest_version()


@pytest.mark.parametrize("version", VERSIONS)
def test_a_database_from_each_schema_version_upgrades_with_its_data_and_its_runs_resume(
        version: int, dataset: tuple[Path, dict[str, str]], tmp_path: Path, engine_factory: Any,
        sdk_factory: Any) -> None:
    source, runs = dataset
    db_dir = tmp_path / "engine"
    db_dir.mkdir()
    db_path = db_dir / DB_FILE_NAME
    before = _build_at(db_path, version, source)

    db = Database(db_path)
    db.open()                                              # the current code: its migrations run
    try:
        conn = db.conn
        assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == latest_version()
        assert [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")] == VERSIONS
        for table, (columns, rows) in before.items():
            after = sorted(conn.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall(), key=repr)
            assert after == rows, f"version {version}: table {table} changed in the upgrade"
    finally:
        db.close()

    engine = engine_factory("production", sqlite_dir=db_dir)
    client = client_for(engine, APP_ID)
    sdk_factory(engine, client, _functions(client))
    for state, status in (("completed", "Completed"), ("failed", "Failed"), ("cancelled", "Cancelled"),
                          ("waiting", "Running"), ("sleeping", "Running")):
        assert engine.get(f"/v1/runs/{runs[state]}").json()["data"]["status"] == status, state
    send_event(engine, "upg/approve", {"n": 1, "by": f"approved at v{version}"})
    done = wait_for_run_status(engine, runs["waiting"], "Completed")
    assert done["output"] == ["b", f"approved at v{version}"]
