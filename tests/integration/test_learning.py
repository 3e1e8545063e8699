"""Each architecture learns a synthetic task on the CPU in seconds, and the
attention models beat the fixed-vector model on long sentences.

Token accuracy is measured under teacher forcing on held-out sentences: the
argmax of each step's logits against the reference token (``<eos>``
included, padding excluded).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from nmt.config import MODEL_CONFIGS, CellType, InitKind, ModelConfig, TransformerConfig
from nmt.models.registry import VocabSizes, build_model, registered_archs
from nmt.models.seq2seq import Seq2Seq

PAD, BOS, EOS = 0, 1, 2
SYMBOLS = 10  # ids 3 .. 12
SIZES = VocabSizes(src=SYMBOLS + 3, tgt=SYMBOLS + 3, src_pad=PAD, tgt_pad=PAD)
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread, and the CPUs are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def synthetic_batch(gen: torch.Generator, size: int, lengths: tuple[int, int], task: str) -> Batch:
    """src (B, S), src_lengths, tgt_in (B, S+1) from <bos>, tgt_out (B, S+1) to <eos>;
    the target is the source copied or reversed."""
    lens = torch.randint(lengths[0], lengths[1] + 1, (size,), generator=gen)
    longest = int(lens.max())
    src = torch.full((size, longest), PAD)
    tgt_in = torch.full((size, longest + 1), PAD)
    tgt_out = torch.full((size, longest + 1), PAD)
    for row, n in enumerate(lens.tolist()):
        seq = torch.randint(3, SIZES.src, (n,), generator=gen)
        target = seq.flip(0) if task == "reverse" else seq
        src[row, :n] = seq
        tgt_in[row, 0], tgt_in[row, 1 : n + 1] = BOS, target
        tgt_out[row, :n], tgt_out[row, n] = target, EOS
    return src, lens, tgt_in, tgt_out


def config(arch: str, *, emb_dim: int, hidden_dim: int) -> ModelConfig:
    if arch == "transformer":
        return TransformerConfig(
            d_model=hidden_dim,
            num_heads=4,
            ffn_dim=2 * hidden_dim,
            encoder_layers=2,
            decoder_layers=2,
            dropout=0.0,
        )
    return MODEL_CONFIGS[arch](
        cell=CellType.gru,
        emb_dim=emb_dim,
        hidden_dim=hidden_dim,
        num_layers=1,
        dropout=0.0,
        init=InitKind.default,
    )


def train_and_score(
    cfg: ModelConfig, *, steps: int, batch_size: int, lengths: tuple[int, int], task: str
) -> float:
    """Train with Adam (lr 0.01, clip 1) and return held-out token accuracy."""
    torch.manual_seed(0)
    model: Seq2Seq = build_model(cfg, SIZES)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    gen = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(steps):
        src, src_lengths, tgt_in, tgt_out = synthetic_batch(gen, batch_size, lengths, task)
        logits = model(src, src_lengths, tgt_in)
        loss = F.cross_entropy(logits.flatten(0, 1), tgt_out.flatten(), ignore_index=PAD)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    model.eval()
    src, src_lengths, tgt_in, tgt_out = synthetic_batch(
        torch.Generator().manual_seed(99), 200, lengths, task
    )
    with torch.no_grad():
        predicted = model(src, src_lengths, tgt_in).argmax(-1)
    real = tgt_out != PAD
    return (predicted[real] == tgt_out[real]).float().mean().item()


@pytest.mark.parametrize("arch", registered_archs())
def test_every_arch_learns_to_reverse_short_sentences(arch: str) -> None:
    accuracy = train_and_score(
        config(arch, emb_dim=16, hidden_dim=48),
        steps=150,
        batch_size=128,
        lengths=(2, 6),
        task="reverse",
    )
    assert accuracy >= 0.9, f"{arch}: token accuracy {accuracy:.3f} after 150 steps"


def test_attention_beats_a_fixed_vector_on_long_sentences() -> None:
    """Copying 20-30 tokens through one fixed vector is hard, while attention
    reads each source word back (Bahdanau et al. 2015, Fig. 2 and sec. 5.2.2)."""
    budget = {"steps": 80, "batch_size": 64, "lengths": (20, 30), "task": "copy"}
    scores = {
        arch: train_and_score(config(arch, emb_dim=16, hidden_dim=48), **budget)  # type: ignore[arg-type]
        for arch in ("sutskever", "bahdanau", "luong")
    }
    for arch in ("bahdanau", "luong"):
        assert scores[arch] > scores["sutskever"] + 0.2, scores
