"""What the scripts share: the machine line, the `nmt` command, Markdown
sections they own, the train config as `nmt train` composes it.

The scripts import it as ``from _common import ...``: run as ``python
scripts/x.py``, the scripts folder is first on ``sys.path``.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from nmt.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    """The CPU's model name (Linux), else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: str | torch.device = "cpu", threads: int | None = None) -> str:
    """Where a figure was measured, in one line: the GPU (for a CUDA device),
    the CPU's cores and model, and the torch threads (``threads``, or this
    process's)."""
    threads = threads or torch.get_num_threads()
    cpu = f"{os.cpu_count()} CPU cores ({cpu_model()}), {threads} torch thread" + "s" * (
        threads != 1
    )
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name(torch.device(device))}; {cpu}"
    return cpu


def command_line(script: str, argv: list[str] | None = None) -> str:
    """How to run ``scripts/<script>`` again with these arguments (default: sys.argv's)."""
    args = sys.argv[1:] if argv is None else argv
    return " ".join(["python", f"scripts/{script}", *map(shlex.quote, args)])


def nmt_command() -> list[str]:
    """The `nmt` console script next to this Python, else ``python -m nmt``."""
    exe = Path(sys.executable).with_name("nmt")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "nmt"]


def decoding_overrides(beam_size: int, length_penalty: float) -> list[str]:
    """`nmt evaluate` overrides for greedy (beam size 1) or beam search."""
    if beam_size == 1:
        return ["decoding=greedy"]
    return [
        "decoding=beam",
        f"decoding.beam_size={beam_size}",
        f"decoding.length_penalty={length_penalty}",
    ]


def compose_train_config(overrides: list[str]) -> TrainConfig:
    """The validated train config `nmt train <overrides>` would run with."""
    from hydra import compose, initialize_config_module

    from nmt.config import TrainConfig, register_configs, to_dataclass

    register_configs()
    with initialize_config_module(config_module="nmt.configs", version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    return to_dataclass(cfg, TrainConfig)


def _section_pattern(start: str, end: str) -> re.Pattern[str]:
    return re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)


def section_of(text: str, start: str, end: str) -> str | None:
    """The first section of ``text`` from marker ``start`` to marker ``end``, or None."""
    match = _section_pattern(start, end).search(text)
    return match.group(0) if match else None


# an absolute path in a text: not a URL's, not "tokens/s"; system paths are kept
_ABSOLUTE = re.compile(r"(?<![\w.~$/:<>-])(/(?:[\w.@+-]+/)+[\w.@+-]+)(?![\w.@+:-])")
_SYSTEM = ("/dev/", "/proc/", "/sys/", "/etc/", "/usr/", "/bin/", "/path/to/")  # and placeholders


def public_path(path: str) -> str:
    """How docs show a path of this machine: relative to the repository, under
    ``$NMT_DATA_DIR``, from a run's ``outputs/`` folder on, or as its last
    parts after ``…/`` (three for a checkpoint in ``checkpoints/``, else two)."""
    parts = Path(path).parts[1:]
    if path.startswith(_SYSTEM) or not parts:
        return path
    if Path(path).is_relative_to(ROOT):
        return str(Path(path).relative_to(ROOT)) if Path(path) != ROOT else "."
    data = os.environ.get("NMT_DATA_DIR")
    if data and Path(path).is_relative_to(data) and Path(path) != Path(data):
        return "$NMT_DATA_DIR/" + str(Path(path).relative_to(data))
    if data and Path(path) == Path(data):
        return "$NMT_DATA_DIR"
    if "outputs" in parts:
        return "/".join(parts[parts.index("outputs") :])
    keep = 3 if len(parts) >= 3 and parts[-2] == "checkpoints" else 2
    return "…/" + "/".join(parts[-keep:])


def public_paths(text: str) -> str:
    """``text`` with every absolute path of this machine shown by :func:`public_path`
    (docs never print where a machine keeps its files)."""
    return _ABSOLUTE.sub(lambda m: public_path(m.group(1)), text)


def replace_section(text: str, start: str, end: str, block: str) -> str:
    """``text`` with its section between the markers replaced by ``block`` (which
    holds the markers itself; its paths made public), or with ``block``
    appended; the rest is kept."""
    block = public_paths(block)
    pattern = _section_pattern(start, end)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text, count=1)
    return text.rstrip("\n") + "\n\n" + block + "\n"


def update_file_section(path: Path, start: str, end: str, block: str, header: str) -> None:
    """:func:`replace_section` on a file; a missing file starts as ``header``."""
    text = path.read_text(encoding="utf-8") if path.is_file() else header
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(replace_section(text, start, end, block), encoding="utf-8")


if __name__ == "__main__":
    # `python scripts/_common.py --public-paths FILE...`: rewrite the machine
    # paths of docs written before the scripts made them public (see public_paths)
    if sys.argv[1:2] != ["--public-paths"]:
        sys.exit("usage: python scripts/_common.py --public-paths FILE...")
    for name in sys.argv[2:]:
        doc = Path(name)
        doc.write_text(public_paths(doc.read_text(encoding="utf-8")), encoding="utf-8")
