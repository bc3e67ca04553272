"""``agentcmd dev`` and ``agentcmd start``: engine + app server under one supervisor."""

from __future__ import annotations

import typer

from agentcmd.cli._console import not_yet_available


def register(app: typer.Typer) -> None:
    @app.command("dev")
    def dev() -> None:
        """Run the engine and the app server in dev mode (ephemeral: history is lost on restart)."""
        not_yet_available("agentcmd dev")

    @app.command("start")
    def start() -> None:
        """Run the engine and the app server in production mode (SQLite, keys, history kept)."""
        not_yet_available("agentcmd start")
