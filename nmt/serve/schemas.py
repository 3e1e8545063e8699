"""The JSON a client sends and gets back, and how a request becomes a DecodingConfig.

Requests are validated strictly (no "5" for 5, no unknown keys); checks that
depend on the server's limits or that span keys run in :func:`decoding_for`,
which leaves the cross-key rules to :class:`~nmt.config.DecodingConfig`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from nmt.config import ConfigError, DecodingConfig, ServeConfig, decoding_preset

# the request keys that map onto DecodingConfig fields of the same name
DECODING_KEYS = (
    "beam_size",
    "n_best",
    "length_penalty",
    "temperature",
    "top_k",
    "top_p",
    "seed",
    "replace_unk",
)


class RequestError(Exception):
    """A request the server refuses; ``loc`` names the offending field."""

    def __init__(self, status: int, message: str, loc: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.loc = loc


class TranslateRequest(BaseModel):
    """``text``: one line or a list of lines; the rest overrides the server's decoding."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    text: str | list[str]
    strategy: Literal["greedy", "beam", "sample"] | None = None
    beam_size: int | None = None
    n_best: int | None = None
    length_penalty: float | None = None
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    seed: Annotated[int, Field(ge=0, lt=2**63)] | None = None
    replace_unk: bool | None = None
    attention: bool = False  # add source/target tokens and attention matrices

    def lines(self) -> list[str]:
        return [self.text] if isinstance(self.text, str) else list(self.text)


class Hypothesis(BaseModel):
    text: str
    score: float | None  # None: no hypothesis (a beam that ran out)
    tokens: list[str] | None = None  # with attention=true
    attention: list[list[float]] | None = None  # (len(tokens), len(src_tokens)); None: no attention


class LineResult(BaseModel):
    source: str
    translation: str  # the best hypothesis
    score: float | None
    nbest: list[Hypothesis]
    src_tokens: list[str] | None = None  # with attention=true, in the order the model read them


class TranslateResponse(BaseModel):
    translations: list[LineResult]
    decoding: dict[str, Any]  # the options used


def check_lines(lines: list[str], cfg: ServeConfig) -> None:
    """Line count and length within the server's limits; one line each."""
    if len(lines) > cfg.max_lines:
        raise RequestError(
            422, f"text has {len(lines)} lines; this server takes at most max_lines={cfg.max_lines}"
        )
    for number, line in enumerate(lines):
        if len(line) > cfg.max_line_chars:
            raise RequestError(
                422,
                f"text[{number}] has {len(line)} characters; the limit is "
                f"max_line_chars={cfg.max_line_chars}",
                ("text", number),
            )
        try:
            line.encode("utf-8")
        except UnicodeEncodeError as exc:  # "\ud800" in JSON: no character of its own
            raise RequestError(
                422,
                f"text[{number}] holds a lone surrogate at character {exc.start}",
                ("text", number),
            ) from None
        if "\n" in line or "\r" in line:
            raise RequestError(
                422, f"text[{number}] holds a line break: send one list entry per line", ("text",)
            )


def _check_limits(request: TranslateRequest, cfg: ServeConfig) -> None:
    for key, limit in (("beam_size", cfg.max_beam_size), ("n_best", cfg.max_n_best)):
        value = getattr(request, key)
        if value is not None and value > limit:
            raise RequestError(
                422, f"{key}={value} is over this server's limit max_{key}={limit}", (key,)
            )


def decoding_for(request: TranslateRequest, cfg: ServeConfig) -> DecodingConfig:
    """The server's decoding (or, for another strategy, that strategy's preset)
    with the request's options; the output-length keys stay the server's."""
    _check_limits(request, cfg)
    base = cfg.decoding
    if request.strategy is not None and request.strategy != base.strategy.value:
        server_keys = ("max_len", "max_len_ratio", "min_len")
        kept = {key: getattr(base, key) for key in server_keys}
        base = dataclasses.replace(decoding_preset(request.strategy), **kept)
    changes = {k: getattr(request, k) for k in DECODING_KEYS if getattr(request, k) is not None}
    try:
        return dataclasses.replace(base, **changes)
    except ConfigError as exc:
        match = re.search(r"decoding\.(\w+)", str(exc))
        raise RequestError(422, str(exc), (match.group(1),) if match else ()) from None


def finite(value: float) -> float | None:
    """JSON has no infinity: a score of -inf (no hypothesis) becomes null."""
    return value if math.isfinite(value) else None
