"""``agentcmd engine prune``: remove finished runs older than an age now, from the engine database.

Two ways, decided by who holds the database:

* no engine uses it (its lock file is free): the command opens the file
  itself and prunes it with the same code the engine runs in the
  background (``engine/retention.py``), in small transactions;
* an engine uses it: the command asks that engine (``POST
  /v1/storage/prune`` at ``AGENTCMD_ENGINE_URL``, with the signing key's
  bearer), which prunes between its own work, after checking that the
  engine it reached really runs on this file. If it cannot be reached, the
  command refuses and says why: two processes must not prune one file.

``--vacuum`` (engine stopped only) converts a database made before
retention existed (``auto_vacuum=none``) so that pruning can give space back.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import typer

from agentcmd.errors import AgentcmdError, DatabaseLockedError, NotFoundError


def prune(
    older_than: str = typer.Option(
        None, "--older-than", metavar="AGE",
        help="Remove finished runs (Completed, Failed, Cancelled) that ended more than AGE ago: 30d, 12h, 90m. "
             "Default: the retention setting (AGENTCMD_ENGINE_RETENTION, 30d)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only count what would be removed; change nothing."),
    sqlite_dir: str = typer.Option(None, "--sqlite-dir",
                                   help="Directory of the engine database (default $AGENTCMD_HOME/data/engine)."),
    vacuum: bool = typer.Option(
        False, "--vacuum",
        help="Engine stopped only: first convert an older database to auto_vacuum=incremental (one full VACUUM, "
             "needs as much free disk as the file) so pruning gives space back to the file system."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Prune finished runs (with their steps, history and events) older than an age, now.

    In-flight, sleeping, waiting and parked runs are never removed. With an
    engine running on the database it asks that engine; otherwise it prunes
    the file directly.
    """
    from agentcmd.config import load_settings
    from agentcmd.engine.retentionage import parse_age, parse_retention
    from agentcmd.engine.store import DB_FILE_NAME

    settings = load_settings(sqlite_dir=Path(sqlite_dir) if sqlite_dir else None)
    if older_than is not None:
        age = parse_age(older_than, "--older-than")
    else:
        configured = parse_retention(settings.engine_retention)
        if configured is None:
            from agentcmd.engine.retention import PruneInputError

            raise PruneInputError("no --older-than given and the retention setting keeps runs forever",
                                  "give an age, e.g. 'agentcmd engine prune --older-than 30d --dry-run'")
        age = configured
    path = settings.resolved_sqlite_dir / DB_FILE_NAME
    if not path.exists():
        raise NotFoundError(f"no engine database at {path}",
                            "pass --sqlite-dir (or set AGENTCMD_SQLITE_DIR) to the directory 'agentcmd engine start' "
                            "uses")
    try:
        report, where = _prune_file(path, age, dry_run, vacuum), "the file directly, no engine is using it"
    except DatabaseLockedError:
        if vacuum:
            raise DatabaseLockedError(
                f"an engine is using {path}: --vacuum rewrites the whole file and needs it stopped",
                "stop the engine ('agentcmd engine start' / 'agentcmd start'), run the command again, then start "
                "it") from None
        report, where = _ask_engine(path, age, dry_run)
    if as_json:
        from agentcmd.cli._console import print_json

        print_json({"database": str(path), "via": where, **report})
        return
    for line in describe(report, str(path), where):
        typer.echo(line)


def _prune_file(path: Path, age: float, dry_run: bool, vacuum: bool) -> dict[str, Any]:
    from agentcmd.engine.clock import system_clock
    from agentcmd.engine.retention import Pruner
    from agentcmd.engine.store import open_store
    from agentcmd.engine.store.retention import convert_to_incremental

    store = open_store(path)      # raises DatabaseLockedError while an engine holds it
    try:
        if vacuum and not dry_run:
            store.db.read_sync(convert_to_incremental)

        async def one_pass() -> dict[str, Any]:
            return (await Pruner(store, system_clock, None, pause_s=0, duty=0).prune(age, dry_run)).as_dict()

        return asyncio.run(one_pass())
    finally:
        store.close()


def _ask_engine(path: Path, age: float, dry_run: bool) -> tuple[dict[str, Any], str]:
    from agentcmd.engine.retentionage import format_retention
    from agentcmd.server.client import CliEngineClient

    client = CliEngineClient(timeout=3600.0)
    try:
        try:
            storage = client.get("/v1/storage")["data"]
        except AgentcmdError as exc:
            raise DatabaseLockedError(
                f"an engine is using {path}, and the engine at {client.base_url} could not be asked to prune it "
                f"({exc.what})",
                "set AGENTCMD_ENGINE_URL to that engine's URL (and INNGEST_SIGNING_KEY to its key), or stop it and "
                "run the command again to prune the file directly") from None
        if storage.get("path") is None or Path(str(storage["path"])).resolve() != path.resolve():
            raise DatabaseLockedError(
                f"an engine is using {path}, but the engine at {client.base_url} runs on "
                f"{storage.get('path') or 'an in-memory database'}",
                "set AGENTCMD_ENGINE_URL to the engine that uses this --sqlite-dir, or stop it and run the command "
                "again to prune the file directly")
        body = {"older_than": format_retention(age), "dry_run": dry_run}
        report = client.post("/v1/storage/prune", json=body)["data"]
    finally:
        client.close()
    return report, f"the running engine at {client.base_url}"


_LABELS = (("runs", "finished runs"), ("steps", "step results"), ("history", "history entries"),
           ("queue", "queue rows"), ("pauses", "pauses"), ("flow_singleton", "singleton rows"),
           ("events", "events"), ("flow_skips", "skip records"))


def describe(report: dict[str, Any], database: str, where: str) -> list[str]:
    """The human report: what went (or would go), and the space."""
    removed = report["removed"]
    dry = bool(report["dry_run"])
    parts = [f"{removed[key]:,} {label}" for key, label in _LABELS if removed.get(key)]
    lines = [f"{'Dry run: nothing changed in' if dry else 'Pruned'} {database} (via {where})",
             f"  finished runs that ended before {report['cutoff']} (older than {report['older_than']})",
             f"  {'would remove' if dry else 'removed'}: {', '.join(parts) if parts else 'nothing'}"
             f" ({report['rows']:,} rows, about {_size(removed['data_bytes'])} of data)"]
    if dry:
        lines.append(f"  database now {_size(report['bytes_before'])}; run without --dry-run to remove them")
    else:
        lines.append(f"  space: {_size(report['bytes_before'])} -> {_size(report['bytes_after'])} "
                     f"({_size(report['bytes_freed'])} given back to the file system, "
                     f"{report['batches']} transactions, longest {report['longest_batch_ms']:.1f} ms, "
                     f"{report['seconds']:.1f} s)")
        if report["auto_vacuum"] != "incremental" and report["free_bytes_after"]:
            lines.append(f"  {_size(report['free_bytes_after'])} of free pages stay inside the file for new rows "
                         "(a database from before retention: auto_vacuum=none); stop the engine and run "
                         "'agentcmd engine prune --vacuum' once to give space back from then on")
    return lines



def _size(n: int) -> str:
    from agentcmd.engine.retention import human_size

    return human_size(n)
