"""``agentcmd workflows list|run``: the workflows the app server serves.

Only Typer is imported at module level; the rest loads inside commands.
``run --wait`` follows the run until it ends (``cli/watch.py``: the app's
live stream, or polling on an older app server): exit 0 when it completed
(its output is printed), 1 when it failed or was cancelled; on a terminal
it shows the phases and steps, the running step's time and the agents'
messages live, elsewhere (CI logs) it writes one plain line per step start
and end and per agent message or tool call to stderr (``cli/stepfeed.py``,
``cli/agentlines.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from agentcmd.cli.runs import parse_json_arg, run_table

app = typer.Typer(help="List workflows and start runs.", no_args_is_help=True)

TERMINAL = ("Completed", "Failed", "Cancelled")


@app.command("list")
def list_(
    as_json: bool = typer.Option(False, "--json", help="Print JSON (with input schemas)."),
    project: Path | None = typer.Option(None, "--project", help="Project directory, when no app server runs."),
) -> None:
    """List the workflows found in .agentcmd/workflows/ (from the app server, else from disk).

    Exits 1 when a workflow could not be loaded (a broken file, a duplicate
    workflow id): each problem is printed on stderr with its file, line and
    a fix; the workflows that did load are still listed.
    """
    from agentcmd.cli._console import print_json, warn
    from agentcmd.errors import UnavailableError
    from agentcmd.server.client import AppClient

    try:
        with AppClient() as client:
            body = client.get("/api/workflows")
        note = None
    except UnavailableError as err:
        from agentcmd.config import load_settings
        from agentcmd.workflows.served import discover_served

        settings = load_settings()
        where = (project or settings.resolved_project_dir).resolve()
        found = discover_served(where, settings.resolved_data_dir, record=False)
        body = {"data": [wf.describe() for wf in found.workflows.values()],
                "errors": [e.to_json() for e in found.errors]}
        note = f"{err.what}; showing the workflows found in {where}"
    if note:
        warn(note)
    if as_json:
        print_json(body["data"])
    else:
        if not body["data"]:
            typer.echo("no workflows (add one in .agentcmd/workflows/*.py)")
        for wf in body["data"]:
            phases = ",".join(wf.get("phases") or []) or "-"
            typer.echo(f"{wf['id']}  {wf['name']}  phases={phases}  trigger={wf['trigger']}")
    _load_errors(body.get("errors") or [])


def _load_errors(errors: list[dict[str, Any]]) -> None:
    """Print each load error with its fix on stderr; exit 1 when there is any."""
    from agentcmd.errors import AgentcmdError

    if not errors:
        return
    for e in errors:
        where = e.get("where") or (f"{e['source']}:{e['line']}" if e.get("line") else e.get("source"))
        sys.stderr.write(f"not loaded: {where}: {e.get('error')}\n")
        if e.get("hint"):
            sys.stderr.write(f"  fix: {e['hint']}\n")
    duplicates = sum(1 for e in errors if e.get("kind") == "duplicate_id")
    what = f"{len(errors)} workflow load error{'s' if len(errors) > 1 else ''}"
    if duplicates:
        what += f" ({duplicates} duplicate workflow id{'s' if duplicates > 1 else ''})"
    raise AgentcmdError(what + ": what is listed as 'not loaded' is not served",
                        "follow each 'fix:' line above (docs/workflows.md, 'Load errors')",
                        code="workflow_load_errors", exit_code=1)


def _final(run: dict[str, Any], as_json: bool) -> None:
    from agentcmd.cli._console import print_json
    from agentcmd.cli.watch import outcome_error

    if as_json:
        print_json(run)
    err = outcome_error(run)
    if err is not None:
        raise err
    if not as_json:
        print_json(run.get("output"))


def _wait(client: Any, run_id: str, timeout: float, live: bool) -> dict[str, Any]:
    """Follow the run to its end (``cli/watch.py``): live on a terminal, else plain lines on stderr."""
    from agentcmd.cli.watch import display_for, follow_run

    display = display_for("rich" if live else "plain", sys.stderr, run_table)
    try:
        return follow_run(client, run_id, display, timeout=timeout)
    finally:
        display.close()


@app.command("run")
def run(
    workflow_id: str = typer.Argument(..., help="The workflow id (see 'agentcmd workflows list')."),
    input_json: str = typer.Option("{}", "--input", "-i", help="The run's input as a JSON object (or @file)."),
    wait: bool = typer.Option(False, "--wait", help="Wait for the run to end; exit 0 if it completed, 1 if not. "
                              "On a terminal the steps, the running step's time and the agents' messages and "
                              "tool calls show live; otherwise each is one plain line on stderr ('step started "
                              "ID phase=P', 'agent ID tool Bash: ls', 'step completed ID 3.2s'), as in "
                              "'agentcmd runs watch'."),
    timeout: float = typer.Option(3600.0, "--timeout", help="With --wait: give up waiting after this many seconds."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Start a run of a workflow."""
    from agentcmd.cli._console import print_json
    from agentcmd.errors import AgentcmdError
    from agentcmd.server.client import AppClient

    data = parse_json_arg(input_json, "--input")
    with AppClient() as client:
        started = client.post(f"/api/workflows/{workflow_id}/runs", json={"input": data})["data"]
        run_id = started.get("run_id")
        if not wait:
            if as_json:
                print_json(started)
            else:
                typer.echo(f"started run {run_id or '(pending)'} of {workflow_id} (event {started.get('event_id')})")
            return
        if not run_id:
            raise AgentcmdError(f"the engine did not report a run for event {started.get('event_id')}",
                                "check that the engine synced the app ('agentcmd runs list')",
                                code="run_not_started", exit_code=1)
        live = sys.stdout.isatty() and not as_json
        if not live and not as_json:
            sys.stderr.write(f"run {run_id} started; waiting\n")
        final = _wait(client, run_id, timeout, live)
    _final(final, as_json)


@app.command("reload")
def reload(
    as_json: bool = typer.Option(False, "--json", help="Print the app server's answer as JSON."),
) -> None:
    """Reload the workflow files in the running app server and sync them with the engine.

    Runs in flight keep running (the next step of a run uses the new code);
    no restart. 'agentcmd dev' does this by itself when a file changes;
    for 'agentcmd start', this or SIGHUP to its process does it.
    Exit 1 when the engine did not take the workflows.
    """
    from agentcmd.cli._console import print_json, warn
    from agentcmd.server.client import AppClient

    with AppClient() as client:
        result = client.post("/api/reload").get("data") or {}
    if as_json:
        print_json(result)
    else:
        for e in result.get("errors") or []:
            source = f"{e['source']}:{e['line']}" if e.get("line") else e["source"]
            warn(f"workflow not loaded: {source}: {e['error']}")
        names = ", ".join(result.get("workflows") or []) or "none"
        for what in ("added", "removed"):
            if result.get(what):
                typer.echo(f"{what}: {', '.join(result[what])}")
        if result.get("synced"):
            typer.echo(f"reloaded and synced with the engine: {names}")
        elif result.get("worker_mode") == "connect" and result.get("workflows"):
            typer.echo(f"reloaded the app server's list: {names}; connect workers serve the workflows: send "
                       "'agentcmd start' (or each 'agentcmd worker') SIGHUP to reload them too")
        elif not result.get("sync_error"):
            typer.echo("reloaded: no workflows (add one in .agentcmd/workflows/*.py)")
    if result.get("sync_error"):
        warn(f"the engine did not take the workflows: {result['sync_error']}")
        raise typer.Exit(1)
