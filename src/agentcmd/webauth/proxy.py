"""Who is the client, and did it come over TLS? Forwarded headers only from trusted proxies.

``X-Forwarded-For`` and ``X-Forwarded-Proto`` are just headers: any client
can send them. They are believed only when the direct peer (the TCP
connection's address) is one of the configured ``trusted_proxies``
(``AGENTCMD_TRUSTED_PROXIES``: addresses or networks, e.g.
``127.0.0.1,10.0.0.0/8``). With none configured (the default) the client is
the peer and the scheme is the connection's own, whatever the headers say.
Both servers run uvicorn with ``proxy_headers=False`` so that uvicorn does
not rewrite the peer from these headers before this module sees it.

The client address is also the failed-login limiter's key; an IPv6 client
is keyed by its /64 network, since one host usually holds a whole /64 and
could otherwise rotate through addresses for free.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from agentcmd.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
SETTING = "trusted_proxies (AGENTCMD_TRUSTED_PROXIES)"


def parse_address(value: str) -> Address | None:
    """An IP address (IPv4-mapped IPv6 as IPv4, ``[::1]`` and zone ids accepted), or None."""
    text = value.strip()
    if text.startswith("[") and "]" in text:
        text = text[1:text.index("]")]
    text = text.split("%", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_networks(values: Iterable[str] | str | None) -> tuple[Network, ...]:
    """The trusted proxies from a setting: a list or a comma-separated string; raises ``ConfigError``."""
    if values is None:
        return ()
    items = values.split(",") if isinstance(values, str) else list(values)
    networks: list[Network] = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ConfigError(
                f"{SETTING}: {text!r} is not an IP address or network",
                "list the addresses of your reverse proxies, comma-separated, e.g. '127.0.0.1' or "
                "'10.0.0.5,192.168.1.0/24'; leave it empty when nothing proxies the servers") from None
    return tuple(networks)


def limiter_key(address: str) -> str:
    """The rate-limit key of a client address: the address, or its /64 for IPv6."""
    parsed = parse_address(address)
    if parsed is None:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


def _header_values(headers: Iterable[tuple[str, str]], name: str) -> list[str]:
    """Every comma-separated value of every ``name`` header, in order."""
    out: list[str] = []
    for key, value in headers:
        if key.lower() == name:
            out.extend(part.strip() for part in value.split(","))
    return out


@dataclass(frozen=True)
class TrustedProxies:
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, values: Iterable[str] | str | None) -> TrustedProxies:
        return cls(parse_networks(values))

    def trusts(self, peer: str | None) -> bool:
        address = parse_address(peer) if peer else None
        return address is not None and any(address in net for net in self.networks)

    def client(self, peer: str | None, headers: Iterable[tuple[str, str]]) -> str:
        """The client's address: the peer, or, from a trusted peer, the nearest untrusted X-Forwarded-For hop.

        The list is read from the right (the hop our proxy added) and every
        trusted proxy is skipped; anything left of the first untrusted hop
        was written by that client and is not believed. A malformed hop ends
        the walk at the last trusted address, never at the forged value.
        """
        if peer is None:
            return "unknown"
        if not self.trusts(peer):
            return peer
        current = peer
        for hop in reversed(_header_values(headers, "x-forwarded-for")):
            address = parse_address(hop)
            if address is None:
                return current
            current = str(address)
            if not self.trusts(current):
                return current
        return current

    def forwarded_https(self, peer: str | None, headers: Iterable[tuple[str, str]]) -> bool:
        """Did a trusted proxy say the browser used https (its ``X-Forwarded-Proto``, the last value)?"""
        if not self.trusts(peer):
            return False
        values = _header_values(headers, "x-forwarded-proto")
        return bool(values) and values[-1].lower() == "https"


def check_public_url(value: str | None) -> str | None:
    """``public_url`` must be an absolute http(s) URL; returns it without a trailing slash."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"public_url (AGENTCMD_PUBLIC_URL): {text!r} is not an http(s) URL",
                          "give the address browsers use, e.g. https://agentcmd.example.com, or leave it unset")
    return text.rstrip("/")
