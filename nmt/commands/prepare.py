"""`nmt prepare`: tokenize and encode a corpus once, into the prepared store.

It takes `nmt train`'s config (the same groups and overrides), so that
``nmt prepare experiment=X data.src_lang=en`` makes the very store that
``nmt train experiment=X data.src_lang=en`` then opens in seconds.  Training
prepares on first use too; this command does it ahead (for a cluster's
shared disk, or before a sweep).  It prints one JSON object: where the store
is, its rows per split, the training pairs skipped and the vocabulary sizes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nmt.config import TrainConfig
from nmt.data.store import prepare


def run(cfg: TrainConfig, out_dir: Path | None = None) -> dict[str, Any]:
    prepared = prepare(cfg)
    pipeline = prepared.pipeline
    summary = {
        "store": str(prepared.path),
        "rows": prepared.meta["rows"],
        "skipped": prepared.skipped,
        "vocab": {"src": len(pipeline.src_vocab), "tgt": len(pipeline.tgt_vocab)},
        "prepare_seconds": prepared.meta["seconds"],
    }
    print(json.dumps(summary))
    return summary
