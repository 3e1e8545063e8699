"""The page at `/` in a real browser: headless Chromium (Debian's chromium and
chromium-driver) driven by selenium, against `nmt serve` in a subprocess.

Skipped, with the reason, only when chromium or chromedriver is not installed
(`.ci/run` installs them).  ``NMT_SCREENSHOT_DIR=docs`` also copies the
screenshot to ``docs/serve.png``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from bench_serve import running_server
from serve_screenshot import choose_hypothesis, chromium, find_browser, translate_in_page
from tiny_checkpoint import save_tiny_checkpoint

from nmt.config import decoding_preset
from nmt.translation import translate_nbest

SENTENCE = "s3 s1 s4 s7 s2"


def test_page_translates_and_shows_the_attention_of_the_chosen_hypothesis(
    tmp_path: Path, trained_tiny_attention, tiny_pipeline, synthetic_corpus
) -> None:
    if find_browser() is None:
        missing = "chromium or chromedriver missing (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):  # .ci/run installs them: CI must run this test, not skip it
            pytest.fail(missing)
        pytest.skip(missing)
    model, model_cfg = trained_tiny_attention
    checkpoint = save_tiny_checkpoint(
        tmp_path / "tiny.pt", model, model_cfg, tiny_pipeline, synthetic_corpus.root
    )
    decoding = decoding_preset("beam")
    options = {"strategy": "beam", "beam_size": 4, "n_best": 3}
    decoding.beam_size, decoding.n_best = 4, 3
    (expected,) = translate_nbest(
        model, [SENTENCE], tiny_pipeline, decoding, torch.device("cpu"), keep_attention=True
    )
    with (
        running_server(checkpoint, ["device=cpu"], threads=1) as url,
        chromium(tmp_path / "profile") as driver,
    ):
        view = translate_in_page(driver, url, SENTENCE, options)
        assert view.error == ""
        assert view.translations == [expected[0].text]
        assert view.translations[0] and all(w.startswith("T") for w in view.translations[0].split())
        assert view.nbest == [t.text for t in expected]
        assert all(score.strip() for score in view.scores)
        best = expected[0]
        assert (view.rows, view.cols) == (len(best.tokens), len(best.src_tokens))
        assert view.cells_per_row == [len(best.src_tokens)] * len(best.tokens)
        assert view.src_tokens == best.src_tokens and view.tgt_tokens == best.tokens
        shot = tmp_path / "serve.png"
        driver.save_screenshot(str(shot))
        other = choose_hypothesis(driver, 2)
        third = expected[2]
        assert (other.rows, other.cols) == (len(third.tokens), len(third.src_tokens))
        assert other.tgt_tokens == third.tokens
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("NMT_SCREENSHOT_DIR"):
        target = Path(os.environ["NMT_SCREENSHOT_DIR"]) / "serve.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)
