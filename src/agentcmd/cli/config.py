"""``agentcmd config``: show, get, set and locate settings (secrets masked)."""

from __future__ import annotations

import json
from typing import Any

import typer

from agentcmd.cli._console import info, print_json
from agentcmd.errors import ConfigError

app = typer.Typer(help="Show and change settings (keys are always masked).", no_args_is_help=False)

_SECRETS = {"event_key", "signing_key", "dashboard_token"}


@app.callback(invoke_without_command=True)
def config(
    ctx: typer.Context,
    show: bool = typer.Option(False, "--show", help="Print every setting and where files live."),
) -> None:
    """Show and change settings. Without a subcommand, same as --show."""
    if ctx.invoked_subcommand is None:
        from agentcmd.config import load_settings

        print_json(load_settings().public_view())


@app.command("path")
def path() -> None:
    """Print the path of the config file."""
    from agentcmd.config.paths import config_path

    info(str(config_path()))


@app.command("get")
def get(name: str = typer.Argument(..., help="Setting name, e.g. engine_port.")) -> None:
    """Print one setting's effective value (secrets masked)."""
    from agentcmd.config import load_settings

    view = load_settings().public_view()
    if name not in view:
        raise ConfigError(f"unknown setting {name!r}", "see 'agentcmd config --show' for the names")
    value = view[name]
    info(value if isinstance(value, str) else json.dumps(value))


@app.command("set")
def set_(
    name: str = typer.Argument(..., help="Setting name, e.g. engine_port."),
    value: str = typer.Argument(..., help="New value (JSON for numbers, booleans and objects)."),
) -> None:
    """Write one setting to the config file (validated first; the file stays 0600)."""
    from agentcmd.config.paths import config_path
    from agentcmd.config.settings import Settings
    from agentcmd.config.sources import read_config_file, write_config_file

    if name not in Settings.model_fields or name == "home":
        raise ConfigError(f"unknown setting {name!r}", "see 'agentcmd config --show' for the names")
    parsed: Any
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    if name in _SECRETS:
        parsed = value
    path_ = config_path()
    data = read_config_file(path_)
    candidate = {**data, name: parsed}
    from pydantic import ValidationError

    try:
        Settings.model_validate({name: parsed})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(f"invalid value for {name}: {err['msg']}", "see docs/settings.md") from None
    write_config_file(path_, candidate)
    info(f"set {name} in {path_}")


@app.command("dashboard-token")
def dashboard_token() -> None:
    """Print the dashboard login token (needed when the engine is bound beyond loopback)."""
    from agentcmd.config import load_settings

    token = load_settings().secret("dashboard_token")
    if not token:
        raise ConfigError("no dashboard token is set", "run 'agentcmd install' to generate one")
    info(token)
