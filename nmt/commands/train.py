"""`nmt train`: data -> vocabularies -> model -> Trainer -> test evaluation.

Under torchrun every process runs this; they share rank 0's run dir, each
trains on its share of the batches, and rank 0 alone logs, saves and runs the
test evaluation.  A resumed run (``trainer.resume_from``) takes its tokenizers
and vocabularies from the checkpoint.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from nmt.checkpoint import LAST, CheckpointError, load_checkpoint, resolve_checkpoint
from nmt.commands.common import evaluate_test_splits
from nmt.config import TokenizerConfig, TrainConfig, to_plain
from nmt.data.batching import EpochBatches, Example, training_batches
from nmt.data.pipeline import TextPipeline
from nmt.data.store import PreparedData, StoredPairs, prepare, with_pipeline
from nmt.evaluation import evaluate
from nmt.models.registry import build_model
from nmt.models.seq2seq import Seq2Seq
from nmt.training.distributed import Distributed
from nmt.training.distributed import setup as setup_distributed
from nmt.training.errors import TrainingError
from nmt.training.optim import build_optimizer, build_scheduler, total_training_steps
from nmt.training.resume_checks import check_resume_data, vocabulary_fingerprint
from nmt.training.rundir import SUMMARY_FILE, RunDirError, RunDirLock, claim_run_dir
from nmt.training.trainer import Trainer
from nmt.utils import seed_everything

log = logging.getLogger(__name__)


def training_data(
    cfg: TrainConfig, resume_data: dict[str, Any] | None
) -> tuple[PreparedData, StoredPairs]:
    """The prepared store of the run's corpus (made on first use) and its
    training pairs; a resumed run keeps the tokenizers and vocabularies of its
    checkpoint.  Under torchrun every process opens the same memory-mapped
    files (the store's lock lets one of them build it)."""
    if resume_data is None:
        prepared = prepare(cfg)
    else:
        prepared = with_pipeline(cfg, TextPipeline.from_state(resume_data))
    tok = cfg.tokenizer
    sampling = None
    if tok.regularizes:
        sampling = (tok.sample_alpha if tok.sample_alpha > 0 else tok.bpe_dropout, tok.nbest_size)
    pairs = StoredPairs(prepared.splits["train"], prepared.pipeline, sampling)
    if sampling:
        report_stretch(tok, pairs.sampling_stretch())
    skipped = prepared.skipped
    log.info(
        "train pairs: %s (skipped: %d empty, %d longer than data.max_src_len=%d or "
        "data.max_tgt_len=%d) | vocab: src %d, tgt %d",
        f"{len(pairs):,}", skipped["empty"], skipped["over_long"], cfg.data.max_src_len,
        cfg.data.max_tgt_len, len(prepared.pipeline.src_vocab), len(prepared.pipeline.tgt_vocab),
    )  # fmt: skip
    return prepared, pairs


STRETCH_WARNING = 1.3  # sampled segmentations this much longer than test-time ones


def report_stretch(tok: TokenizerConfig, stretch: float) -> None:
    """Log how much longer the sampled target segmentations are than the
    Viterbi ones; warn past STRETCH_WARNING (a small alpha over all
    segmentations makes near-character pieces: longer, slower epochs, and
    training text unlike the test-time text)."""
    what = (
        f"tokenizer.sample_alpha={tok.sample_alpha} nbest_size={tok.nbest_size}"
        if tok.sample_alpha > 0
        else f"tokenizer.bpe_dropout={tok.bpe_dropout}"
    )
    log.info("%s: sampled targets are %.2fx as long as test-time ones", what, stretch)
    if stretch > STRETCH_WARNING:
        log.warning(
            "%s makes the training pieces %.2fx as many as at test time: epochs slow down and "
            "the model trains on segmentations it never sees in use; Kudo (2018) sampled with "
            "alpha 0.1 from the 64 best (nbest_size=64), or alpha 0.2-0.5 from all",
            what,
            stretch,
        )


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def make_batches(
    cfg: TrainConfig,
    pairs: StoredPairs | Sequence[Example],
    pipeline: TextPipeline,
    dist: Distributed,
) -> EpochBatches:
    """This process's batches of each epoch (``training_batches``: length
    buckets, trainer.batch_size / max_tokens, pinned on CUDA); fewer pairs
    than one batch a process stop with one line."""
    batches = training_batches(
        pairs,
        cfg.trainer,
        pipeline.tgt_vocab,
        rank=dist.rank,
        world_size=dist.world_size,
        pin_memory=dist.device.type == "cuda",
    )
    needed = cfg.trainer.batch_size * dist.world_size
    if len(pairs) < needed:
        raise TrainingError(
            f"{len(pairs)} training pairs (after the data.max_src_len / data.max_tgt_len "
            f"limits) are fewer than one batch of trainer.batch_size={cfg.trainer.batch_size} "
            f"for each of {dist.world_size} process(es): lower trainer.batch_size or train on "
            "more text"
        )
    return batches


def make_validator(cfg: TrainConfig, prepared: PreparedData, device: torch.device) -> Any:
    """``model -> {"val_loss", "val_ppl"[, "val_bleu"]}`` on the validation split,
    whose ids come from the store (encoded once)."""
    val = prepared.splits["val"]
    examples = list(zip(val["src_ids"], val["tgt_ids"]))
    src, tgt = list(val["src"]), list(val["tgt"])
    pipeline = prepared.pipeline

    def validate(m: Seq2Seq) -> dict[str, float]:
        report = evaluate(
            m,
            pipeline,
            src,
            tgt,
            cfg.decoding,
            device,
            max_decode=cfg.trainer.val_max_examples if cfg.trainer.bleu_every_epoch else 0,
            examples=examples,
        )
        result = {"val_loss": report.loss, "val_ppl": report.ppl}
        if cfg.trainer.bleu_every_epoch:
            result["val_bleu"] = report.bleu
        return result

    return validate


def run(cfg: TrainConfig, out_dir: Path) -> dict[str, Any]:
    dist = setup_distributed(cfg.trainer.device)
    finished = False
    lock: RunDirLock | None = None
    try:
        out_dir = dist.shared_run_dir(out_dir)
        if not dist.is_main:  # the main process speaks for all
            logging.getLogger("nmt").setLevel(logging.WARNING)
        lock = claim(cfg, out_dir, dist)
        result = _train(cfg, out_dir, dist)
        finished = True
        return result
    finally:
        dist.close(wait=finished)  # after an error the others may never arrive
        if lock is not None:
            lock.release()


def claim(cfg: TrainConfig, out_dir: Path, dist: Distributed) -> RunDirLock | None:
    """The main process locks the run dir and checks it may take this run (see
    nmt.training.rundir); every process stops with the same one line if not."""
    lock, refusal = None, ""
    if dist.is_main:
        try:
            lock = claim_run_dir(
                out_dir, resume_from=cfg.trainer.resume_from, overwrite=cfg.trainer.overwrite
            )
        except (RunDirError, CheckpointError) as exc:
            refusal = str(exc)
    refusal = dist.broadcast(refusal)
    if refusal:
        raise RunDirError(refusal)
    return lock


def _train(cfg: TrainConfig, out_dir: Path, dist: Distributed) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.trainer.seed)
    device = dist.device
    resume_path = resume_data = None
    if cfg.trainer.resume_from:
        resume_path = resolve_checkpoint(cfg.trainer.resume_from, LAST)
        resume_data = load_checkpoint(resume_path)
        check_resume_data(resume_path, resume_data, to_plain(cfg))
    prepared, pairs = training_data(cfg, resume_data)
    pipeline = prepared.pipeline
    model = build_model(cfg.model, pipeline.vocab_sizes).to(device)
    if dist.rank > 0:  # the same initial weights, other dropout masks
        seed_everything(cfg.trainer.seed + dist.rank)
    params = count_parameters(model)
    log.info("model %s: %s parameters on %s", cfg.model.arch, f"{params:,}", device)
    batches = make_batches(cfg, pairs, pipeline, dist)
    optimizer = build_optimizer(model, cfg.optimizer)
    steps_per_epoch = -(-batches.num_batches(1) // cfg.trainer.accumulate)
    total = total_training_steps(cfg.trainer.max_steps, cfg.trainer.max_epochs, steps_per_epoch)
    trainer = Trainer(
        model,
        optimizer,
        build_scheduler(optimizer, cfg.scheduler, total_steps=total),
        cfg.trainer,
        device=device,
        out_dir=out_dir,
        validate=make_validator(cfg, prepared, device),
        # "decoding": the recipe's, which evaluate/translate/serve decode with by default
        checkpoint_data={"config": to_plain(cfg), "decoding": to_plain(cfg.decoding)}
        | pipeline.state()
        | {"vocab_fingerprint": vocabulary_fingerprint(pipeline.state())},
        dist=dist,
    )
    if resume_path is not None:
        trainer.resume(resume_path, resume_data)
    state = trainer.fit(batches)
    summary: dict[str, Any] = {
        "run_dir": str(out_dir),
        "arch": cfg.model.arch,
        "params": params,
        "epochs": state.epoch,
        "steps": state.step,
        "train_time_s": round(state.elapsed_s, 1),
        "device": str(device),
        "processes": dist.world_size,
        "cpu_threads": torch.get_num_threads(),
        "best_epoch": state.best_epoch,
    }
    if dist.is_main:
        write_summary(cfg, out_dir, device, summary)
    return summary


def write_summary(
    cfg: TrainConfig, out_dir: Path, device: torch.device, summary: dict[str, Any]
) -> None:
    """Evaluate ``best.pt`` on the test split(s), then write ``summary.json``."""
    summary["test"] = evaluate_test_splits(cfg, out_dir, device)
    text = json.dumps(summary, indent=2) + "\n"
    (out_dir / SUMMARY_FILE).write_text(text, encoding="utf-8")
