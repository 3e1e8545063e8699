"""Perplexity, sacreBLEU and chrF, and the labelled other BLEU flavours."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

from sacrebleu.metrics import BLEU, CHRF


def perplexity(total_nll: float, num_tokens: int) -> float:
    """exp of the mean negative log-likelihood per target token (nats)."""
    if num_tokens <= 0:
        return float("nan")
    mean = total_nll / num_tokens
    return math.exp(mean) if mean < 700 else float("inf")


@dataclass
class TranslationScores:
    bleu: float
    bleu_signature: str
    bleu_lc: float  # sacreBLEU, lower-cased, same tokenisation (13a)
    chrf: float
    chrf_signature: str


def score_translations(hypotheses: list[str], references: list[str]) -> TranslationScores:
    """sacreBLEU (13a, case-sensitive), lower-cased BLEU and chrF on detokenized text."""
    if len(hypotheses) != len(references):
        raise ValueError(
            f"{len(hypotheses)} hypotheses but {len(references)} references: counts must match"
        )
    bleu = BLEU()
    chrf = CHRF()
    if not hypotheses:
        # sacreBLEU cannot score an empty corpus (IndexError); score 0, but still
        # give the signatures (they need one scored call to know the nrefs)
        bleu.corpus_score([""], [[""]])
        chrf.corpus_score([""], [[""]])
        return TranslationScores(
            0.0, str(bleu.get_signature()), 0.0, 0.0, str(chrf.get_signature())
        )
    bleu_score = bleu.corpus_score(hypotheses, [references])
    bleu_lc = BLEU(lowercase=True).corpus_score(hypotheses, [references])
    chrf_score = chrf.corpus_score(hypotheses, [references])
    return TranslationScores(
        bleu=round(bleu_score.score, 2),
        bleu_signature=str(bleu.get_signature()),
        bleu_lc=round(bleu_lc.score, 2),
        chrf=round(chrf_score.score, 2),
        chrf_signature=str(chrf.get_signature()),
    )


def tokenized_bleu(hyp_tokens: list[list[str]], ref_tokens: list[list[str]]) -> float:
    """BLEU on already tokenized, lower-cased text: the tutorials' way of counting.

    Not comparable with sacreBLEU; reported beside it, labelled.
    """
    if not hyp_tokens:
        return 0.0
    hyps = [" ".join(t).lower() for t in hyp_tokens]
    refs = [" ".join(t).lower() for t in ref_tokens]
    return round(BLEU(tokenize="none", force=True).corpus_score(hyps, [refs]).score, 2)


@cache
def _moses_tokenizer(lang: str) -> Any:
    from sacremoses import MosesTokenizer

    return MosesTokenizer(lang=lang)


def moses_bleu_lc(hypotheses: list[str], references: list[str], lang: str) -> float:
    """The papers' Multi30k BLEU: both sides lower-cased and Moses-tokenized
    (sacremoses, ``lang`` rules, no escaping, no aggressive hyphen splitting),
    then scored as they are (multi-bleu style, sacreBLEU ``tokenize=none``).

    Not comparable with sacreBLEU; reported beside it, labelled.
    """
    if not hypotheses:
        return 0.0
    tok = _moses_tokenizer(lang)

    def prepare(lines: list[str]) -> list[str]:
        return [tok.tokenize(line.lower(), escape=False, return_str=True) for line in lines]

    bleu = BLEU(tokenize="none", force=True)
    return round(bleu.corpus_score(prepare(hypotheses), [prepare(references)]).score, 2)
