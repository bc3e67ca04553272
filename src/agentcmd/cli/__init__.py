"""The ``agentcmd`` command line: one Typer app, one error boundary.

Each command group lives in its own module; modules import only Typer at
import time and pull in the web stack inside the command body, so
``agentcmd --help`` and ``agentcmd config`` start fast.

The boundary (``main``) turns an ``AgentcmdError`` into "error: ... /
fix: ..." on stderr and its exit code; a bad flag is Click's usage error
(exit 2). Tracebacks are for bugs only.
"""

from __future__ import annotations

import sys
import warnings

import typer

from agentcmd import __version__
from agentcmd.cli import approvals as approvals_cmd
from agentcmd.cli import backup as backup_cmd
from agentcmd.cli import config as config_cmd
from agentcmd.cli import engine as engine_cmd
from agentcmd.cli import functions as functions_cmd
from agentcmd.cli import install as install_cmd
from agentcmd.cli import resume as resume_cmd
from agentcmd.cli import run as run_cmd
from agentcmd.cli import runs as runs_cmd
from agentcmd.cli import worker as worker_cmd
from agentcmd.cli import workflows as workflows_cmd
from agentcmd.cli import workspaces as workspaces_cmd
from agentcmd.cli._console import error, warn
from agentcmd.errors import AgentcmdError

app = typer.Typer(
    name="agentcmd",
    help="Run AI-coding workflows (agent, shell and git steps) as durable, observable runs.\n\n"
    "Quick start: 'agentcmd dev' runs the engine and the app server in dev mode (in memory); "
    "'agentcmd start' runs them in production mode (SQLite, keys, history kept).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"agentcmd {__version__}")
        raise typer.Exit()


_STARTS_AN_ENGINE = {"dev", "start", "engine"}


@app.callback()
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """agentcmd: durable AI-coding workflows."""
    if ctx.invoked_subcommand in _STARTS_AN_ENGINE and not ctx.resilient_parsing:
        # Refuse a bad key from the environment or config file before anything starts;
        # flags are validated by the command itself.
        from agentcmd.config import load_settings

        load_settings()


run_cmd.register(app)
app.add_typer(engine_cmd.app, name="engine")
install_cmd.register(app)
app.add_typer(config_cmd.app, name="config")
app.add_typer(workflows_cmd.app, name="workflows")
resume_cmd.register(runs_cmd.app)  # agentcmd runs resume
app.add_typer(runs_cmd.app, name="runs")
app.add_typer(functions_cmd.app, name="functions")
runs_cmd.register_send(app)
backup_cmd.register(app)
approvals_cmd.register(runs_cmd.app)   # agentcmd runs approve / answer
app.add_typer(workspaces_cmd.app, name="workspaces")
worker_cmd.register(app)   # agentcmd worker: the workflows as a connect worker (server/connectworker.py)


def main() -> None:
    """Console-script entry point with the error boundary."""
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = lambda message, *_a, **_k: warn(str(message))
        try:
            app(prog_name="agentcmd")
        except AgentcmdError as err:
            error(err)
            sys.exit(err.exit_code)
        except KeyboardInterrupt:
            sys.stderr.write("interrupted\n")
            sys.exit(130)
