"""Vocabulary: token <-> id, with four special tokens at ids 0..3.

The specials come first, in the order unk, pad, bos, eos (so with the default
names ``<unk>=0 <pad>=1 <bos>=2 <eos>=3``); ordinary tokens follow, most
frequent first, ties broken by the token's text, so that the same data always
gives the same ids.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from nmt.config import VocabConfig

logger = logging.getLogger(__name__)


class Vocab:
    """A fixed token list; ``itos[i]`` is the token with id ``i``.

    ``itos`` may be given with or without the specials: they are put first (in
    the order unk, pad, bos, eos) and taken out of the rest of the list.  Any
    other token listed twice is an error.
    """

    def __init__(
        self,
        itos: list[str],
        unk: str = "<unk>",
        pad: str = "<pad>",
        bos: str = "<bos>",
        eos: str = "<eos>",
    ) -> None:
        specials = [unk, pad, bos, eos]
        if len(set(specials)) != 4:
            raise ValueError(f"vocab specials must be four distinct strings, got {specials}")
        rest = [tok for tok in itos if tok not in specials]
        self.itos: list[str] = specials + rest
        self.stoi: dict[str, int] = {tok: i for i, tok in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            dupes = sorted(tok for tok, n in Counter(rest).items() if n > 1)
            raise ValueError(f"vocab lists these tokens twice: {dupes[:10]}")
        self.unk, self.pad, self.bos, self.eos = specials
        self.unk_idx, self.pad_idx, self.bos_idx, self.eos_idx = 0, 1, 2, 3

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocab):
            return NotImplemented
        return self.itos == other.itos

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, specials={self.itos[:4]})"

    @classmethod
    def build(cls, sentences: Iterable[list[str]], cfg: VocabConfig) -> Vocab:
        """Count tokens; keep those seen ``min_freq`` times, at most ``max_size``."""
        counts: Counter[str] = Counter()
        for tokens in sentences:
            counts.update(tokens)
        return cls.from_counts(counts, cfg)

    @classmethod
    def from_counts(cls, counts: Mapping[str, int], cfg: VocabConfig) -> Vocab:
        """The tokens of ``counts`` seen ``min_freq`` times, most frequent first
        (ties by text), at most ``max_size``."""
        specials = {cfg.unk, cfg.pad, cfg.bos, cfg.eos}
        kept = [(tok, n) for tok, n in counts.items() if n >= cfg.min_freq and tok not in specials]
        kept.sort(key=lambda item: (-item[1], item[0]))
        if cfg.max_size is not None:
            kept = kept[: cfg.max_size]
        vocab = cls([tok for tok, _ in kept], cfg.unk, cfg.pad, cfg.bos, cfg.eos)
        logger.info(
            "vocab: %d tokens (%d distinct seen, min_freq=%d, max_size=%s)",
            len(vocab),
            len(counts),
            cfg.min_freq,
            cfg.max_size,
        )
        return vocab

    def encode(self, tokens: list[str], add_bos: bool = False, add_eos: bool = True) -> list[int]:
        """Ids of ``tokens``; unknown tokens get ``unk_idx``."""
        unk = self.unk_idx
        ids = [self.stoi.get(tok, unk) for tok in tokens]
        if add_bos:
            ids.insert(0, self.bos_idx)
        if add_eos:
            ids.append(self.eos_idx)
        return ids

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens up to the first eos; bos and pad are dropped, unk is kept."""
        tokens: list[str] = []
        size = len(self.itos)
        for raw in ids:
            idx = int(raw)
            if idx == self.eos_idx:
                break
            if idx in (self.bos_idx, self.pad_idx):
                continue
            if not 0 <= idx < size:
                raise IndexError(f"id {idx} is outside the vocabulary (size {size})")
            tokens.append(self.itos[idx])
        return tokens

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data; :meth:`from_dict` rebuilds an equal Vocab."""
        return {
            "itos": list(self.itos),
            "specials": {"unk": self.unk, "pad": self.pad, "bos": self.bos, "eos": self.eos},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocab:
        specials = data["specials"]
        vocab = cls(
            list(data["itos"]),
            unk=specials["unk"],
            pad=specials["pad"],
            bos=specials["bos"],
            eos=specials["eos"],
        )
        if vocab.itos != list(data["itos"]):
            raise ValueError("vocab data must list the specials first: unk, pad, bos, eos")
        return vocab
