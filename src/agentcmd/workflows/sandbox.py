"""Keep step processes away from agentcmd's config file (it holds the keys), with Landlock on Linux.

Step commands and agent CLIs run as the user, so file permissions cannot
stop them reading ``$AGENTCMD_HOME/config.json``. Landlock (Linux 5.13+)
lets an unprivileged process give up rights for itself and its children.
It only *grants* rights beneath chosen paths, so hiding one file means
granting reading everywhere else: every sibling of each directory on the
way from ``/`` to the config file gets a "read files beneath" rule, the
config file none. Only reading files is restricted (writing, executing,
listing directories are not), so a step can do everything it could before
except open the config file, a hard link to it or a copy of it made by the
app for that purpose (there is none). Renaming it elsewhere is refused by
Landlock itself (moving a file across directories needs a right nobody
grants here). Symlinks on the way grant nothing: a read through a link is
checked where it leads.

The rules are rebuilt for each step (in the app, before the fork) and
applied in the child before exec (``preexec``: ``PR_SET_NO_NEW_PRIVS`` then
``landlock_restrict_self``), so only ``int`` syscalls run between fork and
exec. The limits, documented in docs/security.md: a file created, or
replaced by rename, directly in one of those directories (``/``, the home
directory, ``AGENTCMD_HOME``) while a step runs is unreadable to that step;
set-uid programs (``sudo``) do not gain privileges under
``no_new_privs``; other kernels and systems run steps without the rule
(logged once). ``step_sandbox = false`` (``AGENTCMD_STEP_SANDBOX``) turns
it off.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import itertools
import logging
import os
import platform
import stat
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

log = logging.getLogger("agentcmd.workflows")

# Same numbers on every Linux architecture (they came after the syscall table unification).
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_ACCESS_FS_READ_FILE = 1 << 2
_PR_SET_NO_NEW_PRIVS = 38


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_libc: ctypes.CDLL | None = None
_warned = False


def _load_libc() -> ctypes.CDLL | None:
    global _libc
    if _libc is None and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    return _libc


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when there is none (not Linux, too old, disabled, seccomp)."""
    libc = _load_libc()
    if libc is None:
        return 0
    version = int(libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION))
    return max(version, 0)


def _readable_siblings(protected: Path) -> Iterable[Path]:
    """Every entry next to each directory on the way from ``/`` to ``protected`` (not those on the way)."""
    for child, parent in itertools.pairwise([protected, *protected.parents]):
        names = os.listdir(parent)  # OSError: no rules at all (a level not granted would hide all of it)
        for name in names:
            if name != child.name:
                yield parent / name


def _build_ruleset(libc: ctypes.CDLL, protected: Path) -> int:
    """A ruleset fd (close-on-exec) granting file reads everywhere but ``protected``."""
    attr = _RulesetAttr(_ACCESS_FS_READ_FILE)
    fd = int(libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)), 0))
    if fd < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        for path in _readable_siblings(protected):
            try:
                # O_NOFOLLOW: a symlink next to the way (pytest-current -> pytest-7) must not grant its
                # target, which may hold the config file; a read through a link is checked at its target.
                path_fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
                if stat.S_ISLNK(os.fstat(path_fd).st_mode):
                    os.close(path_fd)
                    continue
            except OSError:
                continue  # vanished, or not ours to open: nothing to grant
            try:
                rule = _PathBeneathAttr(_ACCESS_FS_READ_FILE, path_fd)
                libc.syscall(_SYS_ADD_RULE, fd, _RULE_PATH_BENEATH, ctypes.byref(rule), 0)
            finally:
                os.close(path_fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _note_once(message: str, *args: object) -> None:
    global _warned
    if not _warned:
        _warned = True
        log.warning(message, *args)


def _settings() -> tuple[bool, Path]:
    """(step_sandbox, config file), read once per AGENTCMD_HOME / AGENTCMD_STEP_SANDBOX (settings cost ~10 ms)."""
    return _settings_for(os.environ.get("AGENTCMD_HOME"), os.environ.get("AGENTCMD_STEP_SANDBOX"))


@functools.lru_cache(maxsize=4)
def _settings_for(home: str | None, sandbox: str | None) -> tuple[bool, Path]:
    from agentcmd.config import load_settings

    settings = load_settings()
    return settings.step_sandbox, settings.config_file


class StepSandbox:
    """One step's restriction: ``preexec`` for the child, ``close`` in the app once it was spawned."""

    def __init__(self, ruleset_fd: int | None, libc: ctypes.CDLL | None) -> None:
        self._fd = ruleset_fd
        self._libc = libc

    @property
    def preexec(self) -> Callable[[], None] | None:
        if self._fd is None or self._libc is None:
            return None
        fd, libc = self._fd, self._libc

        def restrict() -> None:  # in the child, between fork and exec: int syscalls only
            libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
            libc.syscall(_SYS_RESTRICT_SELF, fd, 0)

        return restrict

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def step_sandbox(protected: Path | None = None, enabled: bool | None = None) -> StepSandbox:
    """The restriction for the next step process (a no-op one where it cannot or should not apply)."""
    if enabled is None or protected is None:
        try:
            on, config_file = _settings()
        except Exception as exc:  # a broken config must not stop steps; the app reports it elsewhere
            _note_once("step processes run without the config-file sandbox: cannot read the settings (%s)", exc)
            return StepSandbox(None, None)
        enabled = on if enabled is None else enabled
        protected = config_file if protected is None else protected
    if not enabled:
        return StepSandbox(None, None)
    abi = landlock_abi()
    if abi < 1:
        _note_once("step processes can read %s: this system has no Landlock (Linux 5.13+ with landlock "
                   "enabled; %s %s); see docs/security.md", protected, platform.system(), platform.release())
        return StepSandbox(None, None)
    libc = _load_libc()
    assert libc is not None
    try:
        target = protected.resolve()
        if not target.is_file():
            return StepSandbox(None, None)  # no config file: nothing to hide
        return StepSandbox(_build_ruleset(libc, target), libc)
    except OSError as exc:
        _note_once("step processes can read %s: the Landlock rules could not be built (%s)", protected, exc)
        return StepSandbox(None, None)
