"""`nmt data`: find or download Multi30k, verify it, print statistics.

With ``tokenizer=sentencepiece`` the tokens are the pieces of the model the
training split gives (trained, or found in the cache, as ``nmt train`` does),
and each split's row also tells how much of the vocabulary it uses and how
many pieces are byte fallbacks (characters the model has no piece for).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from nmt.config import DataCommandConfig, TokenizerKind, VocabConfig
from nmt.data.corpus import load_split
from nmt.data.pipeline import make_tokenizers, tokenize
from nmt.data.tokenizer import Tokenizer, build_tokenizers


def _stats(sentences: list[list[str]]) -> dict[str, Any]:
    counts = Counter(tok for sent in sentences for tok in sent)
    lengths = [len(s) for s in sentences]
    return {
        "tokens": sum(lengths),
        "types": len(counts),
        "mean_len": round(sum(lengths) / max(len(lengths), 1), 2),
        "max_len": max(lengths, default=0),
    }


def _piece_stats(sentences: list[list[str]], tokenizer: Tokenizer) -> dict[str, Any]:
    """:func:`_stats` plus vocabulary use (share of the model's pieces seen)
    and the count of byte-fallback pieces."""
    stats = _stats(sentences)
    size = len(tokenizer.pieces)
    stats["vocab_use"] = round(100.0 * stats["types"] / max(size, 1), 1)
    stats["byte_pieces"] = sum(
        1 for sent in sentences for tok in sent if tok.startswith("<0x") and tok.endswith(">")
    )
    return stats


def _tokenizers(cfg: DataCommandConfig) -> tuple[Tokenizer, Tokenizer]:
    if cfg.tokenizer.kind != TokenizerKind.sentencepiece:
        return build_tokenizers(cfg.tokenizer, cfg.data.src_lang, cfg.data.tgt_lang)
    train = load_split(cfg.data, "train")
    return make_tokenizers(train, cfg.tokenizer, cfg.data, VocabConfig())


def _side_stats(tokenizer: Tokenizer, lines: list[str]) -> dict[str, Any]:
    tokens = tokenize(tokenizer, lines)
    if tokenizer.kind == TokenizerKind.sentencepiece:
        return _piece_stats(tokens, tokenizer)
    return _stats(tokens)


def _print(rows: list[dict[str, Any]], cfg: DataCommandConfig, pieces: bool) -> None:
    unit = "pieces" if pieces else "tokens"
    header = f"{'split':<18}{'lines':>7}  {'lang':<5}{unit:>9}{'types':>8}{'mean':>7}{'max':>5}"
    print(header + (f"{'vocab%':>8}{'bytes':>7}" if pieces else ""))
    for row in rows:
        for side, lang in (("src", cfg.data.src_lang), ("tgt", cfg.data.tgt_lang)):
            st = row.get(f"{side}_stats")
            figures = ""
            if st:
                figures = f"{st['tokens']:>9}{st['types']:>8}{st['mean_len']:>7}{st['max_len']:>5}"
                if pieces:
                    figures += f"{st['vocab_use']:>8}{st['byte_pieces']:>7}"
            print(f"{row['split']:<18}{row['lines']:>7}  {lang:<5}{figures}")
    for row in rows:
        print(f"{row['split']}: {row['src']} | {row['tgt']}")


def run(cfg: DataCommandConfig, out_dir: Path | None = None) -> list[dict[str, Any]]:
    src_tok, tgt_tok = _tokenizers(cfg) if cfg.stats else (None, None)
    rows = []
    for split in cfg.splits:
        data = load_split(cfg.data, split)
        row: dict[str, Any] = {
            "split": split,
            "lines": len(data),
            "src": data.src_path,
            "tgt": data.tgt_path,
        }
        if src_tok is not None and tgt_tok is not None:
            row["src_stats"] = _side_stats(src_tok, data.src)
            row["tgt_stats"] = _side_stats(tgt_tok, data.tgt)
        rows.append(row)
    _print(rows, cfg, cfg.tokenizer.kind == TokenizerKind.sentencepiece and cfg.stats)
    return rows
