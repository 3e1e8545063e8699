"""Translating raw lines with a trained model.

``translate_nbest`` tokenizes and encodes the lines (``TextPipeline``), runs
the search ``DecodingConfig`` asks for over length-sorted batches, puts the
hypotheses back in input order and turns them into :class:`Translation`
objects, replacing ``<unk>`` by the most attended source word when asked.
``translate_texts`` keeps only the best text of each line; ``translate_ids``
works on ids that are already encoded.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch
from tqdm.auto import tqdm

from nmt.config import DecodingConfig
from nmt.data.batching import collate, length_sorted_chunks
from nmt.data.pipeline import TextPipeline
from nmt.data.vocab import Vocab
from nmt.decoding.hypothesis import Hypothesis
from nmt.decoding.sampling import make_generator
from nmt.decoding.search import search
from nmt.models.interface import DecodingModel

log = logging.getLogger(__name__)


@torch.no_grad()
def translate_hypotheses(
    model: DecodingModel,
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
    decoding = cap_beam(decoding, len(vocab))
    results: list[list[Hypothesis]] = [[] for _ in src_ids]
    todo = [i for i, ids in enumerate(src_ids) if ids]
    chunks = length_sorted_chunks([len(src_ids[i]) for i in todo], decoding.batch_size)
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


def cap_beam(decoding: DecodingConfig, vocab_size: int) -> DecodingConfig:
    """``decoding`` with beam_size (and n_best) at most the target vocabulary
    size: a wider beam only holds copies of impossible hypotheses."""
    if decoding.beam_size <= vocab_size:
        return decoding
    return replace(decoding, beam_size=vocab_size, n_best=min(decoding.n_best, vocab_size))


def translate_ids(
    model: DecodingModel,
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
    model: DecodingModel,
    texts: Sequence[str],
    pipeline: TextPipeline,
    decoding: DecodingConfig,
    device: torch.device,
    *,
    progress: bool = False,
    keep_attention: bool = False,
    first_line: int = 1,
) -> list[list[Translation]]:
    """Translate raw lines: exactly ``decoding.n_best`` translations per line,
    best first (an empty line gets empty ones).  Warnings number the lines from
    ``first_line`` (a stream's batches go on counting from its start)."""
    src_tokens, cut = pipeline.tokenize_sources(texts)
    if cut:
        numbers = [n + first_line - 1 for n in cut[:10]]
        shown = ", ".join(map(str, numbers)) + (" ..." if len(cut) > 10 else "")
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
    model: DecodingModel,
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
