"""The ``Host`` allow-list: which names a request may address this server by.

A browser sends the name from the page's URL as ``Host``. DNS rebinding
points an attacker's name (``rebind.example``) at 127.0.0.1 after the page
loaded, so the page becomes "same-origin" with a loopback server and can
read its answers (CSRF tokens included). Refusing every ``Host`` the server
does not know stops that, whatever ``Sec-Fetch-Site`` says.

Allowed, with any port: the loopback names (``localhost``, ``127.0.0.1``,
``[::1]``, and ``0.0.0.0`` / ``[::]``, which as a destination reach this
machine too), the bind host, the hosts of URLs the server is known to be
called at (the engine's configured app URL, the SDK's serve origin), and
the names given with ``--allowed-host`` / ``AGENTCMD_ALLOWED_HOSTS``. A
server bound to a wildcard (``0.0.0.0``, ``::``) also accepts IP literals:
rebinding needs a name, and an address in ``Host`` cannot be rebound.
``*`` turns the check off (behind a proxy that checks ``Host`` itself).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# 0.0.0.0 and :: as a destination reach this machine (clients such as the SDK's test suite use
# http://0.0.0.0:8288); they are addresses, so no page can rebind them.
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "ip6-localhost", "0.0.0.0", "::"})
WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::"})
_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_.-]{0,251}[a-z0-9_])?$")
ALLOWED_HOSTS_ENV = "AGENTCMD_ALLOWED_HOSTS"


def split_host(value: str) -> tuple[str, int | None] | None:
    """``name[:port]`` / ``[v6][:port]`` -> (lower-case name without brackets or trailing dot, port), or None."""
    value = value.strip().lower()
    port: str | None = None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1:]
        if rest:
            if not rest.startswith(":"):
                return None
            port = rest[1:]
        try:
            ipaddress.IPv6Address(name)
        except ValueError:
            return None
    else:
        if value.count(":") > 1:   # a bare IPv6 address: not a valid Host, but a valid --allowed-host
            try:
                return str(ipaddress.IPv6Address(value)), None
            except ValueError:
                return None
        name, _, port = value.partition(":") if ":" in value else (value, "", None)
        name = name.rstrip(".")
        if not _NAME.match(name):
            return None
    if port is not None:
        if not port.isdigit() or not 0 < int(port) < 65536:
            return None
        return name, int(port)
    return name, None


def is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def parse_allowed(values: Iterable[str]) -> list[str]:
    """Names from ``--allowed-host`` / ``AGENTCMD_ALLOWED_HOSTS`` (comma or space separated), lower-case."""
    out: list[str] = []
    for value in values:
        for item in re.split(r"[,\s]+", value.strip()):
            if not item:
                continue
            if item == "*":
                out.append("*")
                continue
            if "://" in item:
                item = urlsplit(item).netloc
            parsed = split_host(item)
            if parsed is None:
                from agentcmd.errors import ConfigError

                raise ConfigError(f"allowed host {item!r} is not a host name or address",
                                  "give names like 'agentcmd.example.com' or '192.168.1.5' "
                                  "(--allowed-host or AGENTCMD_ALLOWED_HOSTS, comma separated)")
            out.append(parsed[0])
    return out


def url_host(url: str | None) -> str | None:
    """The host name of ``url`` (None when there is none)."""
    if not url:
        return None
    if "://" not in url:
        url = "http://" + url
    try:
        return urlsplit(url).hostname or None
    except ValueError:
        return None


@dataclass(frozen=True)
class HostPolicy:
    """The names this server answers to; see the module docstring."""

    names: frozenset[str] = LOOPBACK_NAMES
    configured: frozenset[str] = field(default_factory=frozenset)   # explicitly added (also trusted Origins)
    ip_literals: bool = False
    any_host: bool = False

    @classmethod
    def build(cls, bind_host: str, extra: Iterable[str] = (), known_urls: Iterable[str | None] = ()) -> HostPolicy:
        configured = parse_allowed(extra)
        bind = bind_host.strip().lower().strip("[]")
        names = set(LOOPBACK_NAMES)
        if bind not in WILDCARD_BINDS:
            names.add(bind)
        for url in known_urls:
            host = url_host(url)
            if host:
                names.add(host.lower().strip("[]"))
        names.update(n for n in configured if n != "*")
        return cls(names=frozenset(names), configured=frozenset(n for n in configured if n != "*"),
                   ip_literals=bind in WILDCARD_BINDS, any_host="*" in configured)

    def allows(self, host_header: str | None) -> bool:
        if host_header is None:
            return False
        if self.any_host:
            return True
        parsed = split_host(host_header)
        if parsed is None:
            return False
        name = parsed[0]
        if name in self.names or (name.startswith("127.") and is_ip_literal(name)):
            return True
        return self.ip_literals and is_ip_literal(name)
