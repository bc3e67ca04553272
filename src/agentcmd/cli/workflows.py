"""``agentcmd workflows list|run``: the workflows the app server serves."""

from __future__ import annotations

import typer

from agentcmd.cli._console import not_yet_available

app = typer.Typer(help="List workflows and start runs.", no_args_is_help=True)


@app.command("list")
def list_() -> None:
    """List the workflows found in .agentcmd/workflows/."""
    not_yet_available("agentcmd workflows list")


@app.command("run")
def run() -> None:
    """Start a run of a workflow."""
    not_yet_available("agentcmd workflows run")
