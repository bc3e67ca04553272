"""Key generation into the config file, shared by ``agentcmd install`` and
the first ``agentcmd start`` (which must just work on a fresh machine)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agentcmd.config.keys import generate_dashboard_token, generate_event_key, generate_signing_key, refused
from agentcmd.config.paths import config_path
from agentcmd.config.sources import read_config_file, write_config_file

_GENERATORS = {
    "event_key": generate_event_key,
    "signing_key": generate_signing_key,
    "dashboard_token": generate_dashboard_token,
}


@dataclass(frozen=True)
class InstallResult:
    path: Path
    changed: bool
    fields: tuple[str, ...]


def ensure_keys(*, rotate: bool = False, path: Path | None = None) -> InstallResult:
    """Write missing keys (all keys when ``rotate``), and replace keys the engine would refuse as weak
    or malformed (they could not have worked); keep everything else in the file."""
    target = path or config_path()
    data = read_config_file(target)
    changed = False
    for name, gen in _GENERATORS.items():
        value = data.get(name)
        if rotate or not value or not isinstance(value, str) or refused(name, value):
            data[name] = gen()
            changed = True
    if changed:
        write_config_file(target, data)
    return InstallResult(target, changed, tuple(_GENERATORS))
