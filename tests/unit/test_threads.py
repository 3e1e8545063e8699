"""CPU threads of a command (issue 15, item 10): the ``threads`` key, then
$OMP_NUM_THREADS, then the cores split among a parallel sweep's jobs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from hydra.types import RunMode
from omegaconf import OmegaConf

from nmt.cli import parallel_jobs
from nmt.config import ConfigError, EvaluateConfig, ServeConfig, TrainConfig, TranslateConfig
from nmt.utils import choose_threads, cpu_cores, set_threads


@pytest.fixture
def no_omp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


@pytest.fixture
def keep_torch_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_the_key_beats_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert choose_threads(5) == 5
    assert choose_threads(5, parallel_jobs=4) == 5
    assert choose_threads(None) == 3
    assert choose_threads(None, parallel_jobs=4) == 3


@pytest.mark.parametrize("value", ["", "0", "abc", "-2"])
def test_unusable_environment_is_ignored(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    assert choose_threads(None) is None


def test_a_parallel_sweep_splits_the_cores(no_omp: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("nmt.utils.cpu_cores", lambda: 16)
    assert choose_threads(None) is None  # torch's default
    assert choose_threads(None, parallel_jobs=4) == 4
    assert choose_threads(None, parallel_jobs=3) == 5
    assert choose_threads(None, parallel_jobs=32) == 1


def test_set_threads_applies_to_torch(no_omp: None, keep_torch_threads: None) -> None:
    assert set_threads(1) == 1 == torch.get_num_threads()
    before = torch.get_num_threads()
    assert set_threads(None) == before  # null and no environment: left alone


def hydra_node(mode: RunMode, launcher: dict[str, object]) -> object:
    return OmegaConf.create({"mode": mode, "launcher": launcher})


def test_parallel_jobs_reads_the_launcher() -> None:
    joblib = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    assert parallel_jobs(hydra_node(RunMode.RUN, {"n_jobs": 4})) == 1
    assert parallel_jobs(hydra_node(RunMode.MULTIRUN, {"_target_": "basic"})) == 1
    assert parallel_jobs(hydra_node(RunMode.MULTIRUN, {"_target_": joblib, "n_jobs": 4})) == 4
    assert parallel_jobs(hydra_node(RunMode.MULTIRUN, {"n_jobs": -1})) == cpu_cores()
    assert parallel_jobs(hydra_node(RunMode.MULTIRUN, {"n_jobs": -(10**6)})) == 1


@pytest.mark.parametrize("schema", [TrainConfig, EvaluateConfig, TranslateConfig, ServeConfig])
def test_every_command_root_has_a_checked_threads_key(schema: type) -> None:
    assert schema().threads is None
    assert schema(threads=2).threads == 2
    with pytest.raises(ConfigError, match="threads=0"):
        schema(threads=0)
