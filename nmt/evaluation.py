"""Scoring a trained model on raw parallel text.

``evaluate`` gives the teacher-forced loss and perplexity of the references
and sacreBLEU / chrF of the model's translations (``nmt.translation``), as an
:class:`EvalReport`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from nmt.config import DecodingConfig
from nmt.data.batching import Batch, Example, collate, length_sorted_chunks
from nmt.data.pipeline import TextPipeline
from nmt.metrics import moses_bleu_lc, perplexity, score_translations, tokenized_bleu
from nmt.models.interface import DecodingModel
from nmt.translation import translate_texts


@torch.no_grad()
def teacher_forced_nll(
    model: DecodingModel,
    examples: Sequence[Example],
    pipeline: TextPipeline,
    device: torch.device,
    batch_size: int = 128,
) -> tuple[float, int]:
    """Summed NLL (nats) of the references under teacher forcing, and the number
    of target tokens counted (``<eos>`` in, padding out)."""
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)
    tokens = 0
    for chunk in length_sorted_chunks([len(s) for s, _ in examples], batch_size):
        batch = make_batch([examples[i] for i in chunk], chunk, pipeline).to(device)
        total += sequence_nll(model, batch).double()
        tokens += batch.ntokens
    return float(total.item()), tokens


def make_batch(
    examples: Sequence[Example], indices: Sequence[int], pipeline: TextPipeline
) -> Batch:
    vocab = pipeline.tgt_vocab
    return collate(
        examples,
        indices,
        pad_idx=vocab.pad_idx,
        bos_idx=vocab.bos_idx,
        eos_idx=vocab.eos_idx,
    )


def sequence_nll(model: DecodingModel, batch: Batch, teacher_forcing: float = 1.0) -> torch.Tensor:
    """Summed token NLL of a batch (padding ignored), as a 0-dim tensor."""
    logits = model(batch.src, batch.src_lengths, batch.tgt_in, teacher_forcing=teacher_forcing)
    return F.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(),
        batch.tgt_out.reshape(-1),
        ignore_index=model.tgt_pad,
        reduction="sum",
    )


@dataclass
class EvalReport:
    loss: float
    ppl: float
    bleu: float
    bleu_lc: float
    bleu_tok_lc: float  # tutorials' tokenized, lower-cased BLEU (labelled, not comparable)
    bleu_moses_lc: float  # papers': lower-cased, Moses-tokenized BLEU (labelled)
    chrf: float
    signature: str
    chrf_signature: str
    num_sentences: int
    num_tokens: int
    hypotheses: list[str] = field(repr=False, default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Everything but the hypotheses, as JSON-able data."""
        data = dict(self.__dict__)
        data.pop("hypotheses")
        return data


def evaluate(
    model: DecodingModel,
    pipeline: TextPipeline,
    src_texts: Sequence[str],
    ref_texts: Sequence[str],
    decoding: DecodingConfig,
    device: torch.device,
    *,
    progress: bool = False,
    max_decode: int | None = None,
    decode_fn: Callable[..., list[str]] | None = None,
    examples: Sequence[Example] | None = None,
) -> EvalReport:
    """Perplexity of the references, then sacreBLEU/chrF of greedy translations
    (detokenized) against the raw references.  ``max_decode`` limits how many
    lines are translated (for quick validation).  ``examples``: the pairs'
    ids when they are encoded already (the prepared store's)."""
    if examples is None:
        examples = pipeline.encode_pairs(src_texts, ref_texts)
    nll, tokens = teacher_forced_nll(model, examples, pipeline, device, decoding.batch_size)
    n = len(src_texts) if max_decode is None else min(max_decode, len(src_texts))
    translate = decode_fn or translate_texts
    hyps = translate(model, list(src_texts[:n]), pipeline, decoding, device, progress=progress)
    refs = list(ref_texts[:n])
    scores = score_translations(hyps, refs)
    tok = pipeline.tgt_tokenizer
    return EvalReport(
        loss=nll / max(tokens, 1),
        ppl=perplexity(nll, tokens),
        bleu=scores.bleu,
        bleu_lc=scores.bleu_lc,
        bleu_tok_lc=tokenized_bleu(tok.words(hyps), tok.words(refs)),
        bleu_moses_lc=moses_bleu_lc(hyps, refs, tok.lang),
        chrf=scores.chrf,
        signature=scores.bleu_signature,
        chrf_signature=scores.chrf_signature,
        num_sentences=n,
        num_tokens=tokens,
        hypotheses=hyps,
    )
