"""`nmt evaluate`: loss, perplexity, sacreBLEU and chrF of a checkpoint."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from nmt.commands.common import (
    choose_decoding,
    evaluate_and_write,
    load_model,
    report_files,
)
from nmt.config import EvaluateConfig, checkpoint_list, to_plain
from nmt.data.corpus import load_split, read_parallel
from nmt.files import check_output
from nmt.utils import pick_device

log = logging.getLogger(__name__)


def output_place(cfg: EvaluateConfig, checkpoints: list[Path], split: str) -> tuple[Path, str]:
    """Where the report goes: ``output_dir`` (as ``hypotheses.txt`` and
    ``report.json``), else beside the (first) checkpoint, named for the
    checkpoint(s) and the split (``best.test_2016_flickr.report.json``), so
    that evaluations of other checkpoints or splits never replace it."""
    if cfg.output_dir:
        return Path(cfg.output_dir), ""
    return checkpoints[0].parent, "+".join(p.stem for p in checkpoints) + f".{split}."


def run(cfg: EvaluateConfig, out_dir: Path | None = None) -> dict[str, Any]:
    """Evaluate; writes the hypotheses and the report (see :func:`output_place`),
    returns the report."""
    device = pick_device(cfg.device)
    loaded = load_model(checkpoint_list(cfg.checkpoint), device)
    decoding, source = choose_decoding(cfg, loaded)
    if cfg.src and cfg.ref:
        data = read_parallel(cfg.src, cfg.ref)
        split = "files"
    else:
        data_cfg = loaded.train_config.data
        if cfg.data_root:
            data_cfg = replace(data_cfg, root=cfg.data_root)
        data = load_split(data_cfg, cfg.split)
        split = cfg.split
    target, prefix = output_place(cfg, loaded.paths, split)
    hyps_file, report_file = report_files(target, prefix)
    for path in (hyps_file, report_file):
        check_output(path, [data.src_path, data.tgt_path, *loaded.paths])
    extra = {
        "split": split,
        "src": data.src_path,
        "ref": data.tgt_path,
        "checkpoint": str(loaded.path)
        if len(loaded.paths) == 1
        else [str(p) for p in loaded.paths],
        "decoding": to_plain(decoding),
        "decoding_source": source,
        "hypotheses": str(hyps_file),
    }
    report = evaluate_and_write(
        loaded, data, decoding, device, target, extra, progress=True, prefix=prefix
    )
    result = report.summary() | extra
    log.info("decoded with %s search, from the %s", decoding.strategy.value, source)
    log.info("wrote %s and %s", hyps_file, report_file)
    print(json.dumps(result))
    return result
