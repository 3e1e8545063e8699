"""`nmt train|translate|data` with tokenizer=sentencepiece on the user's files
(conftest's synthetic corpus through data=files), with subword sampling and
model.tie_embeddings=all."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from test_cli import TINY_MODEL, ok, run_nmt, text

from nmt.checkpoint import load_checkpoint


def test_sentencepiece_run_on_user_files(synthetic_corpus, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    sizes = ("emb_dim", "hidden_dim", "tie_embeddings")
    tiny = [o for o in TINY_MODEL if not any(key in o for key in sizes)]
    ok(
        run_nmt(
            "train",
            *synthetic_corpus.overrides(),
            "tokenizer=sentencepiece",
            "tokenizer.vocab_size=300",
            "tokenizer.sample_alpha=0.2",
            "model=luong",
            *tiny,
            "model.emb_dim=32",
            "model.hidden_dim=32",
            "model.tie_embeddings=all",
            "trainer.max_epochs=2",
            "trainer.batch_size=32",
            "trainer.device=cpu",
            "decoding.max_len=12",
            f"data.subword_dir={tmp_path / 'cache' / 'sentencepiece'}",
            f"hydra.run.dir={run_dir}",
            cwd=tmp_path,
        )
    )
    assert len(list((tmp_path / "cache" / "sentencepiece").glob("*.model"))) == 1
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["test"]["test"]["num_sentences"] == 50
    data = load_checkpoint(run_dir / "checkpoints" / "best.pt")  # weights_only inside
    assert isinstance(data["src_tokenizer"]["model"], bytes)
    assert data["config"]["model"]["tie_embeddings"] == "all"
    assert torch.equal(
        data["model"]["encoder.embedding.weight"], data["model"]["decoder.output.weight"]
    )

    src = tmp_path / "in.txt"
    src.write_text("s1 s2 s3\ns11 🤖 s4 1234\n", encoding="utf-8")
    plots = tmp_path / "plots"
    found = ok(
        run_nmt(
            "translate",
            f"checkpoint={run_dir}",
            f"input={src}",
            "decoding=beam",
            "decoding.n_best=2",
            "decoding.replace_unk=true",
            "decoding.min_len=2",
            "output_format=tsv",
            f"attention_plots={plots}",
            cwd=tmp_path,
        )
    )
    rows = [line.split("\t") for line in text(found.stdout).splitlines()]
    assert [(r[0], r[1]) for r in rows] == [("1", "1"), ("1", "2"), ("2", "1"), ("2", "2")]
    assert not any("<unk>" in r[3] or "⁇" in r[3] for r in rows)
    assert all(r[3] for r in rows)  # decoding.min_len: no empty output (which gets no plot)
    assert len(list(plots.glob("*.png"))) == 2

    stats = ok(
        run_nmt(
            "data",
            *synthetic_corpus.overrides(),
            "tokenizer=sentencepiece",
            "tokenizer.vocab_size=300",
            "splits=[train,val]",
            f"data.subword_dir={tmp_path / 'cache' / 'sentencepiece'}",
            cwd=tmp_path,
        )
    )
    lines = text(stats.stdout).splitlines()
    assert lines[0].split()[3:] == ["pieces", "types", "mean", "max", "vocab%", "bytes"]
    assert lines[1].split()[:2] == ["train", "300"] and len(lines[1].split()) == 9
