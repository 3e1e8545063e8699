"""Shared fixtures: a tiny synthetic parallel corpus, a tiny model, Multi30k.

The synthetic language pair is "reverse and map": the target is the source
read backwards with every word replaced by its partner word (``s3`` ->
``T3``).  A small model learns it in seconds on a CPU, so that training,
decoding and the CLI can be tested end to end without real data.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hypothesis import settings

from nmt.config import (
    BahdanauConfig,
    CellType,
    InitKind,
    SutskeverConfig,
    TokenizerKind,
    VocabConfig,
)
from nmt.data.batching import collate
from nmt.data.pipeline import TextPipeline
from nmt.data.tokenizer import Tokenizer
from nmt.data.vocab import Vocab
from nmt.evaluation import sequence_nll
from nmt.models.registry import build_model
from nmt.models.seq2seq import Seq2Seq

# property tests check values, not speed: on a loaded 2-core machine a first
# example can pass hypothesis's 200 ms deadline and fail a correct test
settings.register_profile("nmt", deadline=None)
settings.load_profile("nmt")

# The test machines share few cores: with more than one intra-op thread, tiny
# models run up to 100x slower (threads spin while waiting for a core).  One
# thread here, and OMP_NUM_THREADS=1 for the `nmt` subprocesses of the CLI tests.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")

# Read once, at import: test modules may clear $NMT_DATA_DIR for each test.
_ENV_DATA_DIR = os.environ.get("NMT_DATA_DIR")
_SHARED_MULTI30K = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "multi30k"

SYNTH_WORDS = 12
SYNTH_SIZES = {"train": 300, "val": 50, "test": 50}
TRAIN_EPOCHS = 8


def synthetic_pair(rng: random.Random, min_len: int = 2, max_len: int = 6) -> tuple[str, str]:
    """One (source, target) line pair of the reverse-and-map task."""
    ids = [rng.randrange(SYNTH_WORDS) for _ in range(rng.randint(min_len, max_len))]
    src = " ".join(f"s{i}" for i in ids)
    tgt = " ".join(f"T{i}" for i in reversed(ids))
    return src, tgt


@dataclass
class SyntheticCorpus:
    """Plain-text files ``{split}.src`` / ``{split}.tgt`` and their lines."""

    root: Path
    lines: dict[str, tuple[list[str], list[str]]]

    def src(self, split: str) -> Path:
        return self.root / f"{split}.src"

    def tgt(self, split: str) -> Path:
        return self.root / f"{split}.tgt"

    def overrides(self) -> list[str]:
        """Hydra overrides that point ``data=files`` at these files."""
        keys = ["data=files"]
        for split in ("train", "val", "test"):
            keys += [f"data.{split}_src={self.src(split)}", f"data.{split}_tgt={self.tgt(split)}"]
        return keys


def write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def synthetic_corpus(tmp_path_factory: pytest.TempPathFactory) -> SyntheticCorpus:
    """300 train, 50 val and 50 test pairs of the reverse-and-map task (read-only:
    one copy serves the whole session)."""
    rng = random.Random(1234)
    root = tmp_path_factory.mktemp("corpus")
    lines = {}
    for split, count in SYNTH_SIZES.items():
        pairs = [synthetic_pair(rng) for _ in range(count)]
        src, tgt = [s for s, _ in pairs], [t for _, t in pairs]
        write_lines(root / f"{split}.src", src)
        write_lines(root / f"{split}.tgt", tgt)
        lines[split] = (src, tgt)
    return SyntheticCorpus(root=root, lines=lines)


@pytest.fixture(scope="session")
def tiny_pipeline(synthetic_corpus: SyntheticCorpus) -> TextPipeline:
    """Whitespace tokenizers and vocabularies of the synthetic training split."""
    src_tok = Tokenizer(TokenizerKind.whitespace, "src")
    tgt_tok = Tokenizer(TokenizerKind.whitespace, "tgt")
    src, tgt = synthetic_corpus.lines["train"]
    cfg = VocabConfig(min_freq=1)
    return TextPipeline(
        src_tokenizer=src_tok,
        tgt_tokenizer=tgt_tok,
        src_vocab=Vocab.build(src_tok.tokenize_many(src), cfg),
        tgt_vocab=Vocab.build(tgt_tok.tokenize_many(tgt), cfg),
        max_src_len=20,
    )


@pytest.fixture(scope="session")
def tiny_examples(
    synthetic_corpus: SyntheticCorpus, tiny_pipeline: TextPipeline
) -> list[tuple[list[int], list[int]]]:
    """The synthetic training split as id pairs (no bos/eos)."""
    src, tgt = synthetic_corpus.lines["train"]
    return tiny_pipeline.encode_pairs(src, tgt)


TinyModelFactory = Callable[..., Seq2Seq]


def _tiny_model_factory(pipeline: TextPipeline) -> TinyModelFactory:
    def make(seed: int = 0, **overrides: object) -> Seq2Seq:
        options: dict[str, object] = {
            "cell": CellType.lstm,
            "emb_dim": 16,
            "hidden_dim": 32,
            "num_layers": 1,
            "dropout": 0.0,
            "init": InitKind.uniform,
            "init_range": 0.1,
        }
        options.update(overrides)
        torch.manual_seed(seed)
        return build_model(SutskeverConfig(**options), pipeline.vocab_sizes)  # type: ignore[arg-type]

    return make


@pytest.fixture
def make_tiny_model(tiny_pipeline: TextPipeline) -> TinyModelFactory:
    """``make_tiny_model(seed=0, **config)``: a small untrained Sutskever model
    (LSTM, emb 16, hidden 32, 1 layer, no dropout), seeded."""
    return _tiny_model_factory(tiny_pipeline)


def _fit(
    model: Seq2Seq, pipeline: TextPipeline, examples: list[tuple[list[int], list[int]]]
) -> dict[str, torch.Tensor]:
    """Train ``model`` for TRAIN_EPOCHS on ``examples`` (Adam, batches of 32); its weights."""
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    vocab = pipeline.tgt_vocab
    model.train()
    for epoch in range(TRAIN_EPOCHS):
        order = random.Random(epoch).sample(range(len(examples)), len(examples))
        for start in range(0, len(order), 32):
            chunk = order[start : start + 32]
            batch = collate(
                [examples[i] for i in chunk],
                chunk,
                pad_idx=vocab.pad_idx,
                bos_idx=vocab.bos_idx,
                eos_idx=vocab.eos_idx,
            )
            optimizer.zero_grad()
            sequence_nll(model, batch).div(batch.ntokens).backward()
            optimizer.step()
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="session")
def _trained_state(
    tiny_pipeline: TextPipeline, tiny_examples: list[tuple[list[int], list[int]]]
) -> dict[str, torch.Tensor]:
    model = _tiny_model_factory(tiny_pipeline)(seed=0)
    return _fit(model, tiny_pipeline, tiny_examples)


@pytest.fixture
def trained_tiny_model(
    tiny_pipeline: TextPipeline, _trained_state: dict[str, torch.Tensor]
) -> Seq2Seq:
    """The tiny model after a few epochs on the synthetic task (a fresh copy per
    test, in eval mode): it stops its outputs with ``<eos>`` by itself."""
    model = _tiny_model_factory(tiny_pipeline)(seed=0)
    model.load_state_dict(_trained_state)
    return model.eval()


# A small attention model, for the tests that show attention (the server's page).
TINY_ATTENTION = BahdanauConfig(emb_dim=16, hidden_dim=32, dropout=0.0)


@pytest.fixture(scope="session")
def trained_tiny_attention(
    tiny_pipeline: TextPipeline, tiny_examples: list[tuple[list[int], list[int]]]
) -> tuple[Seq2Seq, BahdanauConfig]:
    """A Bahdanau model trained like ``trained_tiny_model`` (in eval mode), and its
    config.  One copy serves the session: use it, do not change it."""
    torch.manual_seed(0)
    model = build_model(TINY_ATTENTION, tiny_pipeline.vocab_sizes)
    _fit(model, tiny_pipeline, tiny_examples)
    return model.eval(), TINY_ATTENTION


@pytest.fixture
def multi30k_dir() -> Path:
    """The shared Multi30k folder ($NMT_DATA_DIR, else ../shared/data/multi30k);
    the test is skipped when neither holds the files."""
    for candidate in (_ENV_DATA_DIR, _SHARED_MULTI30K):
        if candidate and (Path(candidate) / "train.de.gz").is_file():
            return Path(candidate)
    pytest.skip("no Multi30k folder: set NMT_DATA_DIR or add ../shared/data/multi30k")
