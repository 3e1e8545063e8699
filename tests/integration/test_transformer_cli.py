"""model=transformer through every command: `nmt train` (label smoothing,
warm-up then 1/sqrt(step), bf16 autocast, scheduled sampling, tied
embeddings; a run stopped by SIGTERM resumes to the uninterrupted run's
weights), `nmt evaluate`, `nmt translate` (greedy with attention plots and
replace_unk, beam with n-best), `nmt average`, an ensemble of the
Transformer, its average and an RNN, and `nmt serve`'s app (sampling n-best,
with the attention it returns)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import httpx
import pytest
import torch
from tiny_checkpoint import TINY_BAHDANAU, save_tiny_checkpoint, tiny_bahdanau
from train_runs import (
    NMT,
    SIGTERM,
    assert_same_weights,
    environ,
    finish,
    records,
    run_train,
    signal_after_step,
    start_nmt,
    tiny_run_args,
)

from nmt.checkpoint import load_checkpoint
from nmt.commands.serve import make_engine
from nmt.config import ServeConfig
from nmt.serve.app import create_app

TRANSFORMER = [
    "model=transformer",
    "model.d_model=32",
    "model.num_heads=4",
    "model.ffn_dim=64",
    "model.encoder_layers=2",
    "model.decoder_layers=2",
    "model.dropout=0.1",
    "scheduler=warmup_inverse_sqrt",
    "scheduler.warmup_steps=8",
    "optimizer.lr=0.003",
    "trainer.label_smoothing=0.1",
    "trainer.precision=bf16",
    "trainer.save_every_steps=10",
    "trainer.keep_last=2",
    "trainer.max_epochs=3",
]
STEPS = 3 * 19  # 300 pairs in batches of 16


def train_args(corpus) -> list[str]:
    """tiny_run_args (dropout, teacher forcing 0.5, seeded) for a small Transformer."""
    args = [a for a in tiny_run_args(corpus) if not a.startswith("model.")]
    return [*args, *TRANSFORMER]


@pytest.fixture(scope="module")
def run(synthetic_corpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("transformer")
    run_train([*train_args(synthetic_corpus), f"hydra.run.dir={root / 'run'}"], root)
    return root / "run"


def nmt(*args: str, cwd: Path, stdin: str | None = None) -> str:
    proc = subprocess.run(
        [str(NMT), *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=environ(),
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_it_trains_and_a_stopped_run_resumes_exactly(
    run: Path, synthetic_corpus, tmp_path: Path
) -> None:
    epochs = [r for r in records(run) if r["type"] == "epoch"]
    assert len(epochs) == 3 and epochs[-1]["train_loss"] < epochs[0]["train_loss"] - 0.5
    assert records(run)[-1]["step"] == STEPS

    resumed = tmp_path / "run"
    proc = start_nmt([*train_args(synthetic_corpus), f"hydra.run.dir={resumed}"], tmp_path)
    signal_after_step(proc, resumed, 25, SIGTERM)
    rc, err = finish(proc)
    assert rc == 128 + SIGTERM, err[-2000:]
    run_train(
        [
            *train_args(synthetic_corpus),
            f"hydra.run.dir={resumed}",
            f"trainer.resume_from={resumed}",
        ],
        tmp_path,
    )
    assert_same_weights(resumed / "checkpoints" / "last.pt", run / "checkpoints" / "last.pt")


def test_evaluate(run: Path, synthetic_corpus, tmp_path: Path) -> None:
    out = nmt(
        "evaluate",
        f"checkpoint={run}",
        f"src={synthetic_corpus.src('test')}",
        f"ref={synthetic_corpus.tgt('test')}",
        f"output_dir={tmp_path / 'eval'}",
        "device=cpu",
        "decoding=beam",
        cwd=tmp_path,
    )
    report = json.loads(out.strip().splitlines()[-1])
    assert report["bleu"] > 0 and report["ppl"] < 20, report


def test_translate_greedy_and_beam_n_best(run: Path, synthetic_corpus, tmp_path: Path) -> None:
    lines = [*synthetic_corpus.lines["val"][0][:3], "s1 unseen s2"]
    stdin = "\n".join(lines) + "\n"
    plots = tmp_path / "plots"
    greedy = nmt(
        "translate",
        f"checkpoint={run}",
        "device=cpu",
        "decoding=greedy",  # the recipe's (the default's beam 5) would decode otherwise
        f"attention_plots={plots}",
        "decoding.replace_unk=true",  # reads the attention
        cwd=tmp_path,
        stdin=stdin,
    )
    assert len(greedy.splitlines()) == 4 and all(greedy.splitlines())
    assert "<unk>" not in greedy
    assert len(list(plots.glob("*.png"))) == 4  # the decoder's cross-attention, drawn
    tsv = nmt(
        "translate",
        f"checkpoint={run}",
        "device=cpu",
        "output_format=tsv",
        "decoding=beam",
        "decoding.n_best=3",
        cwd=tmp_path,
        stdin=stdin,
    )
    rows = [line.split("\t") for line in tsv.splitlines()]
    assert len(rows) == 4 * 3
    for first in range(0, len(rows), 3):
        scores = [float(row[2]) for row in rows[first : first + 3]]
        assert scores == sorted(scores, reverse=True)
        assert len({row[3] for row in rows[first : first + 3]}) == 3  # distinct hypotheses


def test_average_and_an_ensemble_with_an_rnn(
    run: Path, synthetic_corpus, tiny_pipeline, tmp_path: Path
) -> None:
    averaged = tmp_path / "avg.pt"
    nmt("average", f"run={run}", "last=2", f"output={averaged}", cwd=tmp_path)
    rnn = save_tiny_checkpoint(
        tmp_path / "rnn.pt",
        tiny_bahdanau(tiny_pipeline),
        TINY_BAHDANAU,
        tiny_pipeline,
        synthetic_corpus.root,
    )
    assert len(load_checkpoint(averaged)["averaged_from"]) == 2
    stdin = "\n".join(synthetic_corpus.lines["val"][0][:3]) + "\n"
    ensemble = f"[{run / 'checkpoints' / 'best.pt'},{averaged},{rnn}]"
    out = nmt(
        "translate",
        f"checkpoint={ensemble}",
        "device=cpu",
        "decoding=beam",
        cwd=tmp_path,
        stdin=stdin,
    )
    assert len(out.splitlines()) == 3 and any(out.splitlines())


def test_serve_returns_translations_and_attention(run: Path, synthetic_corpus) -> None:
    engine = make_engine(ServeConfig(checkpoint=str(run), device="cpu"))  # type: ignore[arg-type]
    lines = synthetic_corpus.lines["val"][0][:4]

    async def ask() -> httpx.Response:
        app = create_app(engine, ServeConfig(checkpoint=str(run)))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://nmt") as client:
            body = {"text": lines, "attention": True, "strategy": "sample", "n_best": 2}
            return await client.post("/translate", json=body)

    response = asyncio.run(ask())
    assert response.status_code == 200, response.text
    translations = response.json()["translations"]
    assert any(line["translation"] for line in translations)
    for line in translations:
        assert len(line["nbest"]) == 2
        best = line["nbest"][0]
        if not best["tokens"]:
            continue
        weights = torch.tensor(best["attention"])  # the heatmap the page draws
        assert weights.shape == (len(best["tokens"]), len(line["src_tokens"]))
        assert torch.allclose(weights.sum(-1), torch.ones(len(weights)), atol=1e-3)
