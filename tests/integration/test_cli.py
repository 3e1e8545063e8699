"""The installed `nmt` command, run in subprocesses: train -> evaluate -> translate.

One tiny model is trained once per module on the synthetic reverse-and-map
corpus (conftest.py) and then evaluated and used for translation.  A second
flow trains on a slice of the real Multi30k when the shared folder exists.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import sacrebleu
import yaml

from nmt.checkpoint import load_checkpoint
from nmt.config import train_config_from_dict

NMT = Path(sys.executable).with_name("nmt")
TINY_MODEL = [
    "model.emb_dim=32",
    "model.hidden_dim=64",
    "model.num_layers=1",
    "model.dropout=0.0",
    "model.tie_embeddings=false",  # model/luong.yaml ties; these sizes differ
]


def run_nmt(
    *args: str,
    cwd: Path,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``nmt ARGS`` in ``cwd`` (so that no outputs/ lands in the repo)."""
    if not NMT.is_file():
        pytest.fail(f"the nmt console script is not installed next to {sys.executable}")
    environ = {k: v for k, v in os.environ.items() if k not in ("NMT_DATA_DIR", "HYDRA_FULL_ERROR")}
    environ |= {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"} | (env or {})
    return subprocess.run(
        [str(NMT), *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        env=environ,
        timeout=timeout,
        check=False,
    )


def text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def error_lines(proc: subprocess.CompletedProcess[bytes]) -> list[str]:
    return [line for line in text(proc.stderr).splitlines() if line.strip()]


def ok(proc: subprocess.CompletedProcess[bytes]) -> subprocess.CompletedProcess[bytes]:
    assert proc.returncode == 0, f"rc={proc.returncode}\n{text(proc.stderr)[-3000:]}"
    return proc


# ------------------------------------------------------------------- the command


def test_no_command_lists_the_commands(tmp_path: Path) -> None:
    proc = run_nmt(cwd=tmp_path)
    assert proc.returncode != 0
    shown = text(proc.stdout + proc.stderr)
    for command in ("train", "evaluate", "translate", "data"):
        assert f"  {command} " in shown


def test_unknown_command(tmp_path: Path) -> None:
    proc = run_nmt("frobnicate", "x=1", cwd=tmp_path)
    assert proc.returncode != 0
    assert "frobnicate" in text(proc.stderr)
    assert "translate" in text(proc.stderr)  # the list of commands
    assert list(tmp_path.iterdir()) == []


def test_cfg_job_prints_the_config(tmp_path: Path) -> None:
    proc = ok(
        run_nmt("train", "--cfg", "job", "trainer.max_epochs=7", "optimizer=sgd", cwd=tmp_path)
    )
    cfg = yaml.safe_load(text(proc.stdout))
    assert {"data", "tokenizer", "vocab", "model", "optimizer", "trainer", "decoding"} <= set(cfg)
    assert cfg["trainer"]["max_epochs"] == 7
    assert cfg["optimizer"]["name"] == "sgd"
    assert not (tmp_path / "outputs").exists()  # printing the config runs nothing


def test_cfg_job_after_the_overrides_prints_the_config(tmp_path: Path) -> None:
    # `nmt train` adds overrides of its own; they must not split the user's
    # overrides from a trailing --cfg (argparse would reject the rest)
    proc = ok(run_nmt("train", "trainer.max_epochs=7", "--cfg", "job", cwd=tmp_path))
    assert yaml.safe_load(text(proc.stdout))["trainer"]["max_epochs"] == 7


# ------------------------------------------------------------ train on the corpus


@dataclass
class TrainedRun:
    run_dir: Path
    corpus: object
    proc: subprocess.CompletedProcess[bytes]

    @property
    def best(self) -> Path:
        return self.run_dir / "checkpoints" / "best.pt"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory, synthetic_corpus) -> TrainedRun:
    work = tmp_path_factory.mktemp("cli")
    run_dir = work / "run"
    proc = run_nmt(
        "train",
        *synthetic_corpus.overrides(),
        "tokenizer=whitespace",
        "tokenizer.reverse_source=false",
        "vocab.min_freq=1",
        "model=sutskever",
        *TINY_MODEL,
        "optimizer.lr=0.01",
        "trainer.max_epochs=3",
        "trainer.batch_size=32",
        "trainer.device=cpu",
        "decoding.max_len=20",
        f"hydra.run.dir={run_dir}",
        cwd=work,
    )
    return TrainedRun(run_dir=run_dir, corpus=synthetic_corpus, proc=ok(proc))


def test_train_writes_the_run(trained_run: TrainedRun) -> None:
    run = trained_run.run_dir
    for name in (
        "checkpoints/best.pt",
        "checkpoints/last.pt",
        "metrics.jsonl",
        "summary.json",
        "test/test/report.json",
        "test/test/hypotheses.txt",
    ):
        assert (run / name).is_file(), name
    assert not list((run / "checkpoints").glob(".*tmp"))

    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["epochs"] == 3 and summary["steps"] == 3 * 10  # 300 pairs, batch 32
    assert summary["arch"] == "sutskever" and summary["params"] > 0
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in epochs if r["type"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2, 3]
    assert all({"train_loss", "val_loss", "val_ppl", "val_bleu"} <= set(r) for r in epochs)
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]

    report = json.loads((run / "test/test/report.json").read_text(encoding="utf-8"))
    assert report["num_sentences"] == 50
    assert report["signature"].startswith("nrefs:1|")
    assert summary["test"]["test"]["bleu"] == report["bleu"]
    hyps = (run / "test/test/hypotheses.txt").read_text(encoding="utf-8").split("\n")
    assert len(hyps) == 50 + 1 and hyps[-1] == ""

    # the checkpoint rebuilds its config and loads with weights_only
    data = load_checkpoint(trained_run.best)
    cfg = train_config_from_dict(data["config"])
    assert (cfg.model.hidden_dim, cfg.trainer.max_epochs, cfg.data.source.value) == (64, 3, "files")


# the default recipe's decoding, which its own test report used (`nmt evaluate`
# decodes greedily unless told)
RECIPE_DECODING = ["decoding=beam", "decoding.length_penalty=0.0"]


def test_evaluate_matches_sacrebleu(trained_run: TrainedRun, tmp_path: Path) -> None:
    corpus = trained_run.corpus
    out = tmp_path / "eval"
    proc = ok(
        run_nmt(
            "evaluate",
            f"checkpoint={trained_run.best}",
            f"src={corpus.src('test')}",
            f"ref={corpus.tgt('test')}",
            f"output_dir={out}",
            "device=cpu",
            *RECIPE_DECODING,
            cwd=tmp_path,
        )
    )
    lines = [line for line in text(proc.stdout).splitlines() if line.strip()]
    assert len(lines) == 1, "evaluate prints one JSON object on stdout"
    result = json.loads(lines[0])
    assert {"bleu", "chrf", "ppl", "signature"} <= set(result)
    assert result == json.loads((out / "report.json").read_text(encoding="utf-8"))

    hyps = (out / "hypotheses.txt").read_text(encoding="utf-8").splitlines()
    refs = corpus.lines["test"][1]
    assert len(hyps) == len(refs)
    bleu = sacrebleu.metrics.BLEU()
    expected = bleu.corpus_score(hyps, [refs])
    assert result["bleu"] == pytest.approx(expected.score, abs=0.006)
    assert result["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score, abs=0.006)
    assert result["signature"] == str(bleu.get_signature())
    # the same model, the same test set: the numbers `nmt train` reported
    train_report = json.loads(
        (trained_run.run_dir / "test/test/report.json").read_text(encoding="utf-8")
    )
    assert result["bleu"] == train_report["bleu"]
    assert result["ppl"] == pytest.approx(train_report["ppl"], rel=1e-6)

    # the model's own output as the reference: BLEU and chrF must be 100, so
    # the hypotheses reach sacreBLEU exactly as written (detokenized, in order)
    again = ok(
        run_nmt(
            "evaluate",
            f"checkpoint={trained_run.best}",
            f"src={corpus.src('test')}",
            f"ref={out / 'hypotheses.txt'}",
            f"output_dir={tmp_path / 'self'}",
            "device=cpu",
            *RECIPE_DECODING,
            cwd=tmp_path,
        )
    )
    perfect = json.loads(text(again.stdout))
    assert (perfect["bleu"], perfect["chrf"]) == (100.0, 100.0)


ODD_INPUT = b"".join(
    [
        b"s1 s2 s3\n",
        b"\n",  # empty
        " ".join(f"s{i % 12}" for i in range(500)).encode() + b"\n",  # 500 words
        b"!!! ??? *** ### @@@\n",  # symbols only
        b"s4 s5\r\n",  # CRLF
        b"s6 \xff\xfe s7\n",  # not UTF-8
        "s8\u2028s9\n".encode(),  # a Unicode line separator inside a line
        b"   \n",  # whitespace only
        b"s10 s11",  # no final newline
    ]
)
ODD_LINES = 9


def test_translate_file_keeps_every_line(trained_run: TrainedRun, tmp_path: Path) -> None:
    src = tmp_path / "odd.txt"
    src.write_bytes(ODD_INPUT)
    out = tmp_path / "out" / "odd.out"
    proc = ok(
        run_nmt(
            "translate",
            f"checkpoint={trained_run.best}",
            f"input={src}",
            f"output={out}",
            "device=cpu",
            cwd=tmp_path,
        )
    )
    raw = out.read_bytes()
    assert raw.count(b"\n") == ODD_LINES and raw.endswith(b"\n")
    lines = raw.decode("utf-8").split("\n")[:-1]
    assert lines[1] == "" and lines[7] == ""  # empty in, empty out
    assert lines[0] and lines[2] and lines[4]  # real lines get a translation
    assert all("\r" not in line and "\u2028" not in line for line in lines)
    stderr = text(proc.stderr)
    assert "line 3" in stderr  # the 500-word line was cut
    assert "line 6" in stderr  # the bytes that are not UTF-8

    # stdin -> stdout gives the same lines
    piped = ok(
        run_nmt(
            "translate",
            f"checkpoint={trained_run.best}",
            "input=-",
            "output=-",
            "device=cpu",
            cwd=tmp_path,
            stdin=ODD_INPUT,
        )
    )
    assert piped.stdout == raw


def test_translate_stdin_to_stdout(trained_run: TrainedRun, tmp_path: Path) -> None:
    lines = trained_run.corpus.lines["val"][0][:5]
    proc = ok(
        run_nmt(
            "translate",
            f"checkpoint={trained_run.best}",
            "input=-",
            "output=-",
            "device=cpu",
            cwd=tmp_path,
            stdin="\n".join(lines).encode() + b"\n",
        )
    )
    out = text(proc.stdout).split("\n")
    assert len(out) == len(lines) + 1 and out[-1] == ""
    assert all(out[:-1])
    assert list(tmp_path.iterdir()) == []  # nothing written besides stdout


def test_translate_missing_checkpoint_is_one_line(tmp_path: Path) -> None:
    proc = run_nmt(
        "translate",
        f"checkpoint={tmp_path / 'nope.pt'}",
        "input=-",
        "output=-",
        cwd=tmp_path,
        stdin=b"hello\n",
    )
    assert proc.returncode != 0
    (line,) = error_lines(proc)
    assert line.startswith("nmt translate: error:") and "nope.pt" in line
    assert proc.stdout == b""


def test_translate_missing_input_is_one_line(trained_run: TrainedRun, tmp_path: Path) -> None:
    proc = run_nmt(
        "translate",
        f"checkpoint={trained_run.best}",
        f"input={tmp_path / 'no.txt'}",
        f"output={tmp_path / 'out.txt'}",
        "device=cpu",
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    (line,) = error_lines(proc)
    assert line.startswith("nmt translate: error:") and "no.txt" in line
    assert not (tmp_path / "out.txt").exists()


@pytest.mark.parametrize(
    "command, override",
    [
        ("translate", "decodng.max_len=3"),
        ("train", "trainer.max_epoch=3"),
        ("train", "+trainer.max_epoch=3"),
        ("train", "tokenizer.kind=foo"),
    ],
)
def test_misspelled_key_fails(tmp_path: Path, command: str, override: str) -> None:
    args = [f"checkpoint={tmp_path / 'x.pt'}"] if command == "translate" else []
    proc = run_nmt(
        command, *args, override, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, stdin=b""
    )
    assert proc.returncode != 0
    assert override.lstrip("+").split("=")[0].split(".")[-1] in text(proc.stderr)
    assert not (tmp_path / "run" / "checkpoints").exists()


# ------------------------------------------------------------------ real data


@pytest.mark.slow
def test_train_on_a_multi30k_slice(multi30k_dir: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = ok(
        run_nmt(
            "train",
            "data.max_train_examples=300",
            "data.download=false",
            f"data.cache_dir={tmp_path / 'cache'}",
            "tokenizer=spacy",
            *TINY_MODEL,
            "trainer.max_epochs=1",
            "trainer.batch_size=64",
            "trainer.device=cpu",
            "trainer.val_max_examples=50",
            "decoding.max_len=30",
            f"hydra.run.dir={run_dir}",
            cwd=tmp_path,
            env={"NMT_DATA_DIR": str(multi30k_dir)},
            timeout=60,
        )
    )
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["epochs"] == 1 and summary["steps"] == 5  # 300 pairs, batch 64
    report = json.loads(
        (run_dir / "test" / "test_2016_flickr" / "report.json").read_text(encoding="utf-8")
    )
    assert report["num_sentences"] == 1000
    assert report["signature"].startswith("nrefs:1|") and report["ppl"] > 1
    hyps = (run_dir / "test" / "test_2016_flickr" / "hypotheses.txt").read_bytes()
    assert hyps.count(b"\n") == 1000
    assert not (tmp_path / "cache").exists()  # read from NMT_DATA_DIR, nothing downloaded
    cfg = train_config_from_dict(load_checkpoint(run_dir / "checkpoints" / "best.pt")["config"])
    assert cfg.tokenizer.kind.value == "spacy" and cfg.data.max_train_examples == 300
    assert "train pairs: 300 (skipped: 0 empty" in text(proc.stdout + proc.stderr)
