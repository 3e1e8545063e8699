"""`nmt serve`: the HTTP server and web page over a checkpoint.

The one place where the server meets the model: it loads the checkpoint with
the loader `nmt translate` uses (so whatever that loader accepts - an ensemble
later - is served the same way), hands the server a translate function built
on ``translate_nbest``, and gathers the facts ``/info`` shows.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from nmt.checkpoint import load_checkpoint, run_dir_of
from nmt.commands.common import LoadedModel, choose_decoding, load_model
from nmt.config import DataSource, DecodingConfig, ServeConfig, checkpoint_list, to_plain
from nmt.serve.app import Engine, create_app, run_server
from nmt.translation import Translation, translate_nbest
from nmt.utils import pick_device

log = logging.getLogger(__name__)


def make_engine(cfg: ServeConfig) -> Engine:
    device = pick_device(cfg.device)
    loaded = load_model(checkpoint_list(cfg.checkpoint), device)
    decoding, source = choose_decoding(cfg, loaded)

    def translate(
        lines: list[str], decoding: DecodingConfig, keep_attention: bool
    ) -> list[list[Translation]]:
        return translate_nbest(
            loaded.model, lines, loaded.pipeline, decoding, device, keep_attention=keep_attention
        )

    info = model_info(loaded) | {"device": str(device)}
    return Engine(translate=translate, info=info, decoding=decoding, decoding_source=source)


def shown_path(path: Path) -> str:
    """A checkpoint's path as /info shows it: relative to the working directory
    when it lies below it, else from its run dir's name on (never the machine's
    absolute path)."""
    path = path.resolve()
    if path.is_relative_to(Path.cwd()):
        return str(path.relative_to(Path.cwd()))
    run_dir = run_dir_of(path)
    return str(path.relative_to(run_dir.parent))


def checkpoint_facts(path: Path) -> dict[str, Any]:
    """Training progress and scores one checkpoint file carries."""
    data = load_checkpoint(path)
    state, val = data.get("trainer_state") or {}, data.get("val_metrics") or {}
    return {
        "checkpoint": shown_path(path),
        "step": state.get("step"),
        "epoch": state.get("epoch"),
        # the checkpoint keeps the validation scores of the epoch it was saved
        # after, but not sacreBLEU's signature
        "val": {
            "bleu": val.get("val_bleu"),
            "loss": val.get("val_loss"),
            "ppl": val.get("val_ppl"),
            "signature": None,
        },
        "test": test_scores(path),
        "averaged_from": [Path(p).name for p in data.get("averaged_from") or []] or None,
    }


def model_info(loaded: LoadedModel) -> dict[str, Any]:
    """Architecture, languages, size, training progress and scores of the
    checkpoint; for an ensemble, each member's own progress and scores under
    ``ensemble`` and none at the top (no single step or score is its own)."""
    cfg = loaded.train_config
    multi30k = cfg.data.source == DataSource.multi30k
    if len(loaded.paths) > 1:
        members: list[dict[str, Any]] | None = [checkpoint_facts(p) for p in loaded.paths]
        own: dict[str, Any] = dict.fromkeys(("checkpoint", "step", "epoch", "averaged_from"))
        own |= {"test": {}, "val": dict.fromkeys(("bleu", "loss", "ppl", "signature"))}
    else:
        members, own = None, checkpoint_facts(loaded.path)
    return own | {
        "ensemble": members,
        "architecture": cfg.model.arch,
        "model": to_plain(cfg.model),
        "languages": {
            "src": cfg.data.src_lang if multi30k else None,
            "tgt": cfg.data.tgt_lang if multi30k else None,
        },
        "data": cfg.data.source.value,
        "parameters": sum(p.numel() for p in loaded.model.parameters()),
    }


def test_scores(checkpoint: Path) -> dict[str, Any]:
    """Test BLEU with signature per split, from the run's summary.json, which
    `nmt train` writes after scoring its ``checkpoints/best.pt`` (so only for that file)."""
    summary = run_dir_of(checkpoint) / "summary.json"
    if checkpoint.name != "best.pt" or checkpoint.parent.name != "checkpoints":
        return {}
    try:
        tests = json.loads(summary.read_text(encoding="utf-8")).get("test") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    keys = ("bleu", "signature", "chrf", "chrf_signature", "num_sentences")
    return {split: {k: report.get(k) for k in keys} for split, report in tests.items()}


def run(cfg: ServeConfig, out_dir: Path | None = None) -> None:
    """Serve until interrupted."""
    engine = make_engine(cfg)
    if cfg.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("host=%s: the server is reachable from other machines", cfg.host)
    log.info(
        "serving %s (%s, %s parameters, torch threads %d) on http://%s:%d/",
        engine.info["checkpoint"] or f"an ensemble of {len(engine.info['ensemble'])}",
        engine.info["architecture"],
        f"{engine.info['parameters']:,}",
        torch.get_num_threads(),
        cfg.host,
        cfg.port,
    )
    run_server(create_app(engine, cfg), cfg)
