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
from nmt.decoding.hypothesis import Hypothesis
from nmt.decoding.sampling import make_generator
from nmt.decoding.search import search
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

    def tokenize_sources(self, texts: Sequence[str]) -> tuple[list[list[str]], list[int]]:
        """Tokens of each source line in the order the model reads them (cut to
        ``max_src_len``), and the 1-based numbers of the lines that were cut."""
        result, cut = [], []
        for number, tokens in enumerate(self.src_tokenizer.tokenize_many(list(texts)), 1):
            if len(tokens) > self.max_src_len:
                cut.append(number)
                # keep the sentence's beginning even when the model reads it reversed
                tokens = (
                    tokens[-self.max_src_len :]
                    if self.src_tokenizer.reverse
                    else tokens[: self.max_src_len]
                )
            result.append(tokens)
        return result, cut

    def encode_sources(self, texts: Sequence[str]) -> tuple[list[list[int]], list[int]]:
        """Ids of each source line (cut to ``max_src_len`` tokens) and the
        1-based numbers of the lines that were cut."""
        tokens, cut = self.tokenize_sources(texts)
        return [self.src_vocab.encode(t, add_bos=False, add_eos=False) for t in tokens], cut

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
def translate_hypotheses(
    model: Seq2Seq,
    src_ids: Sequence[list[int]],
    pipeline: TextPipeline,
    decoding: DecodingConfig,
    device: torch.device,
    *,
    progress: bool = False,
    keep_attention: bool = False,
) -> list[list[Hypothesis]]:
    """Decode every source (ids) as ``decoding`` says, in length-sorted batches;
    input order kept.  An empty source gets no hypotheses, without running the model."""
    model.eval()
    vocab = pipeline.tgt_vocab
    results: list[list[Hypothesis]] = [[] for _ in src_ids]
    todo = [i for i, ids in enumerate(src_ids) if ids]
    chunks = _length_sorted_chunks([len(src_ids[i]) for i in todo], decoding.batch_size)
    generator = make_generator(decoding.seed, device)  # one stream for the whole input
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
        found = search(
            model,
            batch.src,
            batch.src_lengths,
            bos_idx=vocab.bos_idx,
            eos_idx=vocab.eos_idx,
            decoding=decoding,
            keep_attention=keep_attention,
            generator=generator,
        )
        for hyps, position in zip(found, positions, strict=True):
            results[position] = hyps
        bar.update(len(positions))
    bar.close()
    return results


def translate_ids(
    model: Seq2Seq,
    src_ids: Sequence[list[int]],
    pipeline: TextPipeline,
    decoding: DecodingConfig,
    device: torch.device,
    *,
    progress: bool = False,
) -> list[list[int]]:
    """The best output ids (no ``<bos>``/``<eos>``) of every source; input order kept."""
    found = translate_hypotheses(model, src_ids, pipeline, decoding, device, progress=progress)
    return [hyps[0].ids if hyps else [] for hyps in found]


@dataclass
class Translation:
    """One hypothesis of one input line, as text.

    tokens: output tokens (``<unk>`` replaced when asked); src_tokens: the
    source tokens in the order the model read them; attention: (len(tokens),
    len(src_tokens)) on the CPU, or None.
    """

    text: str
    score: float
    tokens: list[str] = field(default_factory=list)
    src_tokens: list[str] = field(default_factory=list)
    attention: torch.Tensor | None = field(default=None, repr=False)


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning(message)


def output_tokens(
    ids: Sequence[int],
    vocab: Vocab,
    *,
    attention: torch.Tensor | None = None,
    src_tokens: Sequence[str] = (),
) -> list[str]:
    """Tokens of output ids; with ``attention`` (T, S) and ``src_tokens`` given,
    each ``<unk>`` becomes the source token most attended at its step
    (unknown-word replacement, Luong et al. 2015, "Addressing the rare word
    problem", without a dictionary: the source word is copied)."""
    tokens = []
    for step, idx in enumerate(ids):
        if idx in (vocab.bos_idx, vocab.pad_idx):
            continue
        if idx == vocab.unk_idx and attention is not None and src_tokens:
            tokens.append(src_tokens[int(attention[step].argmax())])
        else:
            tokens.append(vocab.itos[idx])
    return tokens


def _to_translation(
    hyp: Hypothesis, src_tokens: list[str], pipeline: TextPipeline, replace_unk: bool
) -> Translation:
    vocab = pipeline.tgt_vocab
    attention = hyp.attention if replace_unk else None
    if replace_unk and hyp.attention is None and vocab.unk_idx in hyp.ids:
        _warn_once("decoding.replace_unk=true, but this model has no attention: <unk> kept")
    tokens = output_tokens(hyp.ids, vocab, attention=attention, src_tokens=src_tokens)
    text = pipeline.tgt_tokenizer.detokenize(tokens) if tokens else ""
    shown = [i for i, idx in enumerate(hyp.ids) if idx not in (vocab.bos_idx, vocab.pad_idx)]
    weights = hyp.attention
    if weights is not None and len(shown) < len(hyp.ids):  # keep rows aligned with tokens
        weights = weights[shown]
    return Translation(text, hyp.score, tokens, src_tokens, weights)


def translate_nbest(
    model: Seq2Seq,
    texts: Sequence[str],
    pipeline: TextPipeline,
    decoding: DecodingConfig,
    device: torch.device,
    *,
    progress: bool = False,
    keep_attention: bool = False,
) -> list[list[Translation]]:
    """Translate raw lines: exactly ``decoding.n_best`` translations per line,
    best first (an empty line gets empty ones)."""
    src_tokens, cut = pipeline.tokenize_sources(texts)
    if cut:
        shown = ", ".join(map(str, cut[:10])) + (" ..." if len(cut) > 10 else "")
        log.warning(
            "%d line(s) longer than %d tokens were cut: line %s",
            len(cut),
            pipeline.max_src_len,
            shown,
        )
    src_ids = [pipeline.src_vocab.encode(t, add_bos=False, add_eos=False) for t in src_tokens]
    found = translate_hypotheses(
        model,
        src_ids,
        pipeline,
        decoding,
        device,
        progress=progress,
        keep_attention=keep_attention or decoding.replace_unk,
    )
    result = []
    for hyps, tokens in zip(found, src_tokens, strict=True):
        line = [_to_translation(h, tokens, pipeline, decoding.replace_unk) for h in hyps]
        missing = decoding.n_best - len(line)  # empty lines; a beam that ran out
        line += [Translation("", 0.0 if not hyps else float("-inf"))] * missing
        result.append(line[: decoding.n_best])
    return result


def translate_texts(
    model: Seq2Seq,
    texts: Sequence[str],
    pipeline: TextPipeline,
    decoding: DecodingConfig,
    device: torch.device,
    *,
    progress: bool = False,
) -> list[str]:
    """Translate raw lines; output line i is the best translation of input line i."""
    found = translate_nbest(model, texts, pipeline, decoding, device, progress=progress)
    return [line[0].text for line in found]


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
