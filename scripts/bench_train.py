#!/usr/bin/env python
"""Training speed: nmt's train step against the tutorials' loop, same batches.

    python scripts/bench_train.py --recipe bahdanau_seed [--device cpu] [--steps 10]
        [--teacher-forcing 0.5] [--batch-size 128] [--max-examples 6000]
        [--synthetic] [--precision bf16] [--compile] [key=value ...]

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
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime as dt
import gc
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path

import torch
from hydra.errors import ConfigCompositionException

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    command_line,
    compose_train_config,
    machine,
    replace_section,
    section_of,
)
from tutorial_reference import build_reference, tutorial_train_step  # noqa: E402

from nmt.config import TrainConfig, TrainerConfig  # noqa: E402
from nmt.data.batching import Batch, BucketBatchSampler, collate  # noqa: E402
from nmt.data.corpus import load_split  # noqa: E402
from nmt.data.pipeline import build_training_data  # noqa: E402
from nmt.models.registry import VocabSizes, build_model  # noqa: E402
from nmt.training.optim import build_optimizer  # noqa: E402
from nmt.training.trainer import Trainer  # noqa: E402

SECTION_START = "<!-- bench_train:start -->"
SECTION_END = "<!-- bench_train:end -->"
HEADING = "## Training step: nmt vs the tutorials' loop (`scripts/bench_train.py`)"
INTRO = (
    "Target tokens per second of one training step (forward, loss, backward, clip,\n"
    "Adam step) on the same batches, alternating between the two sides in one process.\n"
    "The reference is `scripts/tutorial_reference.py`: the same architecture and sizes,\n"
    "a Python loop over target steps with per-step attention and vocabulary projection\n"
    "and one teacher-forcing coin per batch and step. Peak memory: growth of the\n"
    "resident set during one step (CPU) or peak allocated (CUDA).\n"
    "\n"
    "nmt computes the same model; it differs in how: the additive attention's keys\n"
    "U_a h_j once per batch; sentences sorted by target length, the finished ones\n"
    "dropped from the step loop and padded positions never projected\n"
    "(`Seq2Seq.forward_packed`); under full teacher forcing the vocabulary projection\n"
    "and loss once over all steps, and the RNN in one call where no step reads the\n"
    "previous step's features (Sutskever, Cho, Luong without input feeding). With\n"
    "teacher forcing < 1 each step still needs its logits for the argmax, so Sutskever\n"
    "and Cho gain little more than the padding there.\n"
)
COLUMNS = [
    "recipe",
    "device",
    "teacher forcing",
    "batch",
    "params",
    "tgt vocab",
    "reference tok/s",
    "nmt tok/s",
    "speedup",
    "reference peak MB",
    "nmt peak MB",
    "machine",
    "torch",
    "date",
    "command",
]
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


def load_batches(
    cfg: TrainConfig, args: argparse.Namespace, count: int
) -> tuple[list[Batch], VocabSizes]:
    if args.synthetic:
        size = args.synthetic_vocab
        examples = synthetic_examples(cfg.trainer.batch_size * count, size, args.seed)
        sizes = VocabSizes(src=size, tgt=size, src_pad=PAD, tgt_pad=PAD)
        pad, bos, eos = PAD, BOS, EOS
    else:
        pipeline, examples = build_training_data(load_split(cfg.data, "train"), cfg)
        sizes, tgt_vocab = pipeline.vocab_sizes, pipeline.tgt_vocab
        pad, bos, eos = tgt_vocab.pad_idx, tgt_vocab.bos_idx, tgt_vocab.eos_idx
    sampler = BucketBatchSampler(
        [len(s) for s, _ in examples], cfg.trainer.batch_size, shuffle=True, seed=args.seed
    )
    full = [b for b in sampler.batches() if len(b) == cfg.trainer.batch_size]
    if len(full) < count:
        raise SystemExit(f"only {len(full)} full batches; raise --max-examples")
    batches = [
        collate([examples[i] for i in idx], idx, pad_idx=pad, bos_idx=bos, eos_idx=eos)
        for idx in full[:count]
    ]
    return batches, sizes


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
    seconds: float = 0.0
    tokens: int = 0
    peak_mb: float = 0.0
    times: list[float] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / max(self.seconds, 1e-12)


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def make_sides(
    cfg: TrainConfig, batches: list[Batch], sizes: VocabSizes, device: torch.device, out_dir: Path
) -> tuple[Side, Side]:
    torch.manual_seed(cfg.trainer.seed)
    ref_model = build_reference(cfg.model, sizes).to(device)
    ref_opt = build_optimizer(ref_model, cfg.optimizer)
    criterion = torch.nn.CrossEntropyLoss(ignore_index=sizes.tgt_pad)
    # The tutorials' loaders hand out time-major (S, B) / (T, B) tensors.
    ref_data = [
        (b.src.t().contiguous().to(device), b.tgt.t().contiguous().to(device)) for b in batches
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
    host = [b.pin_memory() if pin else b for b in batches]

    def nmt_step(i: int) -> object:
        return trainer.train_step(host[i].to(device, non_blocking=True))

    return (
        Side("reference", ref_step, count_params(ref_model)),
        Side("nmt", nmt_step, count_params(model)),
    )


def run_benchmark(
    sides: tuple[Side, Side], batches: list[Batch], warmup: int, steps: int, device: torch.device
) -> None:
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    for side in sides:
        side.peak_mb = measure_peak_mb(partial(side.step, 0), device)
        for i in range(1, warmup):
            side.step(i % len(batches))
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
            side.tokens += batches[index].ntokens


# -- the docs table ---------------------------------------------------------------------
def row_key(cells: list[str]) -> tuple[str, str, str]:
    return cells[0], cells[1], cells[2]


def update_docs(path: Path, row: list[str]) -> None:
    """Replace (or add) this row, keyed by recipe/device/ratio, in our own section."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Performance\n"
    old = section_of(text, SECTION_START, SECTION_END)
    rows: list[list[str]] = []
    if old:
        for line in old.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if line.startswith("| ") and len(cells) == len(COLUMNS) and cells[0] != "recipe":
                rows.append(cells)
    rows = [r for r in rows if row_key(r) != row_key(row)] + [row]
    rows.sort(key=row_key)
    table = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
        *("| " + " | ".join(r) + " |" for r in rows),
    ]
    section = "\n".join([SECTION_START, HEADING, "", INTRO, *table, SECTION_END])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(replace_section(text, SECTION_START, SECTION_END, section), encoding="utf-8")


def run_label(args: argparse.Namespace) -> str:
    """The table's first column: the recipe and what changes the run's nature."""
    notes = [f"precision={args.precision}"] if args.precision else []
    notes += ["compile"] if args.compile else []
    notes += ["synthetic"] if args.synthetic else []
    return args.recipe + (f" ({', '.join(notes)})" if notes else "")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here")
    cfg = compose_config(args)
    random.seed(args.seed)
    batches, sizes = load_batches(cfg, args, args.warmup + args.steps)
    with tempfile.TemporaryDirectory() as tmp:
        sides = make_sides(cfg, batches, sizes, device, Path(tmp))
        run_benchmark(sides, batches, args.warmup, args.steps, device)
    ref, ours = sides
    ratio = cfg.trainer.teacher_forcing
    batch_size = cfg.trainer.batch_size
    print(f"recipe={args.recipe} device={device} teacher_forcing={ratio} batch={batch_size}")
    print(f"params reference={ref.params} nmt={ours.params} tgt_vocab={sizes.tgt}")
    for side in sides:
        print(f"{side.name}: {side.tokens_per_s:.1f} tokens/s, peak memory {side.peak_mb:.1f} MB")
    speedup = ours.tokens_per_s / ref.tokens_per_s
    if not args.no_write:
        command = command_line("bench_train.py", argv)
        row = [
            run_label(args),
            device.type,
            f"{ratio:g}",
            str(cfg.trainer.batch_size),
            f"{ours.params:,}",
            str(sizes.tgt),
            f"{ref.tokens_per_s:.0f}",
            f"{ours.tokens_per_s:.0f}",
            f"{speedup:.2f}x",
            f"{ref.peak_mb:.0f}",
            f"{ours.peak_mb:.0f}",
            machine(device),
            torch.__version__,
            dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
            f"`{command}`",
        ]
        update_docs(Path(args.out), row)
    print(f"speedup={speedup:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
