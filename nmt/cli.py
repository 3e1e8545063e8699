"""`nmt <command> [overrides]`: one Hydra app per command.

``main`` takes the command name off ``sys.argv`` and hands the rest to that
command's ``@hydra.main`` app, so overrides, ``-m`` sweeps, ``--cfg job``,
``--help`` and ``hydra.run.dir=`` all work as Hydra documents them.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from nmt.config import (
    AverageConfig,
    ConfigError,
    DataCommandConfig,
    DecodingConfig,
    EvaluateConfig,
    ModelUseConfig,
    ServeConfig,
    TrainConfig,
    TranslateConfig,
    register_configs,
    to_dataclass,
)
from nmt.files import OutputError
from nmt.utils import bound_native_caches, cpu_cores, set_threads, setup_logging

CONFIG_PATH = "configs"
COMMANDS = {
    "train": "train a model (configs: data, tokenizer, vocab, model, optimizer, trainer, ...)",
    "evaluate": "score a checkpoint: checkpoint=PATH split=NAME (or src= ref=)",
    "translate": "translate a file: checkpoint=PATH input=FILE|- output=FILE|-",
    "data": "fetch and verify Multi30k, print line and token statistics",
    "prepare": "tokenize and encode a corpus once into the store `nmt train` reads (train's keys)",
    "serve": "HTTP API and web page: checkpoint=PATH [host=127.0.0.1 port=8000]",
    "average": "average checkpoints: checkpoints=[a.pt,b.pt] (or run=DIR last=5) output=FILE",
}


def _fail(command: str, message: str) -> None:
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    print(f"nmt {command}: error: {first}", file=sys.stderr)
    sys.exit(1)


def parallel_jobs(hydra_cfg: Any) -> int:
    """Jobs of a multirun sweep that run side by side: the launcher's ``n_jobs``
    (hydra/launcher=joblib; a negative value counts back from the cores, as
    joblib does: -1 = all), else 1 (the basic launcher runs one at a time)."""
    from hydra.types import RunMode

    if hydra_cfg.get("mode") != RunMode.MULTIRUN:
        return 1
    n_jobs = (hydra_cfg.get("launcher") or {}).get("n_jobs")
    if not isinstance(n_jobs, int) or n_jobs == 0:
        return 1
    return n_jobs if n_jobs > 0 else max(1, cpu_cores() + 1 + n_jobs)


def mark_decoding_keys(cfg: DictConfig, hydra_cfg: Any) -> None:
    """Tell a model-using command which decoding the command line asked for
    (see ModelUseConfig): a preset (``decoding=NAME``) leaves ``decoding`` as
    composed; otherwise ``decoding_keys`` gets the ``decoding.KEY=VALUE``
    pairs given (none: ``{}``), to go on top of the checkpoint's recipe, and
    ``decoding`` goes back to the defaults so that the keys are checked
    together with the recipe, not with today's default."""
    if hydra_cfg.runtime.choices.get("decoding") is not None:
        return
    names = [o.lstrip("+~").split("=", 1)[0] for o in hydra_cfg.overrides.task]
    keys = [n.split(".", 1)[1] for n in names if n.startswith("decoding.")]
    given = OmegaConf.to_container(cfg.decoding, enum_to_str=True)
    assert isinstance(given, dict)
    with open_dict(cfg):
        cfg.decoding_keys = {key: given.get(key) for key in keys}
        cfg.decoding = OmegaConf.structured(DecodingConfig)


def _run(command: str, cfg: DictConfig, schema: type, body: Callable[[Any, Path], Any]) -> None:
    """Convert the config, run the command, turn known errors into one line."""
    from nmt.checkpoint import CheckpointError
    from nmt.commands.translate import InputError
    from nmt.data.corpus import DataError
    from nmt.training.trainer import TrainingError, TrainingInterrupted

    setup_logging()
    bound_native_caches()
    typed: Any = None
    hydra_cfg = HydraConfig.get()
    try:
        if issubclass(schema, ModelUseConfig):
            mark_decoding_keys(cfg, hydra_cfg)
        typed = to_dataclass(cfg, schema)
    except (ConfigError, OmegaConfBaseException) as exc:
        _fail(command, str(exc))
    if hasattr(typed, "threads"):
        threads = set_threads(typed.threads, parallel_jobs(hydra_cfg))
        logging.getLogger("nmt").debug("torch CPU threads: %d", threads)  # stderr stays clean
    try:
        body(typed, Path(hydra_cfg.runtime.output_dir))
    except TrainingInterrupted as exc:
        print(f"nmt {command}: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except (ConfigError, DataError, CheckpointError, InputError, OutputError, TrainingError) as exc:
        _fail(command, str(exc))
    except BrokenPipeError:
        quiet_broken_pipe()
    except OSError as exc:
        _fail(command, os_error_line(exc))


def os_error_line(exc: OSError) -> str:
    """An OSError in one line: the file(s) and the system's reason."""
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{' -> '.join(names)}: {reason}" if names else reason


def quiet_broken_pipe() -> None:
    """The reader of stdout went away (``nmt translate ... | head -1``): stop
    without a word, as coreutils do, with the exit status a shell gives a
    process that SIGPIPE ended (128 + 13)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout at exit
    sys.exit(141)


class RunDirGuard(Callback):
    """Claims `nmt train`'s run dir (lock, no silent overwrite: see
    nmt.training.rundir) before Hydra writes ``.hydra/`` and ``train.log`` into
    it, so that a refused run leaves the dir as it was.  Only a single run (not
    a sweep) and only the launching process (rank 0 under torchrun) claim it
    here; the train command claims it again (the same lock) in every case."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        from nmt.checkpoint import CheckpointError
        from nmt.training.rundir import RunDirError, claim_run_dir

        if int(os.environ.get("RANK", "0")) != 0:
            return
        with open_dict(config):  # resolve the clock in the dir's name once, for Hydra too
            config.hydra.run.dir = str(OmegaConf.select(config, "hydra.run.dir"))
        trainer = config.trainer
        try:
            claim_run_dir(
                Path(config.hydra.run.dir),
                resume_from=trainer.resume_from,
                overwrite=bool(trainer.overwrite),
            )
        except (RunDirError, CheckpointError) as exc:
            _fail("train", str(exc))
        except OSError as exc:  # hydra.run.dir= a file, or under one; unwritable
            _fail("train", f"hydra.run.dir={config.hydra.run.dir}: {os_error_line(exc)}")


# added to `nmt train`'s overrides here, not in train.yaml: no YAML file names code
RUN_DIR_GUARD = "+hydra.callbacks.run_dir_guard._target_=nmt.cli.RunDirGuard"


@hydra.main(config_path=CONFIG_PATH, config_name="train", version_base="1.3")
def train_app(cfg: DictConfig) -> None:
    from nmt.commands import train

    _run("train", cfg, TrainConfig, train.run)


@hydra.main(config_path=CONFIG_PATH, config_name="evaluate", version_base="1.3")
def evaluate_app(cfg: DictConfig) -> None:
    from nmt.commands import evaluate

    _run("evaluate", cfg, EvaluateConfig, evaluate.run)


@hydra.main(config_path=CONFIG_PATH, config_name="translate", version_base="1.3")
def translate_app(cfg: DictConfig) -> None:
    from nmt.commands import translate

    _run("translate", cfg, TranslateConfig, translate.run)


@hydra.main(config_path=CONFIG_PATH, config_name="data", version_base="1.3")
def data_app(cfg: DictConfig) -> None:
    from nmt.commands import data

    _run("data", cfg, DataCommandConfig, data.run)


@hydra.main(config_path=CONFIG_PATH, config_name="train", version_base="1.3")
def prepare_app(cfg: DictConfig) -> None:
    from nmt.commands import prepare

    _run("prepare", cfg, TrainConfig, prepare.run)


# `nmt prepare` composes train's config but writes no run dir
PREPARE_OVERRIDES = ["hydra.output_subdir=null", "hydra.run.dir=.", "hydra/job_logging=stdout"]


@hydra.main(config_path=CONFIG_PATH, config_name="serve", version_base="1.3")
def serve_app(cfg: DictConfig) -> None:
    from nmt.commands import serve

    _run("serve", cfg, ServeConfig, serve.run)


@hydra.main(config_path=CONFIG_PATH, config_name="average", version_base="1.3")
def average_app(cfg: DictConfig) -> None:
    from nmt.commands import average

    _run("average", cfg, AverageConfig, average.run)


APPS: dict[str, Callable[[], None]] = {
    "train": train_app,
    "evaluate": evaluate_app,
    "translate": translate_app,
    "data": data_app,
    "prepare": prepare_app,
    "serve": serve_app,
    "average": average_app,
}


# the groups of `nmt train` that must name an option (a recipe needs each)
TRAIN_GROUPS = (
    "data",
    "tokenizer",
    "vocab",
    "model",
    "optimizer",
    "scheduler",
    "trainer",
    "decoding",
    "experiment",
)


def refuse_null_groups(command: str, args: list[str]) -> None:
    """``experiment=null`` (or another train group set to null) in one line,
    before Hydra fails on it with a traceback."""
    if command != "train":
        return
    for arg in args:
        group, _, value = arg.lstrip("+").partition("=")
        if group in TRAIN_GROUPS and value == "null":
            _fail(
                command, f"{group}=null: name one of nmt/configs/{group}/ (see `nmt train --help`)"
            )


def usage() -> str:
    lines = ["usage: nmt <command> [key=value ...] [hydra options]", "", "commands:"]
    lines += [f"  {name:<10} {text}" for name, text in COMMANDS.items()]
    lines += [
        "",
        "`nmt <command> --help` lists its config groups and keys;",
        "`nmt <command> --cfg job` prints the resolved config.",
    ]
    return "\n".join(lines)


def worker_overrides(args: list[str]) -> list[str]:
    """Hydra overrides for the processes torchrun starts besides rank 0.

    Every process runs the Hydra app; rank 0's run dir is the run's (the
    others learn it from rank 0, see nmt.training.distributed), so the others
    write no ``.hydra/`` folder and log to stdout only, leaving nothing in a
    run dir of their own.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or int(os.environ.get("RANK", "0")) == 0:
        return []
    extra = []
    if not any(a.lstrip("+~").startswith("hydra.output_subdir=") for a in args):
        extra.append("hydra.output_subdir=null")
    if not any(a.lstrip("+~").startswith("hydra/job_logging=") for a in args):
        extra.append("hydra/job_logging=stdout")
    return extra


def with_overrides(args: list[str], extra: list[str]) -> list[str]:
    """``args`` with ``extra`` overrides placed beside the user's own: argparse
    takes Hydra's overrides as one run of positionals, so ``extra`` goes just
    before the first override (an argument with ``=`` that is not an option),
    not after options such as ``--cfg job``."""
    first = next((i for i, a in enumerate(args) if "=" in a and not a.startswith("-")), None)
    if first is None:
        return [*args, *extra]
    return [*args[:first], *extra, *args[first:]]


def main() -> None:
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        sys.exit(0 if args else 2)
    command = args[0]
    if command not in APPS:
        print(f"nmt: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        sys.exit(2)
    rest = args[1:]
    refuse_null_groups(command, rest)
    if command == "train":
        rest = with_overrides(rest, [RUN_DIR_GUARD, *worker_overrides(rest)])
    elif command == "prepare":
        rest = with_overrides(rest, PREPARE_OVERRIDES)
    sys.argv = [f"nmt-{command}", *rest]
    register_configs()
    APPS[command]()


if __name__ == "__main__":
    main()
