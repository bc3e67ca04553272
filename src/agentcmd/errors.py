"""The one exception tree of agentcmd.

Every error a user can cause carries ``what`` went wrong and the ``fix``,
a stable snake_case ``code`` (for JSON APIs) and an ``exit_code`` (for the
CLI). Errors are converted only at the boundaries: the CLI prints
"error: what" / "fix: fix" and exits; the HTTP apps answer
``{"error", "code", "hint"}``. Nothing below a boundary prints.

Each class has its own ``code`` (no two share one); its docstring says what
it means and ``fix_hint`` what to do in general (the ``fix`` of an instance
is specific). Some raise sites give an instance a more precise code; those
codes are listed in ``variants`` of the class they are raised as.
``scripts/gen_errors_docs.py`` writes docs/errors.md from all of this, and
a test fails when the page is stale or a code appears twice.

    AgentcmdError                     agentcmd_error
    ├── ConfigError                   bad settings, keys, config file, NODE_ENV
    │   ├── InvalidSigningKeyError    a signing key that is not (prefixed) hex
    │   └── HandoverError             handover.py: the supervisor's key pipe
    ├── StoreError                    the engine's SQLite state
    │   ├── DatabaseLockedError
    │   ├── DatabaseCorruptError
    │   ├── DatabaseVersionError      written by a newer agentcmd
    │   ├── DatabaseUnwritableError   disk full, read-only, I/O errors
    │   ├── BackupError               engine/store/backup.py: a refused backup or restore
    │   └── MemoConflictError         engine/store/writes.py: a step memo written twice
    ├── ProtocolError                 an SDK answered something we cannot parse
    ├── AuthError                     wrong event key, bad signature, missing bearer
    ├── NotFoundError                 unknown run, event, workflow
    ├── InputError                    bad user input (JSON, schema validation)
    │   └── ReplayInputError          engine/flow/replay.py: a replay request
    ├── EventTooLargeError            engine/api/sizes.py: an event above the size limit
    ├── UnavailableError              a feature or a server that is not there
    ├── RunNotStartedError            server/startrun.py: the engine made no run
    ├── WorkflowPausedError           server/startrun.py: the workflow is paused
    ├── QuestionConflictError         workflows/questions.py: a second answer, or a run that no longer waits
    ├── SupervisorError               running the engine and app processes
    │   ├── PortInUseError
    │   └── ChildExitedError
    ├── WorkflowDefinitionError       a define_workflow call that cannot work
    │   └── SchemaDefinitionError     workflows/schema.py: an unusable args_schema (also a ValueError)
    ├── GitError                      workflows/gitops.py: step.git
    ├── UnknownAgentError             workflows/agents.py: step.agent names no known agent
    ├── AgentNotFoundError            workflows/agents.py: the agent's CLI is not installed
    ├── AgentArgumentError            workflows/agents.py: an option-like agent argument
    ├── PromptTooLongError            workflows/agents.py: a prompt over the argv limit
    └── StepFailedError               a workflow step's command failed (raised inside an SDK step)
        ├── CommandFailedError        workflows/steps.py: step.cli exited non-zero
        ├── CommandTimeoutError       workflows/steps.py: a command ran past its timeout
        ├── AgentFailedError          workflows/steps.py: an agent CLI failed
        └── StepInterruptedError      workflows/steps.py: the app server is shutting down

Errors raised inside an SDK step (``StepFailedError`` and below) reach the
engine the way the SDK serialises any exception: the class name and
``str(err)``, retried per the workflow's policy (they are not
``inngest.NonRetriableError``s). They are raised with a message only, so
``str(err)`` is that message.

Deliberately outside the tree:

* ``workflows/steps.py`` ``StepCancelledError`` is an ``inngest.NonRetriableError``:
  the SDK reads ``code`` (its own ``ErrorCode``), ``name`` and ``message`` of
  that class, which this tree's ``code`` would shadow.
* ``engine/http1.py`` ``StaleConnectionError`` and ``ClosedBeforeHeadError``
  (``ConnectionError``s) are transport signals inside the engine's HTTP
  client: it retries the first, and the executor reports both as a failed SDK
  call; no user sees them as such.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

Variant = tuple[str, str] | tuple[str, str, int]
"""A more precise code's (what it means, what to do), and its exit code when not the class's."""


class AgentcmdError(Exception):
    """Base class: a problem the user can understand and act on."""

    code: str = "agentcmd_error"
    exit_code: int = 1
    http_status: int = 500
    fix_hint: ClassVar[str] = "read the 'fix:' line (the JSON 'hint') that comes with the message"
    """What to do about this kind of error in general (docs/errors.md); each instance's ``fix`` is specific."""
    variants: ClassVar[Mapping[str, Variant]] = {
        "not_implemented": ("a command or option this version does not have yet", "see 'agentcmd --help'", 2),
        "app_error": ("the app server (or the engine) answered an error without a JSON body",
                      "check that the URL points at agentcmd's app server / engine"),
        "workflow_load_errors": ("'agentcmd workflows list' found workflow files that do not load",
                                 "follow each 'fix:' line it prints (docs/workflows.md, 'Load errors')"),
        "run_failed": ("'agentcmd workflows run --wait' or 'agentcmd runs watch' saw the run end Failed or "
                       "Cancelled", "see 'agentcmd runs show RUN_ID'"),
        "wait_timeout": ("'agentcmd workflows run --wait' or 'runs watch --timeout' gave up waiting; the run keeps "
                         "running", "follow it with 'agentcmd runs watch RUN_ID', or wait longer"),
    }
    """Codes some raise sites give an instance of this very class: code -> (what it means, what to do[, exit code])."""

    def __init__(
        self,
        what: str,
        fix: str | None = None,
        *,
        code: str | None = None,
        exit_code: int | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(what)
        self.what = what
        self.fix = fix
        self.details = details
        if code is not None:
            self.code = code
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.what if not self.fix else f"{self.what} ({self.fix})"

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.what, "code": self.code, "hint": self.fix or ""}
        if self.details is not None:
            body["details"] = self.details
        return body


class ConfigError(AgentcmdError):
    """The settings, a key, the config file or NODE_ENV are unusable."""

    code = "config_error"
    exit_code = 2
    http_status = 400
    fix_hint = "correct the setting the message names (docs/settings.md); 'agentcmd config --show' shows them all"


class InvalidSigningKeyError(ConfigError):
    """A signing key that is empty, not (``signkey-<env>-`` prefixed) hex, or too weak to protect anything."""

    code = "invalid_signing_key"
    fix_hint = "run 'agentcmd install' (or 'agentcmd install --rotate-keys') to generate a good key"


class StoreError(AgentcmdError):
    """The engine's SQLite state cannot be read or written."""

    code = "store_error"
    exit_code = 3
    http_status = 503
    fix_hint = "see the engine's log; check the data directory (AGENTCMD_DATA_DIR) and its disk"


class DatabaseLockedError(StoreError):
    """Another process holds the engine's database (two engines on one data directory)."""

    code = "database_locked"
    fix_hint = "stop the other engine, or give this one its own data directory (AGENTCMD_DATA_DIR)"


class DatabaseCorruptError(StoreError):
    """The engine's database file is not a readable SQLite database."""

    code = "database_corrupt"
    fix_hint = "restore the data directory from a backup, or move the file away to start empty"


class DatabaseVersionError(StoreError):
    """The database was written by a newer agentcmd than this one."""

    code = "database_version"
    fix_hint = "upgrade agentcmd, or point this one at another data directory (AGENTCMD_DATA_DIR)"


class DatabaseUnwritableError(StoreError):
    """The disk is full, the file or its filesystem is read-only, or writes fail with I/O errors.

    Unlike the other store errors this one is expected to pass: the engine
    keeps serving what it has, answers 503 to what needs a write, and
    carries on by itself once a write succeeds again.
    """

    code = "database_unwritable"
    fix_hint = "free disk space or make the data directory writable; the engine resumes by itself"


class ProtocolError(AgentcmdError):
    """An SDK app or the engine answered something that cannot be parsed."""

    code = "protocol_error"
    http_status = 502
    fix_hint = "check that the URL points at the right server, and see its log"


class AuthError(AgentcmdError):
    """A wrong event key, a bad signature or a missing or wrong bearer."""

    code = "unauthorized"
    exit_code = 2
    http_status = 401
    fix_hint = "use the keys the server runs with (INNGEST_EVENT_KEY / INNGEST_SIGNING_KEY; docs/security.md)"


class NotFoundError(AgentcmdError):
    """An unknown run, event, function or workflow."""

    code = "not_found"
    exit_code = 1
    http_status = 404
    fix_hint = "check the id ('agentcmd runs list', 'agentcmd workflows list', 'agentcmd functions list')"


class InputError(AgentcmdError):
    """Bad input: malformed JSON, or input that fails its schema."""

    code = "invalid_input"
    exit_code = 2
    http_status = 422
    fix_hint = "correct the input as the message (and its 'details') says"
    variants: ClassVar[Mapping[str, Variant]] = {
        "missing_signing_key": ("'agentcmd worker' in production mode with no signing key configured",
                                "set INNGEST_SIGNING_KEY to the engine's signing key, or use --dev with a dev engine"),
        "no_workflows": ("'agentcmd worker' found no workflow to serve in the project",
                         "add a file to .agentcmd/workflows, or pass --project"),
    }


class UnavailableError(AgentcmdError):
    """A feature, a program or a server that is not there (not running, not reachable, not installed)."""

    code = "unavailable"
    exit_code = 2
    http_status = 503
    fix_hint = "start or install what the message names, or point agentcmd at where it runs"
    variants: ClassVar[Mapping[str, Variant]] = {
        "engine_unreachable": ("'--engine external': the engine at --engine-url does not answer GET /health; "
                               "'agentcmd worker': the engine at --engine-url cannot be reached",
                               "start that engine first, check --engine-url, or use '--engine embedded'"),
        "no_connect_gateway": ("'agentcmd worker': the engine offers no connect gateway (POST /v0/connect/start "
                               "answered 404, or 503: its gateway is off or its port was taken)",
                               "start the engine with connect on, or use '--worker-mode http'"),
        "connect_failed": ("'agentcmd worker': the connection to the engine ended and could not be opened again",
                           "check that the engine runs and its gateway port is reachable, then start the worker"),
        "no_worker": ("worker mode connect: a run was started for a workflow no connected worker serves",
                      "start 'agentcmd worker' (agentcmd dev|start run one), or wait for it to reconnect"),
        "engine_not_found": ("'--engine inngest-cli' but neither 'inngest' nor 'npx' is on PATH",
                             "install inngest-cli, or use '--engine embedded'"),
        "app_unreachable": ("the CLI cannot reach the app server (or the engine); also a run's failure output "
                            "when the engine could not reach the app for longer than its wait limit",
                            "start it ('agentcmd dev' / 'agentcmd start'), or set PORT / AGENTCMD_ENGINE_URL"),
        "sync_failed": ("the engine refused or did not take the app's sync (raised by the app server as a 503, "
                        "and by 'agentcmd start'/'dev' at startup, exit 1)",
                        "fix what the message names (a workflow's configuration, or the keys both use); "
                        "see the engine's log"),
    }


class SupervisorError(AgentcmdError):
    """'agentcmd start' / 'agentcmd dev' could not run the engine and the app server."""

    code = "supervisor_error"
    exit_code = 1
    fix_hint = "read the engine's and the app server's output above the message"
    variants: ClassVar[Mapping[str, Variant]] = {
        "spawn_failed": ("a child program (the engine or the app server) could not be started",
                         "check that the program exists and is executable (AGENTCMD_ENGINE_COMMAND)", 2),
        "startup_timeout": ("a child did not answer its health check in time; it was stopped",
                            "read its output; if it is only slow, raise --startup-timeout"),
    }


class PortInUseError(SupervisorError):
    """The port a server should listen on is taken by another process."""

    code = "port_in_use"
    exit_code = 2
    fix_hint = "stop the other process or choose another port (--port / --engine-port)"


class ChildExitedError(SupervisorError):
    """The engine or the app server exited while agentcmd was running it."""

    code = "child_exited"
    fix_hint = "read its output above the message; fix what it says and start again"


class WorkflowDefinitionError(AgentcmdError):
    """A ``define_workflow`` call that cannot work (bad id, phases, trigger, schema...)."""

    code = "invalid_workflow"
    exit_code = 2
    http_status = 400
    fix_hint = "correct the define_workflow arguments (docs/workflows.md)"


class StepFailedError(AgentcmdError):
    """A workflow step's command failed; raised inside the SDK step, so the workflow's retry policy applies.

    The engine records the class name and the message as the step's error;
    when retries are exhausted the workflow body gets ``inngest.StepError``.
    """

    code = "step_failed"
    fix_hint = "read the step's error in 'agentcmd runs show RUN_ID' or the dashboard"
