"""Is a port free, and if not, who holds it?

Checked before any child starts, so a busy port is one clear error instead
of a half-started pair. The owner is found the way ``ss -p`` does it on
Linux: the listening socket's inode from ``/proc/net/tcp{,6}``, then the
process whose ``/proc/<pid>/fd`` links to ``socket:[inode]``. Only our own
processes are readable; for others we can still name the port.
"""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from agentcmd.errors import PortInUseError

_LISTEN = "0A"


@dataclass(frozen=True)
class PortOwner:
    pid: int
    command: str

    def describe(self) -> str:
        return f"pid {self.pid} ({self.command})" if self.command else f"pid {self.pid}"


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could bind ``host:port`` now (with SO_REUSEADDR, as uvicorn does)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def listening_inodes(port: int, proc: Path = Path("/proc")) -> set[str]:
    """Inodes of TCP sockets listening on ``port`` (any address), from /proc/net."""
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN:
                continue
            _, _, hex_port = fields[1].rpartition(":")
            if int(hex_port, 16) == port:
                inodes.add(fields[9])
    return inodes


def port_owner(port: int, proc: Path = Path("/proc")) -> PortOwner | None:
    """The process listening on ``port``, when the OS lets us see it."""
    wanted = {f"socket:[{inode}]" for inode in listening_inodes(port, proc)}
    if not wanted:
        return None
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue  # another user's process, or gone
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target in wanted:
                return PortOwner(int(entry.name), _command_line(entry))
    return None


def _command_line(entry: Path, limit: int = 100) -> str:
    try:
        raw = (entry / "cmdline").read_bytes()
    except OSError:
        return ""
    text = " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def next_free_port(host: str, port: int, tries: int = 20) -> int | None:
    """The first free port after ``port``: a concrete suggestion for the fix line."""
    for candidate in range(port + 1, min(port + 1 + tries, 65536)):
        if port_is_free(host, candidate):
            return candidate
    return None


def ensure_port_free(host: str, port: int, *, role: str, flag: str) -> None:
    """Raise ``PortInUseError`` naming the holder of ``port`` and the flag to change it."""
    if port_is_free(host, port):
        return
    owner = port_owner(port)
    holder = f"in use by {owner.describe()}" if owner else "in use by another process"
    alternative = next_free_port(host, port)
    pick = f"'{flag} {alternative}'" if alternative else f"another {flag}"
    stop = f"stop pid {owner.pid}" if owner else "stop the process using it"
    raise PortInUseError(
        f"port {port} on {host} (the {role} port) is already {holder}",
        f"{stop}, or choose another port with {pick}",
        details={"port": port, "role": role, "pid": owner.pid if owner else None},
    )
