"""``EngineConfig``: what ``agentcmd engine start|dev`` (and tests) decide about one engine.

A module of its own so that the parts that only read settings (the HTTP edge
policy, the command facade) need not import ``engine/app.py``, which wires
everything together and so sits above them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from agentcmd.engine.driver import DEFAULT_TIMEOUT_S
from agentcmd.engine.executor import DEFAULT_APP_WAIT_MS
from agentcmd.engine.retentionage import DEFAULT_RETENTION_S
from agentcmd.webauth.options import WebOptions


@dataclass
class EngineConfig:
    mode: str = "dev"                       # dev | production
    db_path: Path | None = None             # None: in memory
    event_keys: list[str] = field(default_factory=list)
    signing_key: str | None = None
    sdk_urls: list[str] = field(default_factory=list)
    poll_interval: float = 5.0
    discovery: bool = False
    retry_interval_s: float | None = None   # flat retry backoff instead of Go's table
    concurrency: int = 64
    call_timeout_s: float = DEFAULT_TIMEOUT_S
    app_wait_timeout_s: float = DEFAULT_APP_WAIT_MS / 1000   # how long a run waits for an unreachable app
    sync_wait_s: float = 5.0                # how long /health waits for -u apps at start
    passive_sync: bool = False              # --passive-sync: the -u apps register themselves (Syncer)
    grace_s: float = 10.0
    retention_s: float | None = DEFAULT_RETENTION_S   # finished runs older than this are pruned; None: never
    host: str = "127.0.0.1"                 # the bind host: beyond loopback, production's dashboard needs a login
    dashboard_auth: bool = False            # --dashboard-auth: log in to the dashboard even on loopback
    dashboard_token: str | None = field(default=None, repr=False)
    web: WebOptions = field(default_factory=WebOptions)  # trusted proxies, public URL, revoked sessions file
    connect: bool = True                    # serve the connect gateway (engine/connect); --no-connect turns it off
    connect_port: int | None = None         # the gateway's port; None: the engine's port + 1, like the dev server
    allowed_hosts: list[str] = field(default_factory=list)  # Host names beyond loopback + bind (httpedge.hosts)

    @property
    def production(self) -> bool:
        return self.mode == "production"
