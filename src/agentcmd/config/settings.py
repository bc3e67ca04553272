"""agentcmd's settings: one pydantic-settings model, four layers.

Layers, highest first: CLI flags (passed as ``overrides``), environment
variables, ``$AGENTCMD_HOME/config.json``, defaults. The Inngest variables
(``INNGEST_EVENT_KEY``, ``INNGEST_SIGNING_KEY``, ``INNGEST_DEV_MODE``,
``INNGEST_PORT``) and ``PORT``/``NODE_ENV`` are read under their usual
names so the same environment works with the real ``inngest`` binary.
Everything else is ``AGENTCMD_<FIELD>``.

``SETTINGS_DOC`` is the single list of settings with their env vars; the
docs test checks docs/settings.md against it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from agentcmd.config.keys import mask, validate_event_key, validate_signing_key
from agentcmd.config.notifications import NotificationSettings, parse_notifications
from agentcmd.config.paths import config_path, home_dir
from agentcmd.config.sources import read_config_file
from agentcmd.config.webhooks import WebhookSettings
from agentcmd.config.workspaces import WorkspacesSettings
from agentcmd.errors import AgentcmdError, ConfigError

EngineKind = Literal["embedded", "inngest-cli", "external"]
WorkerMode = Literal["http", "connect"]   # how agentcmd dev|start serve the workflows (docs/running.md "Workers")
# The embedded engine's per-call timeout of SDK requests. One call runs one step, and an
# agent step can take many minutes, so the default is the Go server's 2 h request limit
# (the same value as agentcmd.engine.driver.DEFAULT_TIMEOUT_S, not imported here so that
# settings do not pull in the engine). The cap keeps leases (timeout + 60 s) sane.
ENGINE_CALL_TIMEOUT_DEFAULT_S = 7200.0
ENGINE_CALL_TIMEOUT_MAX_S = 7 * 24 * 3600.0
CALL_TIMEOUT_SOURCES = "AGENTCMD_ENGINE_CALL_TIMEOUT or engine_call_timeout in config.json"
# How long a run may wait for an app that does not answer at all (refused, reset, shutting
# down) before it fails (docs/engine.md "Interrupted calls"); the same value as
# agentcmd.engine.executor.DEFAULT_APP_WAIT_MS. Bounded like the call timeout.
ENGINE_APP_WAIT_TIMEOUT_DEFAULT_S = 900.0
ENGINE_APP_WAIT_TIMEOUT_MAX_S = 7 * 24 * 3600.0
APP_WAIT_SOURCES = "AGENTCMD_ENGINE_APP_WAIT_TIMEOUT or engine_app_wait_timeout in config.json"
LogFormat = Literal["auto", "plain", "rich", "json"]


class ModelPrice(BaseModel):
    """USD per million tokens of one model (the ``prices`` setting; agentcmd.workflows.costs)."""

    model_config = {"extra": "forbid"}

    input_per_mtok: float | None = Field(None, ge=0, allow_inf_nan=False)
    output_per_mtok: float | None = Field(None, ge=0, allow_inf_nan=False)
    cached_per_mtok: float | None = Field(None, ge=0, allow_inf_nan=False)


class StreamSettings(BaseModel):
    """How much of each run's streamed output is kept (agentcmd.workflows.streamlog)."""

    model_config = {"extra": "forbid"}

    step_cap_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024, le=1024 ** 3)
    run_cap_bytes: int = Field(default=32 * 1024 * 1024, ge=64 * 1024, le=16 * 1024 ** 3)


class AgentConfig(BaseModel):
    """Where to find one agent CLI (claude, codex, gemini) and extra arguments."""

    path: str | None = None
    args: list[str] = Field(default_factory=list)


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """Every setting of agentcmd. Keys are ``SecretStr``: reprs never show them."""

    model_config = SettingsConfigDict(
        env_prefix="AGENTCMD_",
        env_nested_delimiter="__",
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
    )

    # The spec's WorkflowConfigSchema
    event_key: SecretStr | None = Field(
        None, validation_alias=_env("INNGEST_EVENT_KEY", "AGENTCMD_EVENT_KEY", "event_key")
    )
    signing_key: SecretStr | None = Field(
        None, validation_alias=_env("INNGEST_SIGNING_KEY", "AGENTCMD_SIGNING_KEY", "signing_key")
    )
    dev_mode: bool | None = Field(None, validation_alias=_env("INNGEST_DEV_MODE", "AGENTCMD_DEV_MODE", "dev_mode"))
    node_env: str | None = Field(None, validation_alias=_env("NODE_ENV", "node_env"))

    # Network
    host: str = Field("127.0.0.1", validation_alias=_env("AGENTCMD_HOST", "host"))
    port: int = Field(4100, ge=1, le=65535, validation_alias=_env("PORT", "AGENTCMD_PORT", "port"))
    engine_port: int = Field(
        8288, ge=1, le=65535, validation_alias=_env("INNGEST_PORT", "AGENTCMD_ENGINE_PORT", "engine_port")
    )
    allowed_hosts: str = Field("", validation_alias=_env("AGENTCMD_ALLOWED_HOSTS", "allowed_hosts"))
    engine: EngineKind = Field("embedded", validation_alias=_env("AGENTCMD_ENGINE", "engine"))
    engine_url: str | None = Field(None, validation_alias=_env("AGENTCMD_ENGINE_URL", "engine_url"))
    worker_mode: WorkerMode = Field("http", validation_alias=_env("AGENTCMD_WORKER_MODE", "worker_mode"))
    engine_call_timeout: float = Field(
        ENGINE_CALL_TIMEOUT_DEFAULT_S,
        validation_alias=_env("AGENTCMD_ENGINE_CALL_TIMEOUT", "engine_call_timeout"),
    )
    engine_app_wait_timeout: float = Field(
        ENGINE_APP_WAIT_TIMEOUT_DEFAULT_S,
        validation_alias=_env("AGENTCMD_ENGINE_APP_WAIT_TIMEOUT", "engine_app_wait_timeout"),
    )
    engine_retention: str = Field("30d", validation_alias=_env("AGENTCMD_ENGINE_RETENTION", "engine_retention"))
    engine_connect: bool = Field(True, validation_alias=_env("AGENTCMD_ENGINE_CONNECT", "engine_connect"))
    engine_connect_port: int | None = Field(
        None, ge=0, le=65535, validation_alias=_env("AGENTCMD_ENGINE_CONNECT_PORT", "engine_connect_port")
    )

    # Files
    home: Path = Field(default_factory=home_dir, validation_alias=_env("AGENTCMD_HOME", "home"))
    data_dir: Path | None = Field(None, validation_alias=_env("AGENTCMD_DATA_DIR", "data_dir"))
    sqlite_dir: Path | None = Field(None, validation_alias=_env("AGENTCMD_SQLITE_DIR", "sqlite_dir"))
    project_dir: Path | None = Field(None, validation_alias=_env("AGENTCMD_PROJECT_DIR", "project_dir"))
    streams: StreamSettings = Field(default_factory=lambda: StreamSettings(),
                                    validation_alias=_env("AGENTCMD_STREAMS", "streams"))
    workspaces: WorkspacesSettings = Field(default_factory=lambda: WorkspacesSettings(),
                                           validation_alias=_env("AGENTCMD_WORKSPACES", "workspaces"))

    # Output and agents
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", validation_alias=_env("AGENTCMD_LOG_LEVEL", "log_level")
    )
    log_format: LogFormat = Field("auto", validation_alias=_env("AGENTCMD_LOG_FORMAT", "log_format"))
    dashboard_token: SecretStr | None = Field(
        None, validation_alias=_env("AGENTCMD_DASHBOARD_TOKEN", "dashboard_token")
    )
    agents: dict[str, AgentConfig] = Field(default_factory=dict, validation_alias=_env("AGENTCMD_AGENTS", "agents"))
    step_sandbox: bool = Field(True, validation_alias=_env("AGENTCMD_STEP_SANDBOX", "step_sandbox"))
    prices: Annotated[dict[str, ModelPrice], NoDecode] = Field(
        default_factory=dict, validation_alias=_env("AGENTCMD_PRICES", "prices"))

    # Web logins behind a reverse proxy (agentcmd.webauth.options)
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("AGENTCMD_TRUSTED_PROXIES", "trusted_proxies")
    )
    public_url: str | None = Field(None, validation_alias=_env("AGENTCMD_PUBLIC_URL", "public_url"))
    webhooks: WebhookSettings = Field(default_factory=lambda: WebhookSettings(),
                                      validation_alias=_env("AGENTCMD_WEBHOOKS", "webhooks"))

    # Who hears of run ends and waits (agentcmd.config.notifications, agentcmd.server.notify)
    notifications: Annotated[NotificationSettings, NoDecode] = Field(
        default_factory=lambda: NotificationSettings(),
        validation_alias=_env("AGENTCMD_NOTIFICATIONS", "notifications"))

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _check_trusted_proxies(cls, v: Any) -> list[str]:
        from agentcmd.webauth.proxy import parse_networks

        items = v.split(",") if isinstance(v, str) else list(v or [])
        parse_networks([str(item) for item in items])  # raises ConfigError naming the bad entry
        return [str(item).strip() for item in items if str(item).strip()]

    @field_validator("prices", mode="before")
    @classmethod
    def _parse_prices(cls, v: Any) -> Any:
        """The environment gives JSON text (empty means none); a bad one is a ConfigError, not a traceback."""
        if not isinstance(v, str):
            return v
        if not v.strip():
            return {}
        import json

        try:
            return json.loads(v)
        except ValueError as exc:
            raise ConfigError(f"prices is not valid JSON: {exc}",
                              'e.g. AGENTCMD_PRICES=\'{"gpt-5-codex": {"input_per_mtok": 1.25, '
                              '"output_per_mtok": 10}}\'') from None

    @field_validator("notifications", mode="before")
    @classmethod
    def _parse_notifications(cls, v: Any) -> Any:
        return parse_notifications(v)

    @field_validator("public_url", mode="before")
    @classmethod
    def _check_public_url(cls, v: Any) -> str | None:
        from agentcmd.webauth.proxy import check_public_url

        return check_public_url(None if v is None else str(v))

    @field_validator("signing_key")
    @classmethod
    def _check_signing_key(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None or not v.get_secret_value().strip():
            return None
        return SecretStr(
            validate_signing_key(
                v.get_secret_value(), "signing key (INNGEST_SIGNING_KEY, --signing-key or config.json)"
            )
        )

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _join_allowed_hosts(cls, v: Any) -> Any:
        """config.json may give a list; the environment gives a comma-separated string."""
        return ",".join(str(x) for x in v) if isinstance(v, list | tuple) else v

    @field_validator("engine_call_timeout", mode="before")
    @classmethod
    def _check_call_timeout(cls, v: Any) -> float:
        return check_call_timeout(v, CALL_TIMEOUT_SOURCES)

    @field_validator("engine_app_wait_timeout", mode="before")
    @classmethod
    def _check_app_wait_timeout(cls, v: Any) -> float:
        return check_app_wait_timeout(v, APP_WAIT_SOURCES)

    @field_validator("engine_retention", mode="before")
    @classmethod
    def _check_retention(cls, v: Any) -> str:
        """``30d``, ``12h``, ``3600``, ``0``/``forever`` (engine/retentionage.py), kept as people write it."""
        from agentcmd.engine.retentionage import format_retention, parse_retention

        return format_retention(parse_retention(v))

    @field_validator("event_key")
    @classmethod
    def _check_event_key(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None or not v.get_secret_value().strip():
            return None
        return SecretStr(validate_event_key(v.get_secret_value(),
                                            "event key (INNGEST_EVENT_KEY, --event-key or config.json)"))

    # Derived paths ---------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.home / "config.json"

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir or self.home / "data"

    @property
    def resolved_sqlite_dir(self) -> Path:
        return self.sqlite_dir or self.resolved_data_dir / "engine"

    @property
    def resolved_project_dir(self) -> Path:
        return (self.project_dir or Path.cwd()).resolve()

    def secret(self, name: Literal["event_key", "signing_key", "dashboard_token"]) -> str | None:
        value: SecretStr | None = getattr(self, name)
        return value.get_secret_value() if value is not None else None

    def public_view(self) -> dict[str, Any]:
        """Every setting with secrets masked: what ``agentcmd config --show`` prints."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                out[name] = mask(value.get_secret_value())
            elif name in ("event_key", "signing_key", "dashboard_token"):
                out[name] = mask(None)
            elif isinstance(value, Path):
                out[name] = str(value)
            elif isinstance(value, WebhookSettings):
                out[name] = value.model_dump(mode="json")   # SecretStr dumps as '**********'
            elif isinstance(value, NotificationSettings):
                out[name] = value.public_view()   # target URLs are secrets: hosts only
            elif isinstance(value, dict):
                out[name] = {k: (v.model_dump() if isinstance(v, BaseModel) else v) for k, v in value.items()}
            elif isinstance(value, BaseModel):   # streams, workspaces: 'config get' prints them as JSON
                out[name] = value.model_dump()
            else:
                out[name] = value
        out["data_dir"] = str(self.resolved_data_dir)
        out["sqlite_dir"] = str(self.resolved_sqlite_dir)
        out["config_file"] = str(self.config_file)
        return out

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _ConfigFileSource(settings_cls))


def _seconds(value: Any, source: str, what: str, maximum: float, fix: str) -> float:
    """``value`` as seconds in (0, maximum], or ``ConfigError`` naming ``source`` (a flag or env var)."""
    try:
        seconds = math.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not 0 < seconds <= maximum:   # also refuses nan and inf
        raise ConfigError(
            f"{what} ({source}) must be a number of seconds above 0 and at most {maximum:g} (7 days), "
            f"got {value!r}", fix)
    return seconds


def check_call_timeout(value: Any, source: str) -> float:
    """The engine's SDK call timeout in seconds, or ``ConfigError`` naming ``source`` (a flag or env var)."""
    return _seconds(value, source, "engine call timeout", ENGINE_CALL_TIMEOUT_MAX_S,
                    f"give the longest time one SDK call (one step) may take, e.g. 600; "
                    f"the default is {ENGINE_CALL_TIMEOUT_DEFAULT_S:g} (2 h)")


def check_app_wait_timeout(value: Any, source: str) -> float:
    """How long a run may wait for an unreachable app, in seconds, or ``ConfigError`` naming ``source``."""
    return _seconds(value, source, "engine app wait timeout", ENGINE_APP_WAIT_TIMEOUT_MAX_S,
                    f"give the longest time a run may wait for its app to answer again (a restart, a deploy), "
                    f"e.g. 300; the default is {ENGINE_APP_WAIT_TIMEOUT_DEFAULT_S:g} (15 min)")


class _ConfigFileSource(PydanticBaseSettingsSource):
    """The lowest layer above defaults: ``$AGENTCMD_HOME/config.json``."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self._data = read_config_file(config_path())

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k in Settings.model_fields and v is not None}


# name -> (env vars, description); docs/settings.md must mention each.
SETTINGS_DOC: dict[str, tuple[tuple[str, ...], str]] = {
    "event_key": (("INNGEST_EVENT_KEY", "AGENTCMD_EVENT_KEY"), "key for sending events in production"),
    "signing_key": (("INNGEST_SIGNING_KEY", "AGENTCMD_SIGNING_KEY"), "signs engine <-> SDK traffic in production"),
    "dev_mode": (("INNGEST_DEV_MODE", "AGENTCMD_DEV_MODE"), "force dev mode (true) or production (false)"),
    "node_env": (("NODE_ENV",), "production / development picks the mode"),
    "host": (("AGENTCMD_HOST",), "interface to bind"),
    "port": (("PORT", "AGENTCMD_PORT"), "app server port"),
    "engine_port": (("INNGEST_PORT", "AGENTCMD_ENGINE_PORT"), "engine port"),
    "allowed_hosts": (("AGENTCMD_ALLOWED_HOSTS",), "extra Host names both servers answer to (comma separated)"),
    "engine": (("AGENTCMD_ENGINE",), "embedded, inngest-cli or external"),
    "engine_url": (("AGENTCMD_ENGINE_URL",), "URL of an external engine"),
    "worker_mode": (("AGENTCMD_WORKER_MODE",),
                    "http (the engine calls the app server) or connect (a worker dials the engine)"),
    "engine_call_timeout": (("AGENTCMD_ENGINE_CALL_TIMEOUT",), "seconds one engine -> SDK call may take"),
    "engine_app_wait_timeout": (("AGENTCMD_ENGINE_APP_WAIT_TIMEOUT",),
                                "seconds a run may wait for an app that does not answer"),
    "engine_retention": (("AGENTCMD_ENGINE_RETENTION",),
                         "how long the engine keeps finished runs (30d; 0 or forever keeps them all)"),
    "engine_connect": (("AGENTCMD_ENGINE_CONNECT",), "serve the connect gateway (connect workers); false turns it off"),
    "engine_connect_port": (("AGENTCMD_ENGINE_CONNECT_PORT",),
                            "the connect gateway's port (default: the engine's port + 1)"),
    "home": (("AGENTCMD_HOME",), "home directory"),
    "data_dir": (("AGENTCMD_DATA_DIR",), "data directory"),
    "sqlite_dir": (("AGENTCMD_SQLITE_DIR",), "engine database directory"),
    "project_dir": (("AGENTCMD_PROJECT_DIR",), "project holding .agentcmd/workflows"),
    "streams": (("AGENTCMD_STREAMS__STEP_CAP_BYTES", "AGENTCMD_STREAMS__RUN_CAP_BYTES"),
                "bytes of streamed output kept per step and per run"),
    "workspaces": (("AGENTCMD_WORKSPACES__PRUNE_AFTER", "AGENTCMD_WORKSPACES__CHECK_EVERY"),
                   "the app server removes finished runs' worktrees, branches and artifacts after this long"),
    "log_level": (("AGENTCMD_LOG_LEVEL",), "log level"),
    "log_format": (("AGENTCMD_LOG_FORMAT",), "log format"),
    "dashboard_token": (("AGENTCMD_DASHBOARD_TOKEN",), "dashboard login token"),
    "agents": (("AGENTCMD_AGENTS__<NAME>__PATH",), "agent CLI paths"),
    "trusted_proxies": (("AGENTCMD_TRUSTED_PROXIES",), "reverse proxies whose X-Forwarded-For/-Proto are believed"),
    "public_url": (("AGENTCMD_PUBLIC_URL",), "the https URL browsers use: session cookies are Secure"),
    "step_sandbox": (("AGENTCMD_STEP_SANDBOX",), "Landlock: step processes cannot read the config file"),
    "prices": (("AGENTCMD_PRICES",), "USD per million tokens per model, over the built-in price table"),
    "webhooks": (("AGENTCMD_WEBHOOKS__GITHUB__SECRET", "AGENTCMD_WEBHOOKS__LINEAR__SECRET",
                  "AGENTCMD_WEBHOOKS__GENERIC__<NAME>__SECRET", "AGENTCMD_WEBHOOKS__MAX_BODY_BYTES"),
                 "webhook routes of the app server and their HMAC secrets"),
    "notifications": (("AGENTCMD_NOTIFICATIONS",), "webhook, Slack and desktop notifications of run ends and waits"),
}


def _field_env_name(loc: tuple[Any, ...]) -> str:
    name = str(loc[0]) if loc else "?"
    envs = SETTINGS_DOC.get(name, ((),))[0]
    return name if not envs else f"{name} ({'/'.join(envs)})"


def load_settings(**overrides: Any) -> Settings:
    """Build settings from all layers; raise ``ConfigError`` naming the bad field.

    ``overrides`` are CLI flags; ``None`` values mean "flag not given".
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except AgentcmdError:
        raise
    except ValidationError as exc:
        err = exc.errors()[0]
        ctx_err = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_err, AgentcmdError):
            raise type(ctx_err)(f"{_field_env_name(err['loc'])}: {ctx_err.what}", ctx_err.fix) from None
        source = "a flag, the environment or " + str(config_path())
        raise ConfigError(
            f"invalid setting {_field_env_name(err['loc'])}: {err['msg']}", f"fix it in {source}"
        ) from None


def environ_snapshot() -> dict[str, str]:
    return dict(os.environ)
