"""Tests for nmt.metrics: perplexity, sacreBLEU / chrF with signatures."""

from __future__ import annotations

import math

import pytest
import sacrebleu
from hypothesis import given
from hypothesis import strategies as st

from nmt.metrics import perplexity, score_translations, tokenized_bleu

HYPS = [
    "A man is riding a bike down the street.",
    "Two dogs play in the grass .",
    "a woman in a red dress",
    "The children are smiling at the camera!",
]
REFS = [
    "A man rides a bicycle down the street.",
    "Two dogs are playing in the grass.",
    "A woman in a red dress is dancing.",
    "The children smile at the camera.",
]


# ------------------------------------------------------------------ perplexity


@given(
    st.lists(st.floats(min_value=0.0, max_value=20.0), min_size=1, max_size=50),
)
def test_perplexity_is_exp_of_mean_nll(token_nlls: list[float]) -> None:
    total = sum(token_nlls)
    expected = math.exp(total / len(token_nlls))
    assert perplexity(total, len(token_nlls)) == pytest.approx(expected, rel=1e-9)


def test_perplexity_of_a_uniform_model_is_the_vocab_size() -> None:
    vocab, tokens = 37, 123
    assert perplexity(tokens * math.log(vocab), tokens) == pytest.approx(vocab)


def test_perplexity_without_tokens_is_nan() -> None:
    assert math.isnan(perplexity(0.0, 0))


def test_perplexity_overflow_is_inf_not_an_error() -> None:
    assert perplexity(1e6, 1) == math.inf


# ------------------------------------------------------------------ BLEU, chrF


def test_bleu_equals_sacrebleu() -> None:
    scores = score_translations(HYPS, REFS)
    expected = sacrebleu.corpus_bleu(HYPS, [REFS])
    assert scores.bleu == pytest.approx(expected.score, abs=0.005)
    assert 0.0 < scores.bleu < 100.0  # a non-trivial case


def test_lowercase_bleu_equals_sacrebleu() -> None:
    scores = score_translations(HYPS, REFS)
    expected = sacrebleu.corpus_bleu(HYPS, [REFS], lowercase=True)
    assert scores.bleu_lc == pytest.approx(expected.score, abs=0.005)
    # case differences exist in HYPS, so lower-casing can only help
    assert scores.bleu_lc >= scores.bleu


def test_chrf_equals_sacrebleu() -> None:
    scores = score_translations(HYPS, REFS)
    expected = sacrebleu.corpus_chrf(HYPS, [REFS])
    assert scores.chrf == pytest.approx(expected.score, abs=0.005)


def test_signatures() -> None:
    scores = score_translations(HYPS, REFS)
    bleu = sacrebleu.metrics.BLEU()
    bleu.corpus_score(HYPS, [REFS])
    assert scores.bleu_signature == str(bleu.get_signature())
    assert f"version:{sacrebleu.__version__}" in scores.bleu_signature
    assert "tok:13a" in scores.bleu_signature and "case:mixed" in scores.bleu_signature
    assert f"version:{sacrebleu.__version__}" in scores.chrf_signature
    assert scores.chrf_signature != scores.bleu_signature


def test_identical_and_disjoint_text() -> None:
    same = score_translations(REFS, REFS)
    assert same.bleu == pytest.approx(100.0) and same.chrf == pytest.approx(100.0)
    disjoint = score_translations(["xyz qqq"] * len(REFS), REFS)
    assert disjoint.bleu == pytest.approx(0.0)


@pytest.mark.parametrize("hyps, refs", [(HYPS[:3], REFS), (HYPS, REFS[:1]), ([], REFS)])
def test_count_mismatch_raises(hyps: list[str], refs: list[str]) -> None:
    with pytest.raises(ValueError, match=rf"{len(hyps)} hypotheses but {len(refs)} references"):
        score_translations(hyps, refs)


def test_tokenized_bleu_is_case_insensitive_and_labelled_separately() -> None:
    hyp_tokens = [h.split() for h in HYPS]
    ref_tokens = [r.split() for r in REFS]
    upper = [[t.upper() for t in toks] for toks in hyp_tokens]
    assert tokenized_bleu(upper, ref_tokens) == tokenized_bleu(hyp_tokens, ref_tokens)
    expected = sacrebleu.corpus_bleu(
        [" ".join(t).lower() for t in hyp_tokens],
        [[" ".join(t).lower() for t in ref_tokens]],
        tokenize="none",
        force=True,
    )
    assert tokenized_bleu(hyp_tokens, ref_tokens) == pytest.approx(expected.score, abs=0.005)


def test_empty_corpus_scores_zero_with_signatures() -> None:
    # `nmt train trainer.bleu_every_epoch=false` validates with no decoded lines
    scores = score_translations([], [])
    assert (scores.bleu, scores.bleu_lc, scores.chrf) == (0.0, 0.0, 0.0)
    assert scores.bleu_signature == score_translations(HYPS, REFS).bleu_signature
    assert scores.chrf_signature == score_translations(HYPS, REFS).chrf_signature
    assert tokenized_bleu([], []) == 0.0


# ------------------------------------------------------------- papers' BLEU


def test_papers_bleu_lowercases_and_moses_tokenizes_both_sides() -> None:
    from nmt.metrics import moses_bleu_lc

    hyps = ["A dog, running!", "Two MEN sit."]
    refs = ["a dog , running !", "two men sit ."]
    # sacreBLEU's 13a splits these the same way; case alone keeps it below 100
    assert score_translations(hyps, refs).bleu < 100.0
    assert moses_bleu_lc(hyps, refs, "en") == pytest.approx(100.0)
    # Moses keeps "don't" as "don 't" in English; the same text on both sides matches
    assert moses_bleu_lc(["I don't know."], ["i don't know ."], "en") == pytest.approx(100.0)
    assert moses_bleu_lc(HYPS, REFS, "en") < 100.0
    assert moses_bleu_lc([], [], "en") == 0.0


def test_papers_bleu_uses_the_target_languages_rules() -> None:
    from nmt.metrics import moses_bleu_lc

    assert moses_bleu_lc(["Ein Hund läuft."], ["ein hund läuft ."], "de") == pytest.approx(100.0)
    assert moses_bleu_lc(["Un chien, qui court."], ["un chien , qui court ."], "fr") == 100.0
    assert moses_bleu_lc(
        ["Dva psi běží po trávě."], ["dva psi běží po trávě ."], "cs"
    ) == pytest.approx(100.0)
