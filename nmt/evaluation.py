"""Text in, text out: translating and scoring with a trained model.

``TextPipeline`` holds what turns raw text into ids and ids back into text
(tokenizers and vocabularies); ``translate_texts`` and ``evaluate`` run a
model over raw sentences in length-sorted batches and restore input order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from nmt.config import DecodingConfig
from nmt.data.batching import Batch, collate
from nmt.data.tokenizer import Tokenizer
from nmt.data.vocab import Vocab
from nmt.decoding.greedy import greedy_decode
from nmt.metrics import perplexity, score_translations, tokenized_bleu
from nmt.models.seq2seq import Seq2Seq

log = logging.getLogger(__name__)


@dataclass
class TextPipeline:
    """Tokenizers and vocabularies of a model: raw text <-> ids."""

    src_tokenizer: Tokenizer
    tgt_tokenizer: Tokenizer
    src_vocab: Vocab
    tgt_vocab: Vocab
    max_src_len: int = 100

    def encode_sources(self, texts: Sequence[str]) -> tuple[list[list[int]], list[int]]:
        """Ids of each source line (cut to ``max_src_len`` tokens) and the
        1-based numbers of the lines that were cut."""
        ids, cut = [], []
        for number, tokens in enumerate(self.src_tokenizer.tokenize_many(list(texts)), 1):
            if len(tokens) > self.max_src_len:
                cut.append(number)
                # keep the sentence's beginning even when the model reads it reversed
                tokens = (
                    tokens[-self.max_src_len :]
                    if self.src_tokenizer.reverse
                    else tokens[: self.max_src_len]
                )
            ids.append(self.src_vocab.encode(tokens, add_bos=False, add_eos=False))
        return ids, cut

    def encode_pairs(
        self, src: Sequence[str], tgt: Sequence[str]
    ) -> list[tuple[list[int], list[int]]]:
        src_ids, _ = self.encode_sources(src)
        tgt_ids = [
            self.tgt_vocab.encode(t, add_bos=False, add_eos=False)
            for t in self.tgt_tokenizer.tokenize_many(list(tgt))
        ]
        return list(zip(src_ids, tgt_ids, strict=True))

    def decode(self, ids: Sequence[int]) -> str:
        return self.tgt_tokenizer.detokenize(self.tgt_vocab.decode(ids))

    def state(self) -> dict[str, Any]:
        """Plain data for a checkpoint."""
        return {
            "src_tokenizer": self.src_tokenizer.to_dict(),
            "tgt_tokenizer": self.tgt_tokenizer.to_dict(),
            "src_vocab": self.src_vocab.to_dict(),
            "tgt_vocab": self.tgt_vocab.to_dict(),
            "max_src_len": self.max_src_len,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TextPipeline:
        return cls(
            src_tokenizer=Tokenizer.from_dict(state["src_tokenizer"]),
            tgt_tokenizer=Tokenizer.from_dict(state["tgt_tokenizer"]),
            src_vocab=Vocab.from_dict(state["src_vocab"]),
            tgt_vocab=Vocab.from_dict(state["tgt_vocab"]),
            max_src_len=int(state.get("max_src_len", 100)),
        )


def _length_sorted_chunks(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@torch.no_grad()
def translate_ids(
    model: Seq2Seq,
    src_ids: Sequence[list[int]],
    pipeline: TextPipeline,
    decoding: DecodingConfig,
    device: torch.device,
    *,
    progress: bool = False,
) -> list[list[int]]:
    """Greedy-decode every source (ids) in length-sorted batches; input order kept.

    An empty source gives an empty output without running the model.
    """
    model.eval()
    vocab = pipeline.tgt_vocab
    results: list[list[int]] = [[] for _ in src_ids]
    todo = [i for i, ids in enumerate(src_ids) if ids]
    chunks = _length_sorted_chunks([len(src_ids[i]) for i in todo], decoding.batch_size)
    bar = tqdm(total=len(todo), desc="translate", unit="sent", disable=not progress)
    for chunk in chunks:
        positions = [todo[i] for i in chunk]
        batch = collate(
            [(src_ids[p], []) for p in positions],
            positions,
            pad_idx=pipeline.src_vocab.pad_idx,
            bos_idx=vocab.bos_idx,
            eos_idx=vocab.eos_idx,
        ).to(device)
        out, _ = greedy_decode(
            model,
            batch.src,
            batch.src_lengths,
            bos_idx=vocab.bos_idx,
            eos_idx=vocab.eos_idx,
            max_len=decoding.max_len,
            max_len_ratio=decoding.max_len_ratio,
        )
        for row, position in zip(out.tolist(), positions, strict=True):
            results[position] = row
        bar.update(len(positions))
    bar.close()
    return results


def translate_texts(
    model: Seq2Seq,
    texts: Sequence[str],
    pipeline: TextPipeline,
    decoding: DecodingConfig,
    device: torch.device,
    *,
    progress: bool = False,
) -> list[str]:
    """Translate raw lines; output line i translates input line i."""
    src_ids, cut = pipeline.encode_sources(texts)
    if cut:
        shown = ", ".join(map(str, cut[:10])) + (" ..." if len(cut) > 10 else "")
        log.warning(
            "%d line(s) longer than %d tokens were cut: line %s",
            len(cut),
            pipeline.max_src_len,
            shown,
        )
    outputs = translate_ids(model, src_ids, pipeline, decoding, device, progress=progress)
    return [pipeline.decode(ids) if ids else "" for ids in outputs]


@torch.no_grad()
def teacher_forced_nll(
    model: Seq2Seq,
    examples: Sequence[tuple[list[int], list[int]]],
    pipeline: TextPipeline,
    device: torch.device,
    batch_size: int = 128,
) -> tuple[float, int]:
    """Summed NLL (nats) of the references under teacher forcing, and the number
    of target tokens counted (``<eos>`` in, padding out)."""
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)
    tokens = 0
    for chunk in _length_sorted_chunks([len(s) for s, _ in examples], batch_size):
        batch = make_batch([examples[i] for i in chunk], chunk, pipeline).to(device)
        total += sequence_nll(model, batch).double()
        tokens += batch.ntokens
    return float(total.item()), tokens


def make_batch(
    examples: Sequence[tuple[list[int], list[int]]], indices: Sequence[int], pipeline: TextPipeline
) -> Batch:
    vocab = pipeline.tgt_vocab
    return collate(
        examples,
        indices,
        pad_idx=vocab.pad_idx,
        bos_idx=vocab.bos_idx,
        eos_idx=vocab.eos_idx,
    )


def sequence_nll(model: Seq2Seq, batch: Batch, teacher_forcing: float = 1.0) -> torch.Tensor:
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
    model: Seq2Seq,
    pipeline: TextPipeline,
    src_texts: Sequence[str],
    ref_texts: Sequence[str],
    decoding: DecodingConfig,
    device: torch.device,
    *,
    progress: bool = False,
    max_decode: int | None = None,
    decode_fn: Callable[..., list[str]] | None = None,
) -> EvalReport:
    """Perplexity of the references, then sacreBLEU/chrF of greedy translations
    (detokenized) against the raw references.  ``max_decode`` limits how many
    lines are translated (for quick validation)."""
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
        bleu_tok_lc=tokenized_bleu(tok.tokenize_many(hyps), tok.tokenize_many(refs)),
        chrf=scores.chrf,
        signature=scores.bleu_signature,
        chrf_signature=scores.chrf_signature,
        num_sentences=n,
        num_tokens=tokens,
        hypotheses=hyps,
    )
