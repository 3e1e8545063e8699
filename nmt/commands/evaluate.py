"""`nmt evaluate`: loss, perplexity, sacreBLEU and chrF of a checkpoint."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from nmt.commands.common import choose_decoding, evaluate_and_write, load_model
from nmt.config import EvaluateConfig, checkpoint_list, to_plain
from nmt.data.corpus import load_split, read_parallel
from nmt.utils import pick_device

log = logging.getLogger(__name__)


def run(cfg: EvaluateConfig, out_dir: Path | None = None) -> dict[str, Any]:
    """Evaluate; writes hypotheses.txt and report.json, returns the report."""
    device = pick_device(cfg.device)
    loaded = load_model(checkpoint_list(cfg.checkpoint), device)
    decoding, source = choose_decoding(cfg, loaded)
    log.info("decoding: %s, from the %s", decoding.strategy.value, source)
    if cfg.src and cfg.ref:
        data = read_parallel(cfg.src, cfg.ref)
        split = "files"
    else:
        data_cfg = loaded.train_config.data
        if cfg.data_root:
            data_cfg = replace(data_cfg, root=cfg.data_root)
        data = load_split(data_cfg, cfg.split)
        split = cfg.split
    target = Path(cfg.output_dir) if cfg.output_dir else loaded.path.parent
    extra = {
        "split": split,
        "src": data.src_path,
        "ref": data.tgt_path,
        "checkpoint": str(loaded.path)
        if len(loaded.paths) == 1
        else [str(p) for p in loaded.paths],
        "decoding": to_plain(decoding),
        "decoding_source": source,
        "hypotheses": str(target / "hypotheses.txt"),
    }
    report = evaluate_and_write(loaded, data, decoding, device, target, extra, progress=True)
    result = report.summary() | extra
    log.info("wrote %s and %s", target / "hypotheses.txt", target / "report.json")
    print(json.dumps(result))
    return result
