"""``agentcmd runs list|show|cancel`` and ``agentcmd send``."""

from __future__ import annotations

import typer

from agentcmd.cli._console import not_yet_available

app = typer.Typer(help="Inspect and cancel runs.", no_args_is_help=True)


@app.command("list")
def list_() -> None:
    """List runs, newest first."""
    not_yet_available("agentcmd runs list")


@app.command("show")
def show() -> None:
    """Show one run with its steps."""
    not_yet_available("agentcmd runs show")


@app.command("cancel")
def cancel() -> None:
    """Cancel a run."""
    not_yet_available("agentcmd runs cancel")


def register_send(root: typer.Typer) -> None:
    @root.command("send")
    def send() -> None:
        """Send an event to the engine."""
        not_yet_available("agentcmd send")
