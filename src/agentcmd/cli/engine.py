"""``agentcmd engine dev|start``: the embedded Inngest-compatible engine."""

from __future__ import annotations

import typer

from agentcmd.cli._console import not_yet_available

app = typer.Typer(help="Run the embedded engine alone (like 'inngest dev' / 'inngest start').",
                  no_args_is_help=True)


@app.command("dev")
def dev() -> None:
    """Engine in dev mode: no auth, state in memory (gone on exit)."""
    not_yet_available("agentcmd engine dev")


@app.command("start")
def start() -> None:
    """Engine in production mode: SQLite file, event key and signing key."""
    not_yet_available("agentcmd engine start")
