#!/usr/bin/env python
"""Drive `nmt serve`'s page in headless Chromium: type, translate, read the page, screenshot.

    python scripts/serve_screenshot.py --checkpoint RUN/checkpoints/best.pt \\
        [--text "Ein Hund rennt durch den Schnee."] [--out docs/serve.png]

Starts the server on a free localhost port, types the text into the page,
asks for beam search with an n-best list, and saves a screenshot of the
result.  tests/integration/test_serve_page.py drives the page with the same
functions.  Needs Debian's ``chromium`` and ``chromium-driver`` and selenium.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_serve import running_server  # scripts/ is on sys.path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
]


def find_browser() -> tuple[str, str] | None:
    """Paths of chromium and chromedriver, or None when either is missing."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@contextlib.contextmanager
def chromium(profile: Path) -> Iterator[Any]:
    """A selenium driver of headless Chromium with a fresh profile in ``profile``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    found = find_browser()
    if found is None:
        raise RuntimeError(
            "chromium / chromedriver not found: apt-get install chromium chromium-driver"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=found[1]))
    try:
        yield driver
    finally:
        driver.quit()


@dataclass
class PageView:
    """What the page shows after a translation (read from the DOM)."""

    translations: list[str]
    nbest: list[str]
    scores: list[str]
    src_tokens: list[str]  # the heatmap's column labels
    tgt_tokens: list[str]  # its row labels
    cells_per_row: list[int]
    rows: int  # the table's data-rows / data-cols attributes
    cols: int
    error: str


def read_page(driver: Any) -> PageView:
    from selenium.webdriver.common.by import By

    def texts(selector: str) -> list[str]:
        return [
            e.get_attribute("textContent") for e in driver.find_elements(By.CSS_SELECTOR, selector)
        ]

    table = driver.find_element(By.ID, "heatmap")
    rows = driver.find_elements(By.CSS_SELECTOR, "#heatmap tbody tr")
    return PageView(
        translations=texts("#lines .translation"),
        nbest=texts("#nbest .hyp-text"),
        scores=texts("#nbest .score"),
        src_tokens=texts("#heatmap thead th.src-token"),
        tgt_tokens=texts("#heatmap tbody th.tgt-token"),
        cells_per_row=[len(r.find_elements(By.CSS_SELECTOR, "td.cell")) for r in rows],
        rows=int(table.get_attribute("data-rows") or 0),
        cols=int(table.get_attribute("data-cols") or 0),
        error=driver.find_element(By.ID, "error").get_attribute("textContent"),
    )


def translate_in_page(
    driver: Any, url: str, text: str, options: dict[str, Any], timeout: float = 60
) -> PageView:
    """Open the page, type ``text``, set the decoding ``options`` (strategy first),
    press Translate and wait for the answer."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver.get(url)
    wait = WebDriverWait(driver, timeout)
    wait.until(lambda d: not d.find_element(By.ID, "model-info").text.startswith("loading"))
    driver.find_element(By.ID, "source").send_keys(text)
    Select(driver.find_element(By.ID, "strategy")).select_by_value(
        options.get("strategy", "greedy")
    )
    for key, value in options.items():
        if key != "strategy":
            field = driver.find_element(By.ID, key)
            field.clear()
            field.send_keys(str(value))
    done = driver.find_element(By.ID, "output").get_attribute("data-translated")
    driver.find_element(By.ID, "translate").click()
    wait.until(lambda d: d.find_element(By.ID, "output").get_attribute("data-translated") != done)
    return read_page(driver)


def choose_hypothesis(driver: Any, index: int) -> PageView:
    """Click entry ``index`` of the n-best list; the page as it then is."""
    from selenium.webdriver.common.by import By

    driver.find_elements(By.CSS_SELECTOR, "#nbest li")[index].click()
    return read_page(driver)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument(
        "--text", default="Ein Mädchen in einem Karateanzug bricht ein Brett mit einem Tritt."
    )
    p.add_argument("--beam-size", type=int, default=5)
    p.add_argument("--n-best", type=int, default=3)
    p.add_argument("--out", default="docs/serve.png")
    args = p.parse_args(argv)
    options = {"strategy": "beam", "beam_size": args.beam_size, "n_best": args.n_best}
    with (
        tempfile.TemporaryDirectory() as profile,
        running_server(args.checkpoint, ["device=cpu"]) as url,
        chromium(Path(profile)) as driver,
    ):
        view = translate_in_page(driver, url, args.text, options)
        if view.error:
            raise SystemExit(f"the page shows an error: {view.error}")
        driver.save_screenshot(args.out)
    print(f"{view.translations[0]!r}; heatmap {view.rows}x{view.cols}; wrote {args.out}")


if __name__ == "__main__":
    main()
