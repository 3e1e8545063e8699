"""Batched beam search.

All sentences of a batch search together: each keeps ``K`` live hypotheses,
held as rows ``b*K .. b*K+K-1`` of one (B*K, ...) batch.  At every step the
K*V continuations of a sentence are ranked by total log-probability; the
best 2K are taken, so that even when K of them end with ``<eos>`` there are K
others to continue.  An ``<eos>`` among the first K ends a hypothesis, scored
log P / lp (GNMT length penalty, Wu et al. 2016, eq. 14).

A sentence is done when it holds K finished hypotheses, when it reaches its
length limit, or when no live hypothesis can still beat its n-th best
finished one (log-probabilities only fall, so a live score divided by the
largest penalty it could reach bounds what it can become).  Done sentences
leave the batch, so a long sentence does not keep short ones computing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from nmt.decoding.greedy import output_limits
from nmt.decoding.hypothesis import Hypothesis, length_penalty
from nmt.models.interface import DecodingModel, Selectable

NEG_INF = float("-inf")


@dataclass
class _Live:
    """The sentences still searching, B' of them, K rows each."""

    sentence: list[int]  # each one's row in the input batch
    limits: list[int]  # each one's output budget (tokens before <eos>)
    scores: Tensor  # (B', K) summed log-probabilities
    tokens: Tensor  # (B'*K, t) ids so far
    attention: Tensor | None  # (B'*K, t, S) when kept
    state: Any  # the model's own decoder state, reordered only by the model
    enc: Selectable


@dataclass
class _Candidates:
    """The best 2K continuations of each live sentence, best first."""

    scores: Tensor  # (B', 2K)
    parent: Tensor  # (B', 2K) row in the live batch
    token: Tensor  # (B', 2K)


def _log_probs(
    logits: Tensor, t: int, live: _Live, *, min_len: int, eos_idx: int, beam_size: int
) -> Tensor:
    """Log-probabilities (B'*K, V): no <eos> before min_len, only <eos> at the limit."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    if t < min_len:
        log_probs[:, eos_idx] = NEG_INF
    at_limit = [i for i, limit in enumerate(live.limits) if limit <= t]
    if at_limit:
        rows = torch.tensor(at_limit)[:, None] * beam_size + torch.arange(beam_size)
        rows = rows.view(-1).to(logits.device)
        eos_scores = log_probs[rows, eos_idx]
        log_probs[rows] = NEG_INF
        log_probs[rows, eos_idx] = eos_scores
    return log_probs


def _top_candidates(scores: Tensor, log_probs: Tensor, beam_size: int) -> _Candidates:
    live, vocab = scores.size(0), log_probs.size(1)
    total = (scores.view(-1, 1) + log_probs).view(live, -1)  # (B', K*V)
    top_scores, flat = total.topk(min(2 * beam_size, total.size(1)), dim=1)
    first_row = torch.arange(live, device=scores.device)[:, None] * beam_size
    return _Candidates(top_scores, first_row + flat // vocab, flat % vocab)


def _finish(
    cands: _Candidates,
    live: _Live,
    finished: list[list[Hypothesis]],
    src_lengths: list[int],
    *,
    eos_idx: int,
    beam_size: int,
    alpha: float,
) -> None:
    """Store the hypotheses that end here: <eos> among the first K, finite score."""
    top = slice(0, beam_size)
    ends = (cands.token[:, top] == eos_idx) & cands.scores[:, top].isfinite()
    where = ends.nonzero().tolist()
    if not where:
        return
    parents = cands.parent[:, top][ends]
    ids = live.tokens.index_select(0, parents).tolist()
    scores = cands.scores[:, top][ends].tolist()
    attention = None if live.attention is None else live.attention[parents].cpu()
    penalty = length_penalty(live.tokens.size(1) + 1, alpha)
    for n, (b, _) in enumerate(where):
        sentence = live.sentence[b]
        attn = None if attention is None else attention[n, :, : src_lengths[sentence]]
        finished[sentence].append(Hypothesis(ids[n], scores[n] / penalty, attn))


def _is_done(
    hyps: list[Hypothesis], t: int, limit: int, best_live: float, *, k: int, n: int, alpha: float
) -> bool:
    if t >= limit or len(hyps) >= k:
        return True
    if len(hyps) < n:
        return False
    nth_best = sorted(h.score for h in hyps)[-n]
    return best_live / length_penalty(limit + 1, alpha) <= nth_best


def _next_beams(cands: _Candidates, *, eos_idx: int, k: int) -> Tensor:
    """Positions (B', K) of the first K candidates that do not end, best first."""
    n_cand = cands.token.size(1)
    rank = torch.arange(n_cand, device=cands.token.device)
    return ((cands.token == eos_idx).long() * n_cand + rank).argsort(dim=1)[:, :k]


def _advance(
    model: DecodingModel,
    live: _Live,
    cands: _Candidates,
    order: Tensor,
    keep: list[int],
    attn: Tensor | None,
    k: int,
) -> _Live:
    """The live batch of the next step: for the sentences ``keep`` (indices into
    the live ones), the beams ``order`` picked, with their histories and their
    states (reordered by the model)."""
    device = cands.token.device
    kept = torch.tensor(keep, device=device)
    order = order.index_select(0, kept)
    parent = cands.parent.index_select(0, kept).gather(1, order).view(-1)
    token = cands.token.index_select(0, kept).gather(1, order).view(-1, 1)
    attention = None
    if live.attention is not None and attn is not None:
        step = attn.float().index_select(0, parent)[:, None]
        attention = torch.cat([live.attention.index_select(0, parent), step], dim=1)
    enc = live.enc
    if len(keep) < len(live.sentence):
        enc = enc.select((kept[:, None] * k + torch.arange(k, device=device)).view(-1))
    return _Live(
        sentence=[live.sentence[i] for i in keep],
        limits=[live.limits[i] for i in keep],
        scores=cands.scores.index_select(0, kept).gather(1, order),
        tokens=torch.cat([live.tokens.index_select(0, parent), token], dim=1),
        attention=attention,
        state=model.reorder_state(live.state, parent),
        enc=enc,
    )


def _start(
    model: DecodingModel,
    src: Tensor,
    src_lengths: Tensor,
    limits: list[int],
    k: int,
    keep_attention: bool,
) -> _Live:
    """Encode once, then copy every sentence's encoding and state to its K rows;
    only the first row of each starts live, so step 0 expands one hypothesis."""
    batch, device = src.size(0), src.device
    enc = model.encode(src, src_lengths)
    state = model.init_state(enc, max(limits) + 1)  # +1 for <eos>
    rows = torch.arange(batch, device=device).repeat_interleave(k)
    scores = torch.full((batch, k), NEG_INF, device=device)
    scores[:, 0] = 0.0
    return _Live(
        sentence=list(range(batch)),
        limits=limits,
        scores=scores,
        tokens=torch.empty(batch * k, 0, dtype=torch.long, device=device),
        attention=torch.empty(batch * k, 0, src.size(1), device=device) if keep_attention else None,
        state=model.reorder_state(state, rows),
        enc=enc.select(rows),
    )


@torch.no_grad()
def beam_search(
    model: DecodingModel,
    src: Tensor,
    src_lengths: Tensor,
    *,
    bos_idx: int,
    eos_idx: int,
    beam_size: int = 5,
    n_best: int = 1,
    max_len: int = 100,
    max_len_ratio: float | None = None,
    min_len: int = 0,
    length_penalty: float = 0.0,
    keep_attention: bool = False,
) -> list[list[Hypothesis]]:
    """Beam search over a batch src (B, S); per sentence, its ``n_best`` best
    hypotheses, best first.  ``beam_size=1`` gives greedy's output."""
    k, alpha = beam_size, length_penalty
    limits = output_limits(src_lengths, max_len, max_len_ratio, min_len).tolist()
    src_lens = src_lengths.tolist()
    live = _start(model, src, src_lengths, limits, k, keep_attention)
    finished: list[list[Hypothesis]] = [[] for _ in src_lens]
    for t in range(max(limits) + 1):
        y = live.tokens[:, -1] if t else live.tokens.new_full((live.tokens.size(0),), bos_idx)
        logits, live.state, attn = model.decode_step(y, live.state, live.enc)
        if attn is None:
            live.attention = None
        log_probs = _log_probs(logits, t, live, min_len=min_len, eos_idx=eos_idx, beam_size=k)
        cands = _top_candidates(live.scores, log_probs, k)
        _finish(cands, live, finished, src_lens, eos_idx=eos_idx, beam_size=k, alpha=alpha)
        order = _next_beams(cands, eos_idx=eos_idx, k=k)
        best_live = [NEG_INF] * len(live.sentence)
        if any(len(finished[s]) >= n_best for s in live.sentence):
            best_live = cands.scores.gather(1, order[:, :1])[:, 0].tolist()
        keep = [
            i
            for i, s in enumerate(live.sentence)
            if not _is_done(
                finished[s], t, live.limits[i], best_live[i], k=k, n=n_best, alpha=alpha
            )
        ]
        if not keep:
            break
        live = _advance(model, live, cands, order, keep, attn, k)
    return [sorted(hyps, key=lambda h: -h.score)[:n_best] for hyps in finished]
