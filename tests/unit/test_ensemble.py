"""nmt.models.ensemble: models decoding together with their mean log-probabilities."""

from __future__ import annotations

import pytest
import torch

from nmt.config import DecodingConfig, DecodingStrategy
from nmt.data.pipeline import TextPipeline
from nmt.evaluation import teacher_forced_nll
from nmt.models.ensemble import Ensemble
from nmt.translation import translate_nbest

CPU = torch.device("cpu")
LINES = ["s1 s2 s3", "s4 s5", "", "s6 s7 s8 s9"]
DECODINGS = [
    DecodingConfig(),
    DecodingConfig(strategy=DecodingStrategy.beam, beam_size=4, n_best=2, length_penalty=0.6),
    DecodingConfig(strategy=DecodingStrategy.sample, n_best=2, seed=3),
]


@pytest.mark.parametrize("decoding", DECODINGS, ids=lambda d: d.strategy.value)
def test_a_model_with_itself_decodes_as_the_model(
    decoding: DecodingConfig, trained_tiny_model, tiny_pipeline: TextPipeline
) -> None:
    pair = Ensemble([trained_tiny_model, trained_tiny_model]).eval()
    alone = translate_nbest(trained_tiny_model, LINES, tiny_pipeline, decoding, CPU)
    both = translate_nbest(pair, LINES, tiny_pipeline, decoding, CPU)  # type: ignore[arg-type]
    assert [[t.text for t in line] for line in both] == [[t.text for t in line] for line in alone]
    for a, b in zip(alone, both, strict=True):
        assert [t.score for t in b] == pytest.approx([t.score for t in a], abs=1e-4)


def test_the_loss_of_a_model_with_itself_is_the_models(
    trained_tiny_model, tiny_pipeline: TextPipeline, tiny_examples
) -> None:
    pair = Ensemble([trained_tiny_model, trained_tiny_model])
    alone = teacher_forced_nll(trained_tiny_model, tiny_examples[:40], tiny_pipeline, CPU)
    both = teacher_forced_nll(pair, tiny_examples[:40], tiny_pipeline, CPU)  # type: ignore[arg-type]
    assert both[1] == alone[1] and both[0] == pytest.approx(alone[0], rel=1e-5)


def test_the_step_is_the_mean_of_the_members_log_probabilities(
    make_tiny_model, tiny_pipeline: TextPipeline
) -> None:
    first, second = make_tiny_model(seed=1).eval(), make_tiny_model(seed=2).eval()
    pair = Ensemble([first, second])
    src = torch.tensor([[5, 6, 7], [8, 9, 1]])
    lengths = torch.tensor([3, 2])
    y = torch.full((2,), tiny_pipeline.tgt_vocab.bos_idx)
    expected = []
    for model in (first, second):
        enc = model.encode(src, lengths)
        logits, _, _ = model.decode_step(y, model.init_state(enc), enc)
        expected.append(torch.log_softmax(logits, -1))
    enc = pair.encode(src, lengths)
    state = pair.init_state(enc)
    got, new_state, _ = pair.decode_step(y, state, enc)
    assert torch.allclose(got, (expected[0] + expected[1]) / 2, atol=1e-6)
    assert len(new_state.parts) == len(state.parts) == 2  # each member's own state
    rows = torch.tensor([1, 1, 0])
    reordered = pair.reorder_state(new_state, rows)  # each member reorders its own
    after, _, _ = pair.decode_step(y, new_state, enc)
    moved, _, _ = pair.decode_step(y[rows], reordered, enc.select(rows))
    assert torch.allclose(moved, after[rows], atol=1e-6)
    assert torch.equal(enc.select(torch.tensor([1])).parts[1].outputs, enc.parts[1].outputs[1:])
