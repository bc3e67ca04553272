"""Sessions ended by a logout: a bounded list of revoked session ids, optionally kept in a file.

Session cookies are signed, not stored (``session.py``), so a logout alone
would only ask the browser to forget the cookie; a copy of it would keep
working until it expires (12 h). Logging out therefore records the
session's id here, and ``WebAuth.session`` refuses a revoked id.

* Bounded: an entry is dropped when its session would have expired anyway,
  and at most ``max_entries`` are kept. When that many unexpired sessions
  are revoked, the list is replaced by one cutoff: every session issued so
  far is revoked (everyone logs in again), never an un-revoked session.
* Kept in a file (``$AGENTCMD_DATA_DIR/web-sessions-revoked``, mode 0600,
  one ``<sid> <expires>`` or ``* <cutoff>`` line each) when a path is given,
  so a revoked cookie stays dead across restarts. The engine and the app
  server share the file (they share the dashboard token, hence cookies) and
  each reads what the other appended before it checks a session (a
  ``stat`` per check). The file is rewritten without expired lines when it
  grows past ``MAX_FILE_BYTES``. If it cannot be written, the revocation
  still holds in memory for this server's lifetime, and a warning is logged.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from agentcmd.webauth.session import SESSION_MAX_AGE_S, Session

log = logging.getLogger("agentcmd.webauth")

MAX_ENTRIES = 10_000
MAX_FILE_BYTES = 1 << 20
FILE_NAME = "web-sessions-revoked"


class RevocationList:
    def __init__(self, path: Path | None = None, *, max_entries: int = MAX_ENTRIES,
                 max_age_s: int = SESSION_MAX_AGE_S, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.max_entries = max(1, max_entries)
        self.max_age_s = max_age_s
        self._clock = clock
        self._revoked: dict[str, int] = {}  # sid -> the session's expiry (epoch s)
        self._cutoff = 0  # every session expiring at or before this is revoked
        self._file_id: tuple[int, int] | None = None
        self._offset = 0
        self._refresh()

    # -- queries -------------------------------------------------------------------
    def is_revoked(self, session: Session) -> bool:
        self._refresh()
        return session.expires_at <= self._cutoff or session.sid in self._revoked

    def entries(self) -> int:
        """How many revoked session ids are kept (bounded by ``max_entries``)."""
        return len(self._revoked)

    # -- changes -------------------------------------------------------------------
    def revoke(self, session: Session) -> None:
        """End ``session`` for good (for this server's lifetime at least; across restarts with a file)."""
        self._refresh()
        if self._add(session.sid, session.expires_at):
            self._append(f"{session.sid} {session.expires_at}\n")
        else:
            self._append(f"* {self._cutoff}\n")

    def _add(self, sid: str, expires_at: int) -> bool:
        """Record one revocation; False when the list was full and became a cutoff instead."""
        now = int(self._clock())
        if expires_at <= max(now, self._cutoff):
            return True  # expired or already revoked by the cutoff: nothing to remember
        if sid not in self._revoked and len(self._revoked) >= self.max_entries:
            for key in [k for k, exp in self._revoked.items() if exp <= now]:
                del self._revoked[key]
            if len(self._revoked) >= self.max_entries:
                self._set_cutoff(now + self.max_age_s)
                return False
        self._revoked[sid] = expires_at
        return True

    def _set_cutoff(self, cutoff: int) -> None:
        if cutoff > self._cutoff:
            self._cutoff = cutoff
            self._revoked = {k: exp for k, exp in self._revoked.items() if exp > cutoff}

    # -- the file ----------------------------------------------------------------
    def _refresh(self) -> None:
        """Read lines appended to the file since the last look (by this or another server)."""
        if self.path is None:
            return
        try:
            st = os.stat(self.path)
        except OSError:
            return
        file_id = (st.st_dev, st.st_ino)
        if file_id != self._file_id or st.st_size < self._offset:
            self._file_id, self._offset = file_id, 0
        if st.st_size == self._offset:
            return
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                data = fh.read(st.st_size - self._offset)
        except OSError as exc:
            log.warning("cannot read the revoked-sessions file %s: %s", self.path, exc)
            return
        complete = data.rfind(b"\n") + 1  # a line still being written is read next time
        self._offset += complete
        for line in data[:complete].decode("ascii", "replace").splitlines():
            self._parse(line)

    def _parse(self, line: str) -> None:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            return  # not ours or damaged: ignore rather than fail every login
        if parts[0] == "*":
            self._set_cutoff(int(parts[1]))
        else:
            self._add(parts[0], int(parts[1]))

    def _append(self, line: str) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode("ascii"))
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            if size > MAX_FILE_BYTES:
                self._compact()
        except OSError as exc:
            log.warning("cannot record a logout in %s (%s): the session stays revoked until this server "
                        "stops", self.path, exc)

    def _compact(self) -> None:
        """Rewrite the file with only the revocations that still matter (atomic rename)."""
        assert self.path is not None
        self._refresh()
        now = int(self._clock())
        lines = [f"* {self._cutoff}\n"] if self._cutoff > now else []
        lines += [f"{sid} {exp}\n" for sid, exp in self._revoked.items() if exp > max(now, self._cutoff)]
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, "".join(lines).encode("ascii"))
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        self._file_id, self._offset = None, 0
        self._refresh()
