"""``agentcmd install``: generate keys into ``$AGENTCMD_HOME/config.json``."""

from __future__ import annotations

import typer

from agentcmd.cli._console import info


def register(app: typer.Typer) -> None:
    @app.command("install")
    def install(
        rotate_keys: bool = typer.Option(False, "--rotate-keys", help="Replace existing keys with new ones."),
    ) -> None:
        """Generate an event key, a signing key and a dashboard token (config file, mode 0600).

        Existing keys are kept unless --rotate-keys is given; a weak or malformed key (which the engine
        refuses) is replaced. Keys are never printed.
        """
        from agentcmd.config.install import ensure_keys

        result = ensure_keys(rotate=rotate_keys)
        verb = "wrote" if result.changed else "kept"
        info(f"{verb} keys in {result.path} (mode 0600): " + ", ".join(result.fields))
        if not result.changed:
            info("existing keys kept; use --rotate-keys to replace them")
