"""The web login's deployment settings: trusted proxies, the public URL, where revocations are kept.

One small value built from the settings (``from_settings``) and handed to
``WebAuth.build`` by both servers, so the engine dashboard and the app's
workflow views read the same settings the same way. The default (nothing
configured, no file) is the safe one: no forwarded header is believed,
cookies are ``Secure`` only over a direct TLS connection, revocations last
for the server's lifetime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from agentcmd.webauth.proxy import TrustedProxies, check_public_url
from agentcmd.webauth.revocation import FILE_NAME

if TYPE_CHECKING:
    from agentcmd.config.settings import Settings


@dataclass(frozen=True)
class WebOptions:
    proxies: TrustedProxies = field(default_factory=TrustedProxies)
    public_url: str | None = None
    revocations_path: Path | None = None

    @property
    def public_https(self) -> bool:
        return self.public_url is not None and self.public_url.lower().startswith("https://")

    @classmethod
    def from_settings(cls, settings: Settings) -> WebOptions:
        return cls(TrustedProxies.parse(settings.trusted_proxies), check_public_url(settings.public_url),
                   settings.resolved_data_dir / FILE_NAME)
