"""The one exception tree of agentcmd.

Every error a user can cause carries ``what`` went wrong and the ``fix``,
a stable snake_case ``code`` (for JSON APIs) and an ``exit_code`` (for the
CLI). Errors are converted only at the boundaries: the CLI prints
"error: what" / "fix: fix" and exits; the HTTP apps answer
``{"error", "code", "hint"}``. Nothing below a boundary prints.

    AgentcmdError
    ├── ConfigError                 bad settings, keys, config file, NODE_ENV
    │   └── InvalidSigningKeyError  a signing key that is not (prefixed) hex
    ├── StoreError                  the engine's SQLite state
    │   ├── DatabaseLockedError
    │   ├── DatabaseCorruptError
    │   └── DatabaseVersionError    written by a newer agentcmd
    ├── ProtocolError               an SDK answered something we cannot parse
    ├── AuthError                   wrong event key, bad signature, missing bearer
    ├── NotFoundError               unknown run, event, workflow
    ├── InputError                  bad user input (JSON, schema validation)
    ├── UnavailableError            a feature or a server that is not there
    └── SupervisorError             running the engine and app processes
        ├── PortInUseError
        └── ChildExitedError
"""

from __future__ import annotations

from typing import Any


class AgentcmdError(Exception):
    """Base class: a problem the user can understand and act on."""

    code: str = "agentcmd_error"
    exit_code: int = 1
    http_status: int = 500

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
    code = "config_error"
    exit_code = 2
    http_status = 400


class InvalidSigningKeyError(ConfigError):
    code = "invalid_signing_key"


class StoreError(AgentcmdError):
    code = "store_error"
    exit_code = 3
    http_status = 503


class DatabaseLockedError(StoreError):
    code = "database_locked"


class DatabaseCorruptError(StoreError):
    code = "database_corrupt"


class DatabaseVersionError(StoreError):
    code = "database_version"


class DatabaseUnwritableError(StoreError):
    """The disk is full, the file or its filesystem is read-only, or writes fail with I/O errors.

    Unlike the other store errors this one is expected to pass: the engine
    keeps serving what it has, answers 503 to what needs a write, and
    carries on by itself once a write succeeds again.
    """

    code = "database_unwritable"


class ProtocolError(AgentcmdError):
    code = "protocol_error"
    http_status = 502


class AuthError(AgentcmdError):
    code = "unauthorized"
    exit_code = 2
    http_status = 401


class NotFoundError(AgentcmdError):
    code = "not_found"
    exit_code = 1
    http_status = 404


class InputError(AgentcmdError):
    code = "invalid_input"
    exit_code = 2
    http_status = 422


class UnavailableError(AgentcmdError):
    code = "unavailable"
    exit_code = 2
    http_status = 503


class SupervisorError(AgentcmdError):
    code = "supervisor_error"
    exit_code = 1


class PortInUseError(SupervisorError):
    code = "port_in_use"
    exit_code = 2


class ChildExitedError(SupervisorError):
    code = "child_exited"
