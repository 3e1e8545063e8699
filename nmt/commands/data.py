"""`nmt data`: find or download Multi30k, verify it, print statistics."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from nmt.config import DataCommandConfig
from nmt.data.corpus import load_split
from nmt.data.tokenizer import build_tokenizers


def _stats(sentences: list[list[str]]) -> dict[str, Any]:
    counts = Counter(tok for sent in sentences for tok in sent)
    lengths = [len(s) for s in sentences]
    return {
        "tokens": sum(lengths),
        "types": len(counts),
        "mean_len": round(sum(lengths) / max(len(lengths), 1), 2),
        "max_len": max(lengths, default=0),
    }


def run(cfg: DataCommandConfig, out_dir: Path | None = None) -> list[dict[str, Any]]:
    src_tok, tgt_tok = build_tokenizers(cfg.tokenizer, cfg.data.src_lang, cfg.data.tgt_lang)
    rows = []
    for split in cfg.splits:
        data = load_split(cfg.data, split)
        row: dict[str, Any] = {
            "split": split,
            "lines": len(data),
            "src": data.src_path,
            "tgt": data.tgt_path,
        }
        if cfg.stats:
            row["src_stats"] = _stats(src_tok.tokenize_many(data.src))
            row["tgt_stats"] = _stats(tgt_tok.tokenize_many(data.tgt))
        rows.append(row)
    header = f"{'split':<18}{'lines':>7}  {'lang':<5}{'tokens':>9}{'types':>8}{'mean':>7}{'max':>5}"
    print(header)
    for row in rows:
        for side, lang in (("src", cfg.data.src_lang), ("tgt", cfg.data.tgt_lang)):
            st = row.get(f"{side}_stats")
            figures = (
                f"{st['tokens']:>9}{st['types']:>8}{st['mean_len']:>7}{st['max_len']:>5}"
                if st
                else ""
            )
            print(f"{row['split']:<18}{row['lines']:>7}  {lang:<5}{figures}")
    for row in rows:
        print(f"{row['split']}: {row['src']} | {row['tgt']}")
    return rows
