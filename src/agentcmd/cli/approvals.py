"""``agentcmd runs approve`` and ``agentcmd runs answer``: answer a run's ``step.approval`` / ``step.ask``.

Both go through the app server's API (``server/questions.py``), so the CLI
gets the same checks as the UI: a second answer is refused
(``already_answered``), an answer to a run that no longer waits too
(``not_waiting``), and a bad answer lists every problem (exit 2). The
question may be left out when the run waits for exactly one.
"""

from __future__ import annotations

from typing import Any

import typer

CLI_HEADERS = {"X-Agentcmd-Client": "cli"}   # the answer's "by": cli


def _describe(record: dict[str, Any]) -> str:
    answer = record.get("answer") or {}
    text = f"run {record.get('run_id')}: question {record.get('question')} {answer.get('decision')}"
    if answer.get("answer") is not None:
        import json

        text += f": {json.dumps(answer['answer'])}"
    return text


def _post_answer(run_id: str, route: str, body: dict[str, Any], comment: str | None, question: str | None,
                 as_json: bool) -> None:
    """POST ``body`` (plus the optional comment and question) to ``/api/runs/<id>/<route>`` and print the record.

    ``approve`` and ``answer`` differ only in the route and the body's first field."""
    from agentcmd.cli.runs import _client, _print_json

    if comment is not None:
        body["comment"] = comment
    if question is not None:
        body["question"] = question
    with _client() as client:
        record = client.post(f"/api/runs/{run_id}/{route}", json=body, headers=CLI_HEADERS)["data"]
    if as_json:
        _print_json(record)
    else:
        typer.echo(_describe(record))


def register(app: typer.Typer) -> None:
    """Add ``approve`` and ``answer`` to the ``runs`` group."""

    @app.command("approve")
    def approve(
        run_id: str = typer.Argument(..., help="The run id."),
        reject: bool = typer.Option(False, "--reject", help="Reject instead of approving."),
        comment: str | None = typer.Option(None, "--comment", "-c", help="A comment kept with the decision."),
        question: str | None = typer.Option(None, "--question", "-q", help="The question's id (its step id, "
                                            "'phase/id' inside a phase); needed when the run waits for several."),
        as_json: bool = typer.Option(False, "--json", help="Print the answered question as JSON."),
    ) -> None:
        """Approve (or --reject) what a run waits for in step.approval; the run goes on at once.

        Exit 1 with 'already_answered' if someone answered first, or 'not_waiting' if the run ended or
        the question timed out.
        """
        _post_answer(run_id, "approve", {"approved": not reject}, comment, question, as_json)

    @app.command("answer")
    def answer(
        run_id: str = typer.Argument(..., help="The run id."),
        input_: str = typer.Option(..., "--input", "-i", help="The answer as JSON (or @file holding JSON), "
                                   "checked against the question's schema."),
        question: str | None = typer.Option(None, "--question", "-q", help="The question's id (its step id); "
                                            "needed when the run waits for several."),
        comment: str | None = typer.Option(None, "--comment", "-c", help="A comment kept with the answer."),
        as_json: bool = typer.Option(False, "--json", help="Print the answered question as JSON."),
    ) -> None:
        """Answer what a run asks in step.ask; the run goes on with the answer.

        A string answer is JSON too: --input '"yes"'. Exit 2 listing every problem if the answer does not
        fit the question's schema; exit 1 with 'already_answered' or 'not_waiting' as for approve.
        """
        from agentcmd.cli.runs import parse_json_arg

        _post_answer(run_id, "answer", {"answer": parse_json_arg(input_, "--input")}, comment, question, as_json)
