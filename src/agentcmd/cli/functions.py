"""``agentcmd functions list|pause|unpause|replay|cancel``: function-level controls, on the engine's REST API.

The engine is found at ``AGENTCMD_ENGINE_URL`` (default
``http://127.0.0.1:<engine_port>``); with a signing key configured, calls
carry its hashed bearer, which a production engine requires. Only Typer is
imported at module level, so ``agentcmd --help`` stays fast.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import typer

from agentcmd.errors import InputError

app = typer.Typer(help="Pause, unpause, replay and bulk-cancel functions (on the engine).", no_args_is_help=True)

_AGO = re.compile(r"^(\d+)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
FUNCTION_HELP = "The function: its slug ('<app id>-<function id>', as 'agentcmd functions list' shows) or id."


def _client() -> Any:
    from agentcmd.server.client import CliEngineClient

    return CliEngineClient()


def parse_when(text: str, option: str, now: dt.datetime) -> str:
    """``2h`` (ago), ``now`` or an ISO time (UTC when it has no zone) -> RFC 3339 for the engine."""
    value = text.strip()
    if value == "now":
        when = now
    elif m := _AGO.match(value):
        when = now - dt.timedelta(seconds=int(m.group(1)) * _UNIT_S[m.group(2)])
    else:
        try:
            when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InputError(f"{option} {text!r} is not a time",
                             f"use e.g. {option} 2h (ago), {option} now or {option} 2026-11-25T09:00") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the functions the engine knows, and whether each is paused."""
    with _client() as client:
        functions = client.get("/v1/functions")["data"]
    if as_json:
        from agentcmd.cli._console import print_json

        print_json(functions)
        return
    if not functions:
        typer.echo("no functions (is an app synced?)")
    for fn in functions:
        typer.echo("  ".join([fn["slug"], fn["app_id"], "paused" if fn.get("paused") else "active"]))


@app.command("pause")
def pause(function: str = typer.Argument(..., help=FUNCTION_HELP)) -> None:
    """Pause a function: events start no run of it and its runs stop before their next step.

    Runs and events are kept; 'agentcmd functions unpause' lets them go on.
    """
    with _client() as client:
        data = client.post(f"/v1/functions/{function}/pause")["data"]
    typer.echo(f"{data['function_id']}: paused" + ("" if data["changed"] else " (it already was)"))


@app.command("unpause")
def unpause(function: str = typer.Argument(..., help=FUNCTION_HELP)) -> None:
    """Unpause a function: the runs it held go on; events sent meanwhile stay skipped."""
    with _client() as client:
        data = client.post(f"/v1/functions/{function}/unpause")["data"]
    state = "unpaused" if data["changed"] else "was not paused"
    typer.echo(f"{data['function_id']}: {state}; {data['resumed_calls']} held call(s) resumed")


@app.command("replay")
def replay(
    function: str = typer.Argument(..., help=FUNCTION_HELP),
    since: str = typer.Option("24h", "--from", help="Start of the range: 2h (ago), now or an ISO time (UTC)."),
    until: str = typer.Option("now", "--to", help="End of the range, same forms."),
    status: list[str] = typer.Option([], "--status", "-s",
                                     help="Only runs with this status (repeatable), e.g. --status Failed."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Start the function's runs from a time range again, as new runs with the same events.

    The new runs are marked as replays of the old ones, which stay as they were.
    """
    now = dt.datetime.now(dt.UTC)
    body = {"from": parse_when(since, "--from", now), "to": parse_when(until, "--to", now), "status": status}
    with _client() as client:
        data = client.post(f"/v1/functions/{function}/replay", json=body)["data"]
    if as_json:
        from agentcmd.cli._console import print_json

        print_json(data)
        return
    typer.echo(f"{function}: {data['replayed']} run(s) replayed")
    for run_id in data["run_ids"]:
        typer.echo(run_id)


@app.command("cancel")
def cancel(
    function: str = typer.Argument(..., help=FUNCTION_HELP),
    since: str | None = typer.Option(None, "--from",
                                     help="Only runs created at or after this: 2h (ago), now or an ISO time (UTC). "
                                          "Default: no lower bound."),
    until: str | None = typer.Option(None, "--to", help="Only runs created at or before this, same forms. "
                                                         "Default: no upper bound."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Cancel every Queued or Running run of the function (optionally only those created in a time range).

    All in one transaction, each exactly as 'agentcmd runs cancel' would; a
    step command still running in the app is stopped. Completed, failed and
    already cancelled runs are left alone. Prints how many were cancelled.
    """
    now = dt.datetime.now(dt.UTC)
    with _client() as client:
        functions = client.get("/v1/functions")["data"]
        fn = next((f for f in functions if function in (f.get("slug"), f.get("id"))), None)
        if fn is None:
            raise InputError(f"no function {function!r} on the engine",
                             "list them with 'agentcmd functions list' (use the slug)")
        body = {"app_id": fn["app_id"], "function_id": fn["slug"],
                "started_after": parse_when(since, "--from", now) if since else None,
                "started_before": parse_when(until, "--to", now) if until else None}
        data = client.post("/v1/cancellations", json=body)["data"]
    if as_json:
        from agentcmd.cli._console import print_json

        print_json(data)
        return
    typer.echo(f"{fn['slug']}: {data['cancelled']} run(s) cancelled")
    for run_id in data["run_ids"]:
        typer.echo(run_id)
