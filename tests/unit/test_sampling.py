"""Tests for nmt.decoding.sampling: seeds, top-k, top-p, temperature."""

from __future__ import annotations

import pytest
import torch

from nmt.config import ConfigError, DecodingConfig, DecodingStrategy
from nmt.data.batching import collate
from nmt.data.pipeline import TextPipeline
from nmt.decoding.sampling import filter_logits, make_generator, sampling_picker
from nmt.decoding.search import search
from nmt.models.seq2seq import Seq2Seq
from nmt.translation import translate_texts

CPU = torch.device("cpu")
PAD, BOS, EOS = 1, 2, 3


def sampling(**options: object) -> DecodingConfig:
    return DecodingConfig(strategy=DecodingStrategy.sample, max_len=12, **options)  # type: ignore[arg-type]


def run(model: Seq2Seq, sources: list[list[int]], decoding: DecodingConfig, **kw: object):
    batch = collate(
        [(s, []) for s in sources], list(range(len(sources))), pad_idx=PAD, bos_idx=BOS, eos_idx=EOS
    )
    return search(
        model, batch.src, batch.src_lengths, bos_idx=BOS, eos_idx=EOS, decoding=decoding, **kw
    )  # type: ignore[arg-type]


def ids_of(found) -> list[list[list[int]]]:
    return [[h.ids for h in hyps] for hyps in found]


def test_same_seed_same_samples_other_seed_other_samples(make_tiny_model, tiny_examples) -> None:
    model = make_tiny_model().eval()  # untrained: a flat distribution, samples vary a lot
    sources = [s for s, _ in tiny_examples[:10]]
    first = ids_of(run(model, sources, sampling(seed=7, n_best=3)))
    again = ids_of(run(model, sources, sampling(seed=7, n_best=3)))
    other = ids_of(run(model, sources, sampling(seed=8, n_best=3)))
    assert first == again
    assert first != other
    assert all(len(hyps) == 3 for hyps in first)


def test_translation_with_sampling_is_reproducible(
    make_tiny_model, tiny_pipeline: TextPipeline, synthetic_corpus
) -> None:
    model = make_tiny_model().eval()
    lines = synthetic_corpus.lines["val"][0][:12]
    decoding = sampling(seed=3, batch_size=5)
    first = translate_texts(model, lines, tiny_pipeline, decoding, CPU)
    assert translate_texts(model, lines, tiny_pipeline, decoding, CPU) == first
    assert len(first) == len(lines)


def test_top_k_1_equals_greedy(trained_tiny_model: Seq2Seq, make_tiny_model, tiny_examples) -> None:
    sources = [s for s, _ in tiny_examples[:20]]
    for model in (trained_tiny_model, make_tiny_model(seed=3).eval()):
        greedy = run(model, sources, DecodingConfig(max_len=12))
        sampled = run(model, sources, sampling(top_k=1, temperature=2.0))
        assert ids_of(sampled) == ids_of(greedy)
        for g, s in zip(greedy, sampled, strict=True):  # scores are the model's log-probs
            assert s[0].score == pytest.approx(g[0].score, abs=1e-5)


def test_samples_are_sorted_by_score(make_tiny_model, tiny_examples) -> None:
    model = make_tiny_model().eval()
    found = run(model, [s for s, _ in tiny_examples[:5]], sampling(n_best=4, length_penalty=0.6))
    for hyps in found:
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)


def test_min_len_holds_for_samples(make_tiny_model, tiny_examples) -> None:
    model = make_tiny_model().eval()
    with torch.no_grad():
        model.decoder.output.bias[EOS] += 50.0  # <eos> nearly certain at every step
    found = run(model, [s for s, _ in tiny_examples[:5]], sampling(min_len=3, n_best=2))
    assert all(len(h.ids) == 3 for hyps in found for h in hyps)


# ---------------------------------------------------------------- filtering

PROBS = torch.tensor([[0.5, 0.3, 0.15, 0.05]])


@pytest.mark.parametrize(
    ("top_k", "top_p", "kept"),
    [
        (0, 1.0, [0, 1, 2, 3]),
        (2, 1.0, [0, 1]),
        (1, 1.0, [0]),
        (0, 0.8, [0, 1]),  # 0.5 + 0.3 reaches 0.8
        (0, 0.81, [0, 1, 2]),
        (0, 0.01, [0]),  # the most probable token always stays
        (3, 0.6, [0, 1]),
    ],
)
def test_filter_logits(top_k: int, top_p: float, kept: list[int]) -> None:
    logits = PROBS.log()[:, [2, 0, 3, 1]]  # shuffled: the order must not matter
    position = [1, 3, 0, 2]  # where token i of PROBS went
    out = filter_logits(logits, top_k=top_k, top_p=top_p)
    finite = sorted(position.index(j) for j in out[0].isfinite().nonzero()[:, 0].tolist())
    assert finite == kept
    assert torch.equal(out[out.isfinite()], logits[out.isfinite()])  # kept values unchanged


def test_sampler_draws_only_kept_tokens_and_is_seeded() -> None:
    log_probs = PROBS.log().expand(2000, -1)
    pick = sampling_picker(temperature=1.0, top_k=0, top_p=0.8, generator=make_generator(0, CPU))
    drawn = pick(log_probs)
    assert set(drawn.tolist()) == {0, 1}
    assert abs((drawn == 0).float().mean().item() - 0.5 / 0.8) < 0.05
    again = sampling_picker(temperature=1.0, top_k=0, top_p=0.8, generator=make_generator(0, CPU))
    assert torch.equal(again(log_probs), drawn)
    cold = sampling_picker(temperature=1e-3, top_k=0, top_p=1.0, generator=make_generator(1, CPU))
    assert set(cold(log_probs).tolist()) == {0}


@pytest.mark.parametrize("temperature", [1e-30, 1e-300, 5e-324])
def test_tiny_temperature_gives_the_most_probable_token(temperature: float) -> None:
    """Logits / temperature overflow float32 here; the draw must still be the argmax."""
    log_probs = torch.tensor([[-40.0, -41.0, -60.0], [-90.0, -80.0, -85.0]])
    pick = sampling_picker(temperature=temperature, top_k=0, top_p=0.9, generator=None)
    assert pick(log_probs).tolist() == [0, 1]


@pytest.mark.parametrize("top_p", [1e-30, 1e-300])
def test_tiny_top_p_keeps_the_most_probable_token(top_p: float) -> None:
    """top_p rounds to 0 in float32 here; the most probable token must stay."""
    logits = torch.tensor([[-1.0, -0.5, -3.0]])
    assert filter_logits(logits, top_p=top_p).isfinite().tolist() == [[False, True, False]]
    pick = sampling_picker(temperature=1.0, top_k=0, top_p=top_p, generator=None)
    assert pick(logits.log_softmax(-1)).tolist() == [1]


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"temperature": 0.0}, "decoding.temperature"),
        ({"top_p": 0.0}, "decoding.top_p"),
        ({"top_p": 1.5}, "decoding.top_p"),
        ({"top_k": -1}, "decoding.top_k"),
    ],
)
def test_bad_sampling_options_name_the_key(options: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        sampling(**options)
