#!/usr/bin/env python
"""Training speed: nmt's train step against the tutorials' loop, same batches.

    python scripts/bench_train.py --recipe bahdanau_seed [--device cpu] [--steps 10]
        [--teacher-forcing 0.5] [--batch-size 128] [--max-examples 6000]
        [--synthetic] [--precision bf16] [--compile] [--batching tutorial]
        [key=value ...]

For one experiment recipe (composed with Hydra's compose API, trailing
``key=value`` overrides allowed) it builds nmt's model and a model of the
same architecture and sizes written the way the PyTorch seq2seq tutorials
write theirs (``scripts/tutorial_reference.py``), on the same Multi30k
batches (or ``--synthetic`` ones).  Each side gets warm-up steps, then the
timed steps alternate between the two sides on the same batches (the side
that goes first alternates too), so that the noise of a shared machine hits
both.  It prints target tokens per second and the peak memory of each side
and, last, ``speedup=<nmt / reference>``; the row goes to a table in a
section of docs/performance.md (``--out``) that this script owns.

``--batching tutorial`` instead gives each side the batches its user gets:
the reference the tutorials' (shuffled, unsorted, padded), nmt those of
``nmt train`` (length buckets); it prints each side's seconds per step and
its epoch time extrapolated from the batches per epoch, and writes them to a
second section (``scripts/_epoch_bench.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from hydra.errors import ConfigCompositionException

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _bench_train_docs as docs  # noqa: E402
from _common import command_line, compose_train_config  # noqa: E402
from tutorial_reference import build_reference, tutorial_train_step  # noqa: E402

from nmt.config import TrainConfig, TrainerConfig  # noqa: E402
from nmt.data.batching import (  # noqa: E402
    Batch,
    BucketBatchSampler,
    Example,
    collate,
    training_batches,
)
from nmt.data.corpus import load_split  # noqa: E402
from nmt.data.pipeline import build_training_data  # noqa: E402
from nmt.models.registry import VocabSizes, build_model  # noqa: E402
from nmt.training.optim import build_optimizer  # noqa: E402
from nmt.training.trainer import Trainer  # noqa: E402

SPECIALS = 4  # <unk> <pad> <bos> <eos>, as nmt's Vocab numbers them
PAD, BOS, EOS = 1, 2, 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", required=True, help="an experiment config, e.g. bahdanau_seed")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--steps", type=int, default=10, help="timed steps per side")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per side first")
    p.add_argument("--teacher-forcing", type=float, help="default: the recipe's ratio")
    p.add_argument("--batch-size", type=int, help="default: the recipe's")
    p.add_argument("--max-examples", type=int, help="training pairs to prepare (default: all)")
    p.add_argument("--synthetic", action="store_true", help="random ids instead of Multi30k")
    p.add_argument("--synthetic-vocab", type=int, default=6000, help="vocab size (--synthetic)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--precision", help="trainer.precision, where the key exists")
    p.add_argument("--compile", action="store_true", help="trainer.compile, where it exists")
    p.add_argument(
        "--batching",
        choices=["same", "tutorial"],
        default="same",
        help="same: both sides on nmt's bucketed batches; tutorial: the reference on the "
        "tutorials' shuffled unsorted padded batches, nmt on `nmt train`'s, per epoch",
    )
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--out", default="docs/performance.md", help="Markdown file to update")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("overrides", nargs="*", help="extra Hydra overrides, key=value")
    return p.parse_args(argv)


def compose_config(args: argparse.Namespace) -> TrainConfig:
    overrides = [f"+experiment={args.recipe}", f"trainer.seed={args.seed}"]
    if args.max_examples is not None and not args.synthetic:
        overrides.append(f"data.max_train_examples={args.max_examples}")
    if args.teacher_forcing is not None:
        overrides.append(f"trainer.teacher_forcing={args.teacher_forcing}")
    if args.batch_size is not None:
        overrides.append(f"trainer.batch_size={args.batch_size}")
    trainer_keys = {f.name for f in fields(TrainerConfig)}
    for flag, key, value in (
        (args.precision, "precision", args.precision),
        (args.compile, "compile", "true"),
    ):
        if flag and key not in trainer_keys:
            raise SystemExit(f"trainer.{key} does not exist (yet) in nmt.config.TrainerConfig")
        if flag:
            overrides.append(f"trainer.{key}={value}")
    overrides += args.overrides
    try:
        return compose_train_config(overrides)
    except ConfigCompositionException:  # the experiment group may be a plain (not +) default
        overrides[0] = overrides[0].lstrip("+")
        return compose_train_config(overrides)


def synthetic_examples(count: int, vocab: int, seed: int) -> list[tuple[list[int], list[int]]]:
    """Random id pairs with Multi30k-like lengths (5..25 tokens)."""
    rng = random.Random(seed)

    def sentence() -> list[int]:
        return [rng.randrange(SPECIALS, vocab) for _ in range(rng.randint(5, 25))]

    return [(sentence(), sentence()) for _ in range(count)]


def load_examples(
    cfg: TrainConfig, args: argparse.Namespace
) -> tuple[list[Example], VocabSizes, Any]:
    """Training pairs, the vocabulary sizes and the pipeline (for --synthetic, a
    stand-in that only knows the special ids)."""
    if not args.synthetic:
        pipeline, examples = build_training_data(load_split(cfg.data, "train"), cfg)
        return examples, pipeline.vocab_sizes, pipeline
    size = args.synthetic_vocab
    count = cfg.trainer.batch_size * (args.warmup + args.steps)
    examples = synthetic_examples(count, size, args.seed)
    sizes = VocabSizes(src=size, tgt=size, src_pad=PAD, tgt_pad=PAD)
    specials = SimpleNamespace(pad_idx=PAD, bos_idx=BOS, eos_idx=EOS)
    return examples, sizes, SimpleNamespace(tgt_vocab=specials)


def collate_all(
    examples: list[Example], index_batches: Sequence[list[int]], pipeline: Any
) -> list[Batch]:
    vocab = pipeline.tgt_vocab
    specials = {"pad_idx": vocab.pad_idx, "bos_idx": vocab.bos_idx, "eos_idx": vocab.eos_idx}
    return [collate([examples[i] for i in idx], idx, **specials) for idx in index_batches]


def same_batches(
    cfg: TrainConfig, args: argparse.Namespace, examples: list[Example], pipeline: Any, count: int
) -> list[Batch]:
    """``count`` full length-bucketed batches, for both sides."""
    sampler = BucketBatchSampler(
        [len(s) for s, _ in examples], cfg.trainer.batch_size, shuffle=True, seed=args.seed
    )
    full = [b for b in sampler.batches() if len(b) == cfg.trainer.batch_size]
    if len(full) < count:
        raise SystemExit(f"only {len(full)} full batches; raise --max-examples")
    return collate_all(examples, full[:count], pipeline)


def epoch_batches(
    cfg: TrainConfig, args: argparse.Namespace, examples: list[Example], pipeline: Any, count: int
) -> tuple[tuple[list[Batch], int], tuple[list[Batch], int]]:
    """The first ``count`` batches of an epoch and the epoch's number of batches:
    the tutorials' (shuffled, cut in order) and `nmt train`'s (length buckets)."""
    tutorial = tutorial_index_batches(len(examples), cfg.trainer.batch_size, args.seed)
    ours = training_batches(examples, cfg.trainer, pipeline.tgt_vocab).indices(0)
    if min(len(tutorial), len(ours)) < count:
        raise SystemExit(f"only {min(len(tutorial), len(ours))} batches; raise --max-examples")
    return (
        (collate_all(examples, tutorial[:count], pipeline), len(tutorial)),
        (collate_all(examples, ours[:count], pipeline), len(ours)),
    )


def tutorial_index_batches(count: int, batch_size: int, seed: int) -> list[list[int]]:
    """One epoch of the tutorials' batches: a seeded permutation of ``count``
    example indices cut into runs of ``batch_size`` in that order (the last short)."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed)).tolist()
    return [order[i : i + batch_size] for i in range(0, count, batch_size)]


# -- memory ---------------------------------------------------------------------------
def _status_kb(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Free cached heap pages and reset VmHWM to the current RSS (Linux)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def measure_peak_mb(run: Callable[[], object], device: torch.device) -> float:
    """Peak memory one call of ``run`` adds: CUDA peak allocated, or RSS growth on CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        run()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    if _reset_peak_rss():
        base = _status_kb("VmRSS") or 0
        run()
        return ((_status_kb("VmHWM") or 0) - base) / 1024
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # fallback: high-water mark
    run()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024


# -- the two sides ----------------------------------------------------------------------
@dataclass
class Side:
    name: str
    step: Callable[[int], object]  # batch index -> one training step
    params: int
    ntokens: list[int]  # target tokens of each of the side's batches
    seconds: float = 0.0
    tokens: int = 0
    peak_mb: float = 0.0
    times: list[float] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / max(self.seconds, 1e-12)

    @property
    def seconds_per_step(self) -> float:
        return self.seconds / max(len(self.times), 1)


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def make_sides(
    cfg: TrainConfig,
    batches: tuple[list[Batch], list[Batch]],
    sizes: VocabSizes,
    device: torch.device,
    out_dir: Path,
) -> tuple[Side, Side]:
    """The reference on ``batches[0]``, nmt on ``batches[1]``."""
    torch.manual_seed(cfg.trainer.seed)
    ref_model = build_reference(cfg.model, sizes).to(device)
    ref_opt = build_optimizer(ref_model, cfg.optimizer)
    criterion = torch.nn.CrossEntropyLoss(ignore_index=sizes.tgt_pad)
    # The tutorials' loaders hand out time-major (S, B) / (T, B) tensors.
    ref_data = [
        (b.src.t().contiguous().to(device), b.tgt.t().contiguous().to(device)) for b in batches[0]
    ]
    ratio, clip = cfg.trainer.teacher_forcing, cfg.trainer.clip_grad_norm

    def ref_step(i: int) -> object:
        src, trg = ref_data[i]
        return tutorial_train_step(ref_model, ref_opt, criterion, src, trg, ratio, clip)

    torch.manual_seed(cfg.trainer.seed)
    model = build_model(cfg.model, sizes).to(device)
    trainer = Trainer(
        model,
        build_optimizer(model, cfg.optimizer),
        None,
        cfg.trainer,
        device=device,
        out_dir=out_dir,
        validate=lambda m: {},
        checkpoint_data={},
    )
    pin = device.type == "cuda"
    host = [b.pin_memory() if pin else b for b in batches[1]]

    def nmt_step(i: int) -> object:
        return trainer.train_step(host[i].to(device, non_blocking=True))

    return (
        Side("reference", ref_step, count_params(ref_model), [b.ntokens for b in batches[0]]),
        Side("nmt", nmt_step, count_params(model), [b.ntokens for b in batches[1]]),
    )


def run_benchmark(sides: tuple[Side, Side], warmup: int, steps: int, device: torch.device) -> None:
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    for side in sides:
        side.peak_mb = measure_peak_mb(partial(side.step, 0), device)
        for i in range(1, warmup):
            side.step(i % len(side.ntokens))
    for i in range(steps):
        index = warmup + i
        order = sides if i % 2 == 0 else sides[::-1]
        for side in order:
            sync()
            start = time.perf_counter()
            side.step(index)
            sync()
            elapsed = time.perf_counter() - start
            side.seconds += elapsed
            side.times.append(elapsed)
            side.tokens += side.ntokens[index]


def report(
    args: argparse.Namespace,
    cfg: TrainConfig,
    sides: tuple[Side, Side],
    sizes: VocabSizes,
    device: torch.device,
    per_epoch: tuple[int, int] | None,
    pairs: int,
    argv: list[str] | None,
) -> float:
    """Print both sides, write the row unless --no-write; the speedup (nmt / reference)."""
    ref, ours = sides
    ratio, batch_size = cfg.trainer.teacher_forcing, cfg.trainer.batch_size
    print(f"recipe={args.recipe} device={device} teacher_forcing={ratio} batch={batch_size}")
    print(f"params reference={ref.params} nmt={ours.params} tgt_vocab={sizes.tgt}")
    for side in sides:
        print(f"{side.name}: {side.tokens_per_s:.1f} tokens/s, peak memory {side.peak_mb:.1f} MB")
    speedup = ours.tokens_per_s / ref.tokens_per_s
    command = command_line("bench_train.py", argv)
    if per_epoch is None:
        table, row = docs.STEP_TABLE, docs.step_row(args, cfg, sides, sizes, device, command)
    else:
        for side, batches in zip(sides, per_epoch):
            seconds = side.seconds_per_step * batches
            print(
                f"{side.name}: {side.seconds_per_step:.3f} s/step x {batches} batches/epoch "
                f"= {seconds:.1f} s/epoch (extrapolated)"
            )
        speedup = ref.seconds_per_step * per_epoch[0] / (ours.seconds_per_step * per_epoch[1])
        table, row = (
            docs.EPOCH_TABLE,
            docs.epoch_row(args, cfg, sides, per_epoch, pairs, device, command),
        )
    if not args.no_write:
        docs.update_table_section(Path(args.out), table, row)
    return speedup


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    cfg = compose_config(args)
    random.seed(args.seed)
    examples, sizes, pipeline = load_examples(cfg, args)
    count = args.warmup + args.steps
    per_epoch: tuple[int, int] | None = None
    if args.batching == "tutorial":
        (ref_batches, ref_n), (nmt_batches, nmt_n) = epoch_batches(
            cfg, args, examples, pipeline, count
        )
        per_epoch = (ref_n, nmt_n)
    else:
        ref_batches = nmt_batches = same_batches(cfg, args, examples, pipeline, count)
    with tempfile.TemporaryDirectory() as tmp:
        sides = make_sides(cfg, (ref_batches, nmt_batches), sizes, device, Path(tmp))
        run_benchmark(sides, args.warmup, args.steps, device)
    speedup = report(args, cfg, sides, sizes, device, per_epoch, len(examples), argv)
    print(f"speedup={speedup:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
