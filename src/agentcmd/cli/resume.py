"""``agentcmd runs resume RUN [--input JSON] [--wait]``: resume a failed or cancelled run.

Through the app server's ``POST /api/runs/{id}/resume`` (``server/resume.py``):
a new run keeps the results of the steps that completed and runs the rest.
``--wait`` follows the new run as ``agentcmd workflows run --wait`` does.
"""

from __future__ import annotations

import sys

import typer


def register(runs: typer.Typer) -> None:
    @runs.command("resume")
    def resume(
        run_id: str = typer.Argument(..., help="The id of a Failed or Cancelled run."),
        input_json: str | None = typer.Option(
            None, "--input", "-i", help="An edited input as a JSON object (or @file), checked against the "
            "workflow's arguments. Default: the run's own input. Steps that completed keep their results; "
            "the steps that run now see this input."),
        wait: bool = typer.Option(False, "--wait", help="Wait for the new run to end; exit 0 if it completed, 1 if "
                                  "not (as 'agentcmd workflows run --wait')."),
        timeout: float = typer.Option(3600.0, "--timeout", help="With --wait: give up waiting after this many "
                                      "seconds."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Resume a failed or cancelled run from its first step that did not complete.

        A new run, linked to the old one, starts with the same event (or the edited input); the steps
        that completed are not called again. A running, queued or completed run is refused (exit 1);
        so is a run that was resumed already (resume the newer run).
        """
        from agentcmd.cli._console import print_json
        from agentcmd.cli.runs import parse_json_arg
        from agentcmd.cli.workflows import _final, _wait
        from agentcmd.server.client import AppClient

        body = {} if input_json is None else {"input": parse_json_arg(input_json, "--input")}
        with AppClient() as client:
            resumed = client.post(f"/api/runs/{run_id}/resume", json=body)["data"]
            new = str(resumed["run_id"])
            if not wait:
                if as_json:
                    print_json(resumed)
                else:
                    kept = resumed.get("kept_steps")
                    typer.echo(f"resumed run {run_id} as run {new} ({kept} completed step"
                               f"{'s' if kept != 1 else ''} kept)")
                return
            live = sys.stdout.isatty() and not as_json
            if not live and not as_json:
                sys.stderr.write(f"run {run_id} resumed as run {new}; waiting\n")
            final = _wait(client, new, timeout, live)
        _final(final, as_json)
