"""Tests for nmt.decoding.beam (through nmt.decoding.search): beam 1 equals
greedy, n-best lists, length penalty, hypotheses that end at different steps."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import Tensor, nn

from nmt.config import (
    MODEL_CONFIGS,
    ConfigError,
    DecodingConfig,
    DecodingStrategy,
    ModelConfig,
    TransformerConfig,
)
from nmt.data.batching import collate
from nmt.data.pipeline import TextPipeline
from nmt.decoding.hypothesis import Hypothesis, length_penalty
from nmt.decoding.search import search
from nmt.models.encoder import EncoderOutput
from nmt.models.registry import build_model, registered_archs
from nmt.models.seq2seq import Seq2Seq
from nmt.translation import translate_texts

CPU = torch.device("cpu")
UNK, PAD, BOS, EOS, A = 0, 1, 2, 3, 4


def beam(**options: object) -> DecodingConfig:
    return DecodingConfig(strategy=DecodingStrategy.beam, **options)  # type: ignore[arg-type]


def run(model: nn.Module, sources: list[list[int]], decoding: DecodingConfig, **kw: object):
    batch = collate(
        [(s, []) for s in sources], list(range(len(sources))), pad_idx=PAD, bos_idx=BOS, eos_idx=EOS
    )
    return search(
        model, batch.src, batch.src_lengths, bos_idx=BOS, eos_idx=EOS, decoding=decoding, **kw
    )  # type: ignore[arg-type]


def tiny_model(arch: str, pipeline: TextPipeline, seed: int = 0) -> Seq2Seq:
    """An untrained small model of any registered architecture."""
    torch.manual_seed(seed)
    if arch == "transformer":
        cfg: ModelConfig = TransformerConfig(
            d_model=8, num_heads=2, ffn_dim=16, encoder_layers=1, decoder_layers=2, dropout=0.0
        )
    else:
        cfg = MODEL_CONFIGS[arch](emb_dim=8, hidden_dim=8, num_layers=1, dropout=0.0)
    return build_model(cfg, pipeline.vocab_sizes).eval()


@dataclasses.dataclass
class Counts:
    """LengthChoice's state: tokens so far (B,) and each row's n (B,)."""

    count: Tensor
    n: Tensor


class LengthChoice(nn.Module):
    """A scripted model with two possible outputs per sentence.

    After <bos>: <eos> with probability ``p_stop``, else "a"; after "a", more
    "a"s until there are n of them (n = the sentence's first source id), then
    <eos>, each with probability 1.  So the hypotheses are [] (log p_stop) and
    [a]*n (log(1 - p_stop)); every other continuation has probability 0.
    Attention (B, S) falls on source position min(step, length - 1).
    """

    vocab_size = 6

    def __init__(self, p_stop: float = 0.6) -> None:
        super().__init__()
        self.p_stop = p_stop

    def encode(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        batch, length = src.shape
        mask = torch.arange(length)[None, :] < src_lengths[:, None]
        first = src[:, 0].float().view(1, batch, 1)
        return EncoderOutput(
            outputs=torch.zeros(batch, length, 1), mask=mask, hidden=first, cell=None
        )

    def init_state(self, enc: EncoderOutput, max_steps: int = 0) -> Counts:
        assert enc.hidden is not None
        return Counts(torch.zeros_like(enc.hidden[0, :, 0]), enc.hidden[0, :, 0])

    def reorder_state(self, state: Counts, rows: Tensor) -> Counts:
        return Counts(state.count[rows], state.n[rows])

    def decode_step(
        self, y: Tensor, state: Counts, enc: EncoderOutput
    ) -> tuple[Tensor, Counts, Tensor]:
        count, n = state.count, state.n
        probs = torch.zeros(y.size(0), self.vocab_size)
        start, more = y == BOS, (y == A) & (count < n)
        probs[start, EOS], probs[start, A] = self.p_stop, 1 - self.p_stop
        probs[more, A] = 1.0
        probs[~start & ~more, EOS] = 1.0
        lengths = enc.mask.sum(1)
        at = torch.minimum(count.long(), lengths - 1)
        attention = nn.functional.one_hot(at, enc.mask.size(1)).float()
        return probs.log(), Counts(count + 1, n), attention


# ------------------------------------------------------------ beam 1 = greedy


@pytest.mark.parametrize("arch", registered_archs())
@pytest.mark.parametrize(
    "options", [{}, {"min_len": 4}, {"length_penalty": 1.0}], ids=["plain", "min_len", "alpha"]
)
def test_beam_1_equals_greedy(
    arch: str, options: dict, tiny_pipeline: TextPipeline, tiny_examples
) -> None:
    model = tiny_model(arch, tiny_pipeline)
    sources = [s for s, _ in tiny_examples[:10]]
    common = {"max_len": 12, "max_len_ratio": None, **options}
    greedy = run(model, sources, DecodingConfig(**common), keep_attention=True)
    beam_1 = run(model, sources, beam(beam_size=1, **common), keep_attention=True)
    for g, b in zip(greedy, beam_1, strict=True):
        assert b[0].ids == g[0].ids
        assert b[0].score == pytest.approx(g[0].score, abs=1e-5)
        if g[0].attention is None:
            assert b[0].attention is None
        else:
            assert torch.allclose(b[0].attention, g[0].attention)


def test_beam_1_equals_greedy_on_a_trained_model(
    trained_tiny_model: Seq2Seq, tiny_examples
) -> None:
    sources = [s for s, _ in tiny_examples[:30]]
    greedy = run(trained_tiny_model, sources, DecodingConfig(max_len=20))
    beam_1 = run(trained_tiny_model, sources, beam(beam_size=1, max_len=20))
    assert [h[0].ids for h in beam_1] == [h[0].ids for h in greedy]
    assert len({len(h[0].ids) for h in greedy}) > 1  # they stopped at different steps


# ------------------------------------------------------------------ n-best


def test_n_best_sorted_distinct_and_scored(trained_tiny_model: Seq2Seq, tiny_examples) -> None:
    sources = [s for s, _ in tiny_examples[:12]]
    found = run(trained_tiny_model, sources, beam(beam_size=5, n_best=5, max_len=15))
    for hyps in found:
        assert len(hyps) == 5
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(h.ids) for h in hyps}) == 5
        assert all(EOS not in h.ids and BOS not in h.ids for h in hyps)
    # the score is the hypothesis' log-probability (with <eos>) under the model
    src = torch.tensor([sources[0]])
    best = found[0][0]
    assert best.score == pytest.approx(log_prob(trained_tiny_model, src, best.ids), abs=1e-4)


@torch.no_grad()
def log_prob(model: Seq2Seq, src: Tensor, ids: list[int]) -> float:
    tgt_in = torch.tensor([[BOS, *ids]])
    logits = model(src, torch.tensor([src.size(1)]), tgt_in)
    log_probs = logits.log_softmax(-1)[0]
    return float(sum(log_probs[t, tok] for t, tok in enumerate([*ids, EOS])))


# ------------------------------------------------ length penalty, finished hypotheses


@pytest.mark.parametrize(("n", "alpha", "winner"), [(10, 0.0, 0), (10, 1.0, 10), (3, 1.0, 0)])
def test_length_penalty_changes_ranking(n: int, alpha: float, winner: int) -> None:
    """[] has log 0.6 = -0.51; [a]*n has log 0.4 = -0.92, divided by
    ((5 + n + 1) / 6)^alpha: 2.67 for n=10 (-0.34 wins), 1.5 for n=3 (-0.61 loses)."""
    found = run(LengthChoice(0.6), [[n]], beam(beam_size=2, length_penalty=alpha, max_len=20))
    (best,) = found[0]
    assert len(best.ids) == winner
    expected = math.log(0.6 if winner == 0 else 0.4) / length_penalty(winner + 1, alpha)
    assert best.score == pytest.approx(expected, abs=1e-5)


def test_hypotheses_ending_at_different_steps_all_survive() -> None:
    runs = [2, 9, 5, 1, 7]
    decoding = beam(beam_size=3, n_best=2, length_penalty=1.0, max_len=20)
    found = run(LengthChoice(0.6), [[n, A] for n in runs], decoding, keep_attention=True)
    for n, hyps in zip(runs, found, strict=True):
        assert sorted(len(h.ids) for h in hyps) == [0, n]
        long = next(h for h in hyps if h.ids)
        assert long.ids == [A] * n
        assert long.attention is not None and long.attention.shape == (n, 2)
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
    alone = [run(LengthChoice(0.6), [[n, A]], decoding)[0] for n in runs]
    assert [[(h.ids, h.score) for h in hyps] for hyps in found] == [
        [(h.ids, h.score) for h in hyps] for hyps in alone
    ]


def test_min_len_and_max_len(make_tiny_model, tiny_examples) -> None:
    model = make_tiny_model()
    with torch.no_grad():
        model.decoder.output.bias[EOS] += 50.0  # <eos> is by far the likeliest token
    sources = [s for s, _ in tiny_examples[:6]]
    found = run(model, sources, beam(beam_size=3, n_best=3, min_len=4, max_len=8))
    assert all(len(h.ids) == 4 for hyps in found for h in hyps)
    with torch.no_grad():
        model.decoder.output.bias[EOS] -= 100.0  # now it never ends by itself
    found = run(model, sources, beam(beam_size=3, n_best=3, max_len=6, max_len_ratio=None))
    assert all(len(h.ids) == 6 for hyps in found for h in hyps)
    found = run(model, [[5], [5] * 8], beam(beam_size=2, max_len=100, max_len_ratio=0.5))
    assert [len(h[0].ids) for h in found] == [10, 14]  # 0.5 * source length + 10


# ---------------------------------------------------------------- batching


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
@pytest.mark.parametrize("arch", ["trained-sutskever", "bahdanau"])
def test_a_batch_translates_like_each_line_alone(
    strategy: str,
    arch: str,
    trained_tiny_model: Seq2Seq,
    tiny_pipeline: TextPipeline,
    synthetic_corpus,
) -> None:
    model = trained_tiny_model if arch == "trained-sutskever" else tiny_model(arch, tiny_pipeline)
    decoding = DecodingConfig(
        strategy=DecodingStrategy(strategy), beam_size=4, max_len=15, batch_size=16
    )
    lines = synthetic_corpus.lines["val"][0][:16]
    together = translate_texts(model, lines, tiny_pipeline, decoding, CPU)
    alone = [translate_texts(model, [line], tiny_pipeline, decoding, CPU)[0] for line in lines]
    assert together == alone


def test_attention_shapes(tiny_pipeline: TextPipeline, tiny_examples) -> None:
    sources = [s for s, _ in tiny_examples[:6]]
    for arch in ("bahdanau", "sutskever"):
        found = run(
            tiny_model(arch, tiny_pipeline),
            sources,
            beam(beam_size=3, n_best=2, max_len=7),
            keep_attention=True,
        )
        for src, hyps in zip(sources, found, strict=True):
            for h in hyps:
                if arch == "sutskever":
                    assert h.attention is None
                else:
                    assert h.attention is not None and h.attention.shape == (len(h.ids), len(src))
                    assert torch.allclose(h.attention.sum(-1), torch.ones(len(h.ids)), atol=1e-5)


def test_encoder_output_select() -> None:
    batch, length, layers = 3, 4, 2
    enc = EncoderOutput(
        outputs=torch.arange(batch * length * 5.0).view(batch, length, 5),
        mask=torch.rand(batch, length) > 0.5,
        hidden=torch.randn(layers, batch, 6),
        cell=None,
    )
    index = torch.tensor([2, 2, 0])
    picked = enc.select(index)
    assert torch.equal(picked.outputs, enc.outputs[index])
    assert torch.equal(picked.mask, enc.mask[index])
    assert torch.equal(picked.hidden, enc.hidden[:, index])
    assert picked.cell is None
    with_cell = dataclasses.replace(enc, cell=enc.hidden + 1).select(index)
    assert with_cell.cell is not None and torch.equal(with_cell.cell, enc.hidden[:, index] + 1)
    full = dataclasses.replace(enc, cell=enc.hidden + 1)
    first_two = full.select(slice(2))  # training keeps the first rows so
    for got, want in zip(
        dataclasses.astuple(first_two), dataclasses.astuple(full.select(torch.tensor([0, 1])))
    ):
        assert torch.equal(got, want)


def test_hypothesis_and_length_penalty() -> None:
    assert length_penalty(7, 0.0) == 1.0
    assert length_penalty(1, 0.6) == 1.0
    assert length_penalty(13, 1.0) == pytest.approx(3.0)
    assert Hypothesis([4], -1.0).attention is None


# ------------------------------------------------------------------ config


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"strategy": "beam", "beam_size": 2, "n_best": 3}, "decoding.n_best"),
        ({"strategy": "greedy", "n_best": 2}, "decoding.n_best"),
        ({"beam_size": 0}, "decoding.beam_size"),
        ({"length_penalty": -0.5}, "decoding.length_penalty"),
        ({"min_len": 20, "max_len": 10}, "decoding.min_len"),
        ({"max_len_ratio": 0.0}, "decoding.max_len_ratio"),
    ],
)
def test_bad_search_options_name_the_key(options: dict, key: str) -> None:
    options = dict(options)
    options["strategy"] = DecodingStrategy(options.get("strategy", "greedy"))
    with pytest.raises(ConfigError, match=key):
        DecodingConfig(**options)
