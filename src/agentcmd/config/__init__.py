"""Settings, paths and keys. Import-light: no web stack here."""

from agentcmd.config.settings import Settings, load_settings

__all__ = ["Settings", "load_settings"]
