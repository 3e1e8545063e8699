"""Subword models on the sentencepiece library: training, caching, sampling.

A model is learned from the run's training text (after ``tokenizer.lower``)
and kept as its serialized proto (``bytes``): that is what a checkpoint
stores, and what :class:`nmt.data.tokenizer.Tokenizer` loads.  Training is
deterministic: one thread, the input in file order, every sentence used, a
fixed random seed, so the same text and settings give byte-identical models.

Models are cached in ``<data.cache_dir>/sentencepiece/``, named by the sha256
of the text they were trained on and of the settings (and of the library's
version), so that the jobs of a sweep train each model once.

The piece ids follow nmt's :class:`~nmt.data.vocab.Vocab`: the specials unk,
pad, bos, eos are pieces 0..3 (with the ``vocab`` group's names), so piece id
and vocabulary id are the same number.  ``byte_fallback`` spells any character
the model has no piece for as its UTF-8 bytes (``<0xF0>`` ...), so no input is
ever unknown; ``identity`` normalization keeps the text as it is (no NFKC), so
decoding gives back the input (up to runs of spaces, which become one).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nmt.config import ConfigError, SubwordModel, TokenizerConfig, VocabConfig

log = logging.getLogger(__name__)

TRAINING_SEED = 1234  # sentencepiece's random seed while training; fixed, not trainer.seed
CACHE_FOLDER = "sentencepiece"


def processor(model: bytes) -> Any:
    """A ``SentencePieceProcessor`` from a serialized model."""
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_proto=model)


def _settings(cfg: TokenizerConfig, vocab: VocabConfig) -> dict[str, Any]:
    """Trainer options that depend on the config (the rest are fixed)."""
    return {
        "model_type": SubwordModel(cfg.model_type).value,
        "vocab_size": cfg.vocab_size,
        "character_coverage": cfg.character_coverage,
        "unk_piece": vocab.unk,
        "pad_piece": vocab.pad,
        "bos_piece": vocab.bos,
        "eos_piece": vocab.eos,
    }


def train_model(lines: Sequence[str], cfg: TokenizerConfig, vocab: VocabConfig) -> bytes:
    """Learn a model from ``lines`` (in this order); its serialized proto."""
    import sentencepiece as spm

    spm.set_random_generator_seed(TRAINING_SEED)
    out = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines),
            model_writer=out,
            **_settings(cfg, vocab),
            unk_id=0,
            pad_id=1,
            bos_id=2,
            eos_id=3,
            byte_fallback=True,
            normalization_rule_name="identity",
            hard_vocab_limit=False,  # a small corpus gets fewer pieces, not an error
            num_threads=1,
            input_sentence_size=0,
            shuffle_input_sentence=False,
            minloglevel=2,
        )
    except RuntimeError as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"tokenizer=sentencepiece: training failed: {reason}") from None
    return out.getvalue()


def cache_key(lines: Sequence[str], cfg: TokenizerConfig, vocab: VocabConfig) -> str:
    """sha256 of the training text, the settings and the library's version."""
    import sentencepiece as spm

    digest = hashlib.sha256()
    meta = {"settings": _settings(cfg, vocab), "version": spm.__version__}
    digest.update(json.dumps(meta, sort_keys=True).encode("utf-8"))
    for line in lines:
        digest.update(line.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def cached_model(
    lines: Sequence[str], cfg: TokenizerConfig, vocab: VocabConfig, cache_dir: str | Path
) -> bytes:
    """The model for ``lines`` from the cache, trained (and cached) when missing."""
    folder = Path(cache_dir).expanduser() / CACHE_FOLDER
    path = folder / f"{cache_key(lines, cfg, vocab)[:32]}.model"
    if path.is_file():
        log.info("sentencepiece model from the cache: %s", path)
        return path.read_bytes()
    model = train_model(lines, cfg, vocab)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".part", dir=folder)
        with os.fdopen(fd, "wb") as handle:
            handle.write(model)
        os.replace(tmp, path)  # atomic: parallel jobs never read half a file
        log.info("sentencepiece model trained on %d lines, cached in %s", len(lines), path)
    except OSError as err:
        log.warning("could not cache the sentencepiece model in %s (%s)", folder, err)
    return model


def seed_sampling(seed: int) -> None:
    """Seed sentencepiece's sampler (a process-wide generator)."""
    import sentencepiece as spm

    spm.set_random_generator_seed(seed)
