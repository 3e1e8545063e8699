"""Schema of the ``decoding`` group: greedy search, beam search or sampling,
shared by the validation BLEU of ``nmt train``, ``nmt evaluate`` and
``nmt translate``."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from nmt.config.checks import check_finite
from nmt.config.errors import ConfigError


class DecodingStrategy(str, Enum):
    greedy = "greedy"
    beam = "beam"
    sample = "sample"


@dataclass
class DecodingConfig:
    strategy: DecodingStrategy = DecodingStrategy.greedy
    max_len: int = 100  # output tokens, <eos> excluded
    max_len_ratio: float | None = 2.0  # also stop at ratio * source length + 10
    min_len: int = 0  # output tokens before <eos> is allowed
    batch_size: int = 128  # sentences per batch (beam: times beam_size rows)
    beam_size: int = 5  # beam only; also cut to the target vocabulary size
    max_beam_size: int = 64  # the largest beam_size (and sampling's n_best) accepted
    n_best: int = 1  # hypotheses per sentence (beam: <= beam_size; sample: samples)
    # GNMT length penalty (Wu et al. 2016, eq. 14): score = log P / ((5 + |Y|) / 6)^alpha;
    # 0 = plain log-probability.  Ranks beam hypotheses and n-best samples.
    length_penalty: float = 0.0
    temperature: float = 1.0  # sample only: logits / temperature
    top_k: int = 0  # sample only: keep the k most probable tokens; 0 = all
    top_p: float = 1.0  # sample only: nucleus, smallest set with mass >= top_p
    seed: int = 1234  # sample only
    replace_unk: bool = False  # <unk> -> the most attended source token (attention models)

    def __post_init__(self) -> None:
        check_finite(self, "decoding.")
        if self.max_len < 1:
            raise ConfigError("decoding.max_len must be >= 1")
        if self.max_len_ratio is not None and self.max_len_ratio <= 0:
            raise ConfigError("decoding.max_len_ratio must be > 0 or null")
        if not 0 <= self.min_len <= self.max_len:
            raise ConfigError(
                f"decoding.min_len={self.min_len} must be in [0, decoding.max_len={self.max_len}]"
            )
        if self.batch_size < 1:
            raise ConfigError("decoding.batch_size must be >= 1")
        self._check_search()
        self._check_sampling()

    def _check_search(self) -> None:
        if self.beam_size < 1:
            raise ConfigError("decoding.beam_size must be >= 1")
        if self.beam_size > self.max_beam_size:
            raise ConfigError(
                f"decoding.beam_size={self.beam_size} is above "
                f"decoding.max_beam_size={self.max_beam_size} (raise that key to allow it)"
            )
        if self.n_best < 1:
            raise ConfigError("decoding.n_best must be >= 1")
        if self.strategy == DecodingStrategy.beam and self.n_best > self.beam_size:
            raise ConfigError(
                f"decoding.n_best={self.n_best} needs decoding.beam_size >= n_best "
                f"(got beam_size={self.beam_size})"
            )
        if self.strategy == DecodingStrategy.sample and self.n_best > self.max_beam_size:
            # samples are decoded side by side as rows, as a beam's hypotheses are
            raise ConfigError(
                f"decoding.n_best={self.n_best} samples is above "
                f"decoding.max_beam_size={self.max_beam_size} (raise that key to allow it)"
            )
        if self.strategy == DecodingStrategy.greedy and self.n_best > 1:
            raise ConfigError(
                f"decoding.n_best={self.n_best} needs decoding=beam or decoding=sample "
                "(greedy gives one hypothesis)"
            )
        if not 0 <= self.length_penalty <= 10:  # ((5 + |Y|) / 6)^alpha overflows further up
            raise ConfigError(
                f"decoding.length_penalty={self.length_penalty} must be in [0, 10] "
                "(0 = none; Wu et al. 2016 use 0.6 to 1)"
            )

    def _check_sampling(self) -> None:
        if self.temperature <= 0:
            raise ConfigError(f"decoding.temperature={self.temperature} must be > 0")
        if self.top_k < 0:
            raise ConfigError(f"decoding.top_k={self.top_k} must be >= 0 (0 = no limit)")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"decoding.top_p={self.top_p} must be in (0, 1]")
