"""What a resumed run must share with its checkpoint, and what it may change.

A resumed run keeps the checkpoint's tokenizers and vocabularies, and goes on
at the checkpoint's batch position of the epoch.  So:

- the training data (source, languages, training files, the length limits
  and the example cap), the tokenizer and the vocabulary settings must be the
  checkpoint's: a change would go unnoticed (French trained on a German
  vocabulary) and is refused in one line naming each changed key
  (:func:`check_resume_data`);
- the batching keys (``trainer.batch_size``, ``trainer.max_tokens``,
  ``trainer.accumulate``) may change, but the batch position was counted in
  the old batches, so the epoch in progress starts again from its first batch
  with a warning (:func:`batching_changes`);
- a checkpoint without training state (an ``nmt average`` output) cannot be
  resumed; the message says how to train on from its weights.

Checkpoints also record the vocabularies' fingerprint
(:func:`vocabulary_fingerprint`), so that two runs can be told apart by it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from nmt.checkpoint import CheckpointError

DATA_KEYS = (
    "data.source",
    "data.src_lang",
    "data.tgt_lang",
    "data.train_src",
    "data.train_tgt",
    "data.max_train_examples",
    "data.max_src_len",
    "data.max_tgt_len",
)
BATCHING_KEYS = ("trainer.batch_size", "trainer.max_tokens", "trainer.accumulate")
DEFAULTS = {"trainer.accumulate": 1}  # keys older checkpoints lack


def _value(config: dict[str, Any], key: str) -> Any:
    group, name = key.split(".", 1)
    return (config.get(group) or {}).get(name, DEFAULTS.get(key))


def _keys(config: dict[str, Any], group: str) -> list[str]:
    return [f"{group}.{name}" for name in sorted(config.get(group) or {})]


def _changes(saved: dict[str, Any], current: dict[str, Any], keys: list[str]) -> list[str]:
    return [
        f"{key} {_value(saved, key)!r} -> {_value(current, key)!r}"
        for key in keys
        if _value(saved, key) != _value(current, key)
    ]


def check_resume_data(path: Path, checkpoint: dict[str, Any], current: dict[str, Any]) -> None:
    """Refuse to resume from ``checkpoint`` (read from ``path``) with the run
    config ``current`` (plain data) when it cannot be resumed or when the
    data, tokenizer or vocabulary settings differ from its own."""
    weights_only = bool(_value(current, "trainer.weights_only"))
    if not weights_only and ("optimizer" not in checkpoint or "trainer_state" not in checkpoint):
        what = "an average (nmt average)" if checkpoint.get("averaged_from") else "model only"
        raise CheckpointError(
            f"trainer.resume_from: no optimizer state to resume in {path} ({what}); add "
            "trainer.weights_only=true to train on from its weights (new optimizer, step 0)"
        )
    saved = checkpoint.get("config") or {}
    keys = list(DATA_KEYS) + _keys(current, "tokenizer") + _keys(current, "vocab")
    changed = _changes(saved, current, keys)
    if changed:
        raise CheckpointError(
            f"trainer.resume_from={path}: the run changed {'; '.join(changed)}; a resumed run "
            "keeps its data, tokenizer and vocabulary: set them back, or start a new run"
        )


def batching_changes(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The batching keys that differ between the checkpoint's config and the run's."""
    return _changes(saved, current, list(BATCHING_KEYS))


def vocabulary_fingerprint(pipeline_state: dict[str, Any]) -> str:
    """sha256 (first 16 hex digits) of the source and target vocabularies."""
    parts = {key: pipeline_state.get(key) for key in ("src_vocab", "tgt_vocab")}
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
