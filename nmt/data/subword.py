"""Subword models on the sentencepiece library: training, caching, sampling.

A model is learned from the run's training text (after ``tokenizer.lower``)
and kept as its serialized proto (``bytes``): that is what a checkpoint
stores, and what :class:`nmt.data.tokenizer.Tokenizer` loads.  Training is
deterministic: one thread, the input in file order, every sentence used, a
fixed random seed, so the same text and settings give byte-identical models.

Models are cached in ``data.subword_dir`` (``data/sentencepiece/``), named by the sha256
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
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from nmt.config import ConfigError, SubwordModel, TokenizerConfig, VocabConfig

log = logging.getLogger(__name__)

TRAINING_SEED = 1234  # sentencepiece's random seed while training; fixed, not trainer.seed


def processor(model: bytes) -> Any:
    """A ``SentencePieceProcessor`` from a serialized model."""
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_proto=model)


def _settings(cfg: TokenizerConfig, vocab: VocabConfig, count: int) -> dict[str, Any]:
    """Trainer options that depend on the config and on the text's ``count`` of
    sentences (the rest are fixed).  A text of more than
    ``tokenizer.input_sentence_size`` sentences is sampled down to that many
    (seeded, so still deterministic); a smaller one is read whole, in order."""
    sample = {}
    if count > cfg.input_sentence_size:
        sample = {"input_sentence_size": cfg.input_sentence_size, "shuffle_input_sentence": True}
    return sample | {
        "model_type": SubwordModel(cfg.model_type).value,
        "vocab_size": cfg.vocab_size,
        "character_coverage": cfg.character_coverage,
        "unk_piece": vocab.unk,
        "pad_piece": vocab.pad,
        "bos_piece": vocab.bos,
        "eos_piece": vocab.eos,
    }


def train_model(
    lines: Iterable[str], cfg: TokenizerConfig, vocab: VocabConfig, count: int
) -> bytes:
    """Learn a model from the ``count`` sentences ``lines`` yields (in this
    order); its serialized proto."""
    import sentencepiece as spm

    spm.set_random_generator_seed(TRAINING_SEED)
    out = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines),
            model_writer=out,
            **(
                {"input_sentence_size": 0, "shuffle_input_sentence": False}
                | _settings(cfg, vocab, count)
            ),
            unk_id=0,
            pad_id=1,
            bos_id=2,
            eos_id=3,
            byte_fallback=True,
            normalization_rule_name="identity",
            hard_vocab_limit=False,  # a small corpus gets fewer pieces, not an error
            num_threads=1,
            minloglevel=2,
        )
    except RuntimeError as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"tokenizer=sentencepiece: training failed: {reason}") from None
    return out.getvalue()


def cache_key(lines: Iterable[str], cfg: TokenizerConfig, vocab: VocabConfig, count: int) -> str:
    """sha256 of the training text, the settings and the library's version."""
    import sentencepiece as spm

    digest = hashlib.sha256()
    meta = {"settings": _settings(cfg, vocab, count), "version": spm.__version__}
    digest.update(json.dumps(meta, sort_keys=True).encode("utf-8"))
    for line in lines:
        digest.update(line.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def cached_model(
    lines: Callable[[], Iterable[str]],
    count: int,
    cfg: TokenizerConfig,
    vocab: VocabConfig,
    cache_dir: str | Path,
) -> bytes:
    """The model for the ``count`` sentences ``lines()`` yields (it is called
    once to hash them, once more to train), from the cache, trained (and
    cached) when missing."""
    folder = Path(cache_dir).expanduser()
    path = folder / f"{cache_key(lines(), cfg, vocab, count)[:32]}.model"
    if path.is_file():
        log.info("sentencepiece model from the cache: %s", path)
        return path.read_bytes()
    log.info("training a sentencepiece model on %d sentences", count)
    model = train_model(lines(), cfg, vocab, count)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".part", dir=folder)
        with os.fdopen(fd, "wb") as handle:
            handle.write(model)
        os.replace(tmp, path)  # atomic: parallel jobs never read half a file
        log.info("sentencepiece model cached in %s", path)
    except OSError as err:
        log.warning("could not cache the sentencepiece model in %s (%s)", folder, err)
    return model


def seed_sampling(seed: int) -> None:
    """Seed sentencepiece's sampler (a process-wide generator)."""
    import sentencepiece as spm

    spm.set_random_generator_seed(seed)
