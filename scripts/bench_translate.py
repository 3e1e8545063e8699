#!/usr/bin/env python
"""Greedy vs beam search, and batched vs one-sentence-at-a-time decoding.

    python scripts/bench_translate.py --checkpoint outputs/RUN/checkpoints/best.pt \\
        [--src FILE --ref FILE | --split test_2016_flickr] [--limit N] [--device auto]

In one run, on the same sentences: sacreBLEU of greedy and of beam search,
and sentences per second of batched greedy, batched beam search and a greedy
loop that decodes one sentence at a time with a host sync per token (the way
the PyTorch tutorials translate), with the speed ratios against that loop.
Times cover decoding only (ids in, ids out; tokenization excluded), after one
warm-up batch.  The figures are printed and written to a section of
docs/performance.md (``--out``) that this script owns, between HTML comments;
a run replaces its own earlier entry (same checkpoint, data, device, limit).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import command_line, machine, public_paths  # noqa: E402

from nmt.checkpoint import load_checkpoint  # noqa: E402
from nmt.commands.common import LoadedModel, load_model  # noqa: E402
from nmt.config import DecodingConfig, decoding_preset  # noqa: E402
from nmt.data.corpus import ParallelText, load_split, read_parallel  # noqa: E402
from nmt.decoding.greedy import output_limits  # noqa: E402
from nmt.metrics import score_translations  # noqa: E402
from nmt.translation import translate_ids  # noqa: E402
from nmt.utils import pick_device  # noqa: E402

HEADING = "## Decoding: greedy vs beam, batched vs one at a time (`scripts/bench_translate.py`)"


@dataclass
class Measure:
    label: str
    bleu: float
    sents_per_s: float
    seconds: float


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="a checkpoint file or run dir")
    p.add_argument("--split", default="test_2016_flickr", help="split of the model's corpus")
    p.add_argument("--data-root", help="folder with the Multi30k files")
    p.add_argument("--src", help="source file (with --ref) instead of a split")
    p.add_argument("--ref", help="reference file")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--limit", type=int, help="use the first N lines only")
    p.add_argument("--beam-size", type=int, help="default: configs/decoding/beam.yaml")
    p.add_argument("--length-penalty", type=float, help="default: configs/decoding/beam.yaml")
    p.add_argument("--batch-size", type=int, help="sentences per batch (both searches)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--out", default="docs/performance.md", help="the Markdown file to update")
    args = p.parse_args(argv)
    if bool(args.src) != bool(args.ref):
        p.error("--src and --ref go together")
    return args


def preset(name: str, **overrides: object) -> DecodingConfig:
    """The decoding config that ``decoding=<name>`` selects, with overrides."""
    return replace(decoding_preset(name), **{k: v for k, v in overrides.items() if v is not None})


def load_data(args: argparse.Namespace, loaded: LoadedModel) -> ParallelText:
    if args.src:
        data = read_parallel(args.src, args.ref)
    else:
        cfg = loaded.train_config.data
        data = load_split(replace(cfg, root=args.data_root) if args.data_root else cfg, args.split)
    if args.limit:
        data = ParallelText(
            data.src[: args.limit], data.tgt[: args.limit], data.src_path, data.tgt_path
        )
    return data


@torch.no_grad()
def one_at_a_time(
    loaded: LoadedModel, src_ids: list[list[int]], decoding: DecodingConfig, device: torch.device
) -> list[list[int]]:
    """Greedy decoding of one sentence after another, reading each token back
    to the host to test for <eos>: the tutorials' loop, as the reference."""
    model, vocab = loaded.model, loaded.pipeline.tgt_vocab
    outputs = []
    for ids in src_ids:
        if not ids:
            outputs.append([])
            continue
        src = torch.tensor([ids], device=device)
        lengths = torch.tensor([len(ids)], device=device)
        limit = int(output_limits(lengths, decoding.max_len, decoding.max_len_ratio)[0])
        enc = model.encode(src, lengths)
        state = model.init_state(enc, limit)
        y, out = torch.tensor([vocab.bos_idx], device=device), []
        for _ in range(limit):
            logits, state, _ = model.decode_step(y, state, enc)
            token = int(logits.argmax(-1).item())
            if token == vocab.eos_idx:
                break
            out.append(token)
            y = torch.tensor([token], device=device)
        outputs.append(out)
    return outputs


def timed(fn: Callable[[], list[list[int]]], device: torch.device) -> tuple[list[list[int]], float]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def run(args: argparse.Namespace) -> list[Measure]:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    loaded = load_model(args.checkpoint, device)
    data = load_data(args, loaded)
    pipeline = loaded.pipeline
    src_ids, _ = pipeline.encode_sources(data.src)
    greedy = preset("greedy", batch_size=args.batch_size)
    beam = preset(
        "beam",
        beam_size=args.beam_size,
        length_penalty=args.length_penalty,
        batch_size=args.batch_size,
    )
    model = loaded.model
    translate_ids(model, src_ids[:8], pipeline, beam, device)  # warm-up
    runs: list[tuple[str, Callable[[], list[list[int]]]]] = [
        ("greedy, one sentence at a time", lambda: one_at_a_time(loaded, src_ids, greedy, device)),
        (
            f"greedy, batched ({greedy.batch_size} sentences)",
            lambda: translate_ids(model, src_ids, pipeline, greedy, device),
        ),
        (
            f"beam {beam.beam_size} (length penalty {beam.length_penalty:g}), "
            f"batched ({beam.batch_size} sentences)",
            lambda: translate_ids(model, src_ids, pipeline, beam, device),
        ),
    ]
    figures = []
    for label, fn in runs:
        outputs, seconds = timed(fn, device)
        hyps = [pipeline.decode(ids) if ids else "" for ids in outputs]
        bleu = score_translations(hyps, list(data.tgt)).bleu
        figures.append(Measure(label, bleu, len(src_ids) / seconds, seconds))
    report(args, figures, loaded, data, device)
    return figures


def table(figures: list[Measure]) -> list[str]:
    base = figures[0].sents_per_s
    lines = [
        "| decoding | sacreBLEU | sentences/s | time (s) | speed vs one at a time |",
        "|---|---|---|---|---|",
    ]
    for f in figures:
        lines.append(
            f"| {f.label} | {f.bleu:.2f} | {f.sents_per_s:.1f} | {f.seconds:.2f} | "
            f"{f.sents_per_s / base:.1f}x |"
        )
    return lines


def model_facts(loaded: LoadedModel) -> str:
    """Size and training progress of the checkpoint, from the file itself."""
    params = sum(p.numel() for p in loaded.model.parameters())
    data = load_checkpoint(loaded.path)
    state, val = data.get("trainer_state") or {}, data.get("val_metrics") or {}
    text = f"{loaded.train_config.model.arch}, {params:,} parameters"
    if "epoch" in state:
        text += f", saved after epoch {state['epoch']} (step {state.get('step', '?')})"
    if "val_bleu" in val:
        text += f", val BLEU {val['val_bleu']:.2f}"
    return text


def report(
    args: argparse.Namespace,
    figures: list[Measure],
    loaded: LoadedModel,
    data: ParallelText,
    device: torch.device,
) -> None:
    rows = table(figures)
    print("\n".join(rows))
    key = f"{loaded.path.resolve()} | {data.src_path} | {device} | {args.limit}"
    command = command_line("bench_translate.py")
    entry = [
        f"### {loaded.path.name} ({loaded.train_config.model.arch}) on {device}",
        "",
        f"- command: `{command}`",
        f"- model: {model_facts(loaded)}",
        f"- data: `{data.src_path}`, {len(data.src)} sentences",
        f"- machine: {machine(device)}; torch {torch.__version__}; "
        f"date: {dt.datetime.now():%Y-%m-%d %H:%M}",
        "",
        *rows,
        "",
    ]
    path = Path(args.out)
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(update_section(text, key, "\n".join(entry)), encoding="utf-8")
    print(f"wrote {path}")


def update_section(
    text: str, key: str, entry: str, *, name: str = "bench_translate", heading: str = HEADING
) -> str:
    """``text`` with the section of script ``name`` holding ``entry`` under ``key``
    (replacing an entry of the same key); the rest of the file is kept."""
    key = public_paths(key).replace("--", "- -")  # never end the HTML comment early
    entry = public_paths(entry)
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    entries: dict[str, str] = {}
    if start in text and end in text:
        head, rest = text.split(start, 1)
        body, tail = rest.split(end, 1)
        pattern = re.compile(rf"<!-- {re.escape(name)}:entry (.+?) -->\n")
        parts = pattern.split(body)  # [heading, key1, entry1, key2, entry2, ...]
        entries = {k: v.strip() + "\n" for k, v in zip(parts[1::2], parts[2::2])}
    else:  # no section yet: append one (or start the file)
        head = text.rstrip("\n") + "\n\n" if text.strip() else "# Performance\n\n"
        tail = "\n"
    entries[key] = entry.strip() + "\n"
    body = "".join(f"\n<!-- {name}:entry {k} -->\n{v}" for k, v in entries.items())
    return f"{head}{start}\n{heading}\n{body}{end}{tail}"


def main(argv: list[str] | None = None) -> None:
    run(parse_args(argv))


if __name__ == "__main__":
    main()
