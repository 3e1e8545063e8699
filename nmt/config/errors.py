"""The one exception a config check raises."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key."""
