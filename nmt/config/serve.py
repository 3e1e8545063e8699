"""`nmt serve`: the server's root config and the decoding presets a request may name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from nmt.config.checks import check_finite
from nmt.config.convert import to_dataclass
from nmt.config.decoding import DecodingConfig
from nmt.config.errors import ConfigError
from nmt.config.roots import ModelUseConfig

PRESETS = Path(__file__).resolve().parents[1] / "configs" / "decoding"


@dataclass
class ServeConfig(ModelUseConfig):
    """`nmt serve`: an HTTP server and web page over one checkpoint.

    ``decoding`` is what a request gets when it names no strategy (or the same
    one); the ``max_*`` keys bound what one request may ask for.  Requests that
    arrive within ``batch_wait_ms`` of each other are decoded together, up to
    ``max_batch_lines`` lines.
    """

    host: str = "127.0.0.1"  # localhost only; 0.0.0.0 opens the server to the network
    port: int = 8000
    max_lines: int = 64  # lines in one request
    max_line_chars: int = 1000  # characters in one line
    max_body_bytes: int = 262144  # request body (Content-Length and the bytes read)
    max_beam_size: int = 16
    max_n_best: int = 16
    body_timeout_s: float = 10.0  # give up on a request body that stalls this long (408)
    batch_wait_ms: float = 5.0  # how long a batch stays open for more requests
    max_batch_lines: int = 128  # lines decoded together at most

    def __post_init__(self) -> None:
        super().__post_init__()
        check_finite(self)
        if not 0 < self.port < 65536:
            raise ConfigError(f"port={self.port} must be in [1, 65535]")
        limits = ("max_lines", "max_line_chars", "max_body_bytes", "max_beam_size", "max_n_best")
        for key in (*limits, "max_batch_lines"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}={getattr(self, key)} must be >= 1")
        if self.body_timeout_s <= 0:
            raise ConfigError(f"body_timeout_s={self.body_timeout_s} must be > 0")
        if self.batch_wait_ms < 0:
            raise ConfigError(f"batch_wait_ms={self.batch_wait_ms} must be >= 0")


def decoding_preset(name: str) -> DecodingConfig:
    """The decoding config that ``decoding=<name>`` selects (configs/decoding/<name>.yaml)."""
    path = PRESETS / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"decoding={name!r} is not a preset in {PRESETS}")
    return to_dataclass(OmegaConf.load(path), DecodingConfig)
