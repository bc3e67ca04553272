"""``agentcmd runs list|show|watch|cancel`` and ``agentcmd send``: through the app server's API.

Only Typer is imported at module level; the HTTP client and Rich load
inside the commands, so ``agentcmd --help`` stays fast.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import RenderableType

app = typer.Typer(help="Inspect, follow, cancel, answer and resume runs.", no_args_is_help=True)

_STATUS_STYLE = {"Completed": "green", "Failed": "red", "Cancelled": "yellow", "Running": "cyan",
                 "Queued": "dim", "Interrupted": "magenta"}


def step_time(step: dict[str, Any]) -> str:
    """How long a step ran: so far while it runs ("12.3s so far"), else start to end."""
    ms = step.get("elapsed_ms")
    if not isinstance(ms, int | float) or isinstance(ms, bool):
        return ""
    text = f"{ms / 1000:.1f}s"
    return f"{text} so far" if step.get("status") == "Running" else text


def parse_json_arg(text: str, option: str) -> Any:
    """Parse a ``--input``/``--data`` value (JSON, or ``@file`` holding JSON); a bad one is an
    InputError (exit 2) saying where."""
    from pathlib import Path

    from agentcmd.errors import InputError

    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        try:
            text = path.read_text()
        except OSError as exc:
            raise InputError(f"{option} {text}: cannot read {path}: {exc.strerror}",
                             f"pass {option} @PATH with a readable JSON file, or the JSON itself") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InputError(f"{option} is not valid JSON: {exc}", f"""pass a JSON object, e.g. {option} '{{"key": 1}}'""",
                         details=[{"path": "$", "message": str(exc)}]) from None


def _client() -> Any:
    from agentcmd.server.client import AppClient

    return AppClient()


def _print_json(data: Any) -> None:
    from agentcmd.cli._console import print_json

    print_json(data)


def run_table(run: dict[str, Any]) -> RenderableType:
    """A run as a Rich table: one row per step with its phase and status."""
    from rich.table import Table

    status = str(run.get("status"))
    title = f"run {run.get('run_id')}  {run.get('workflow') or run.get('function_id')}  " \
            f"[{_STATUS_STYLE.get(status, 'white')}]{status}[/]"
    if run.get("phase"):
        title += f"  phase: {run['phase']}"
    table = Table(title=title, title_justify="left", show_edge=False)
    table.add_column("phase")
    table.add_column("step")
    table.add_column("status")
    table.add_column("time")
    table.add_column("started")
    with_usage = any(step.get("usage") for step in run.get("steps") or [])
    if with_usage:   # agent steps: tokens and cost (docs/workflows.md "Tokens, cost and budgets")
        table.add_column("tokens in/out")
        table.add_column("cost", justify="right")
    for step in run.get("steps") or []:
        st = str(step.get("status") or "")
        shown = f"[{_STATUS_STYLE.get(st, 'white')}]{st}[/]"
        if st == "Running" and step.get("pid"):
            shown += f" (pid {step['pid']})"
        cells = [step.get("phase") or "", str(step.get("id")), shown, step_time(step),
                 str(step.get("started_at") or "")]
        table.add_row(*cells, *(usage_cells(step.get("usage")) if with_usage else ()))
    return table


def usage_cells(usage: dict[str, Any] | None) -> tuple[str, str]:
    from agentcmd import usagefmt

    if not usage:
        return "", ""
    return f"{usagefmt.tokens(usage.get('input_tokens'))}/{usagefmt.tokens(usage.get('output_tokens'))}", \
        usagefmt.cost(usage.get("cost_usd"))


def describe_run_line(run: dict[str, Any]) -> str:
    return "  ".join(str(x) for x in (run.get("run_id"), run.get("workflow") or run.get("function_id"),
                                      run.get("status"), run.get("phase") or "-", run.get("started_at") or "-",
                                      run.get("ended_at") or "-"))


@app.command("list")
def list_(
    workflow: str | None = typer.Option(None, "--workflow", "-w", help="Only runs of this workflow id."),
    status: str | None = typer.Option(None, "--status", help="Running, Completed, Failed or Cancelled."),
    limit: int = typer.Option(20, "--limit", "-n", help="How many runs (newest first)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List runs, newest first."""
    params: dict[str, Any] = {"limit": limit}
    if workflow:
        params["workflow"] = workflow
    if status:
        params["status"] = status
    with _client() as client:
        body = client.get("/api/runs", params=params)
    runs = body.get("data") or []
    if as_json:
        _print_json(runs)
        return
    if not runs:
        typer.echo("no runs")
    for run in runs:
        typer.echo(describe_run_line(run))


@app.command("show")
def show(
    run_id: str = typer.Argument(..., help="The run id."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show one run with its steps: the running one with its time so far, one cut short by an
    app restart as Interrupted (it runs again from its start); agent steps with their tokens and
    cost, and the run's total."""
    with _client() as client:
        run = client.get(f"/api/runs/{run_id}")["data"]
    if as_json:
        _print_json(run)
        return
    from rich.console import Console

    console = Console()
    console.print(run_table(run))
    total = run.get("usage") or {}
    if total.get("agent_steps"):
        from agentcmd import usagefmt

        console.print(f"agent steps: {total['agent_steps']}, {usagefmt.summary(total)}", highlight=False)
    if run.get("output") is not None:
        console.print_json(json.dumps(run["output"], default=str))


@app.command("watch")
def watch(
    run_id: str = typer.Argument(..., help="The run id."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line: {\"event\": \"agent\"|\"run\""
                                 "|\"end\", \"data\": ...} (agent: one stream event; run: the run when it "
                                 "changes; end: the final run)."),
    timeout: float | None = typer.Option(None, "--timeout", help="Give up after this many seconds (exit 1; the "
                                         "run goes on). Default: until the run ends."),
) -> None:
    """Follow a run live until it ends: the running step and its time, the agents' messages, tool calls and
    results, each step's start and end. Exit 0 if it completed, 1 if it failed or was cancelled.

    A finished run prints what its stream kept, then its outcome. On a terminal the step table and a
    status line stay at the bottom; otherwise one plain line per event ('agent ID text ...', 'agent ID
    tool Bash: ls', 'step completed ID 3.2s'). A dropped connection resumes where it broke off; an app
    server without the live stream is polled (said once on stderr).
    """
    import sys

    from agentcmd.cli.watch import JsonDisplay, display_for, display_mode, follow_run, outcome_error

    mode = display_mode(as_json)
    display = display_for(mode, sys.stdout, run_table)
    try:
        with _client() as client:
            final = follow_run(client, run_id, display, timeout=timeout)
    finally:
        display.close()
    if isinstance(display, JsonDisplay):
        display.emit("end", final)
    elif mode == "plain":
        typer.echo(f"run {run_id} {str(final.get('status')).lower()}")
    err = outcome_error(final)
    if err is not None:
        raise err


@app.command("cancel")
def cancel(run_id: str = typer.Argument(..., help="The run id.")) -> None:
    """Cancel a run; a command it is running is stopped."""
    with _client() as client:
        run = client.post(f"/api/runs/{run_id}/cancel")["data"]
    typer.echo(f"run {run_id}: {run.get('status')}")


def register_send(root: typer.Typer) -> None:
    @root.command("send")
    def send(
        event: str = typer.Argument(..., help="Event name, e.g. agentcmd/workflow.fix-tests."),
        data: str = typer.Option("{}", "--data", "-d", help="Event data as a JSON object (or @file)."),
    ) -> None:
        """Send an event (through the app server's SDK client)."""
        payload = parse_json_arg(data, "--data")
        with _client() as client:
            ids = client.post("/api/events", json={"name": event, "data": payload})["data"]["ids"]
        for event_id in ids:
            typer.echo(event_id)
