"""Is a bind address reachable only from this machine?

The bind address decides, not the client's address: behind a reverse proxy
every request comes from 127.0.0.1, so trusting the peer address would open
a 0.0.0.0 engine to the world. Unknown host names count as remote (the safe
answer), except ``localhost``.
"""

from __future__ import annotations

import ipaddress


def is_loopback_host(host: str) -> bool:
    """True for ``127.0.0.0/8``, ``::1`` and ``localhost``; False for ``0.0.0.0``, ``::`` and names."""
    value = host.strip().lower()
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    if value in ("localhost", "localhost.", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(value).is_loopback
    except ValueError:
        return False
