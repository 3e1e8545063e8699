"""Several training processes (torchrun): the process group and what they share.

``torchrun --nproc_per_node=N -m nmt train ...`` starts N processes with
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``
set; :func:`setup` reads them and joins the group (NCCL on CUDA, one GPU per
process; gloo on CPU).  Slurm tasks started by ``srun`` (as Hydra's submitit
launcher does, ``tasks_per_node`` > 1) without those variables are read from
``SLURM_PROCID`` / ``SLURM_NTASKS`` / ``SLURM_LOCALID`` instead.  Without
either, or with one process, everything here is a no-op.

Small control messages (stop flags, RNG states, validation results) travel
on a gloo group over CPU tensors, so that asking "does any process want to
stop?" after a step never waits for the GPU.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from nmt.utils import pick_device

log = logging.getLogger(__name__)


@dataclass
class Distributed:
    """This process's place among the training processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    control: Any = None  # the gloo group for control messages (None: the default group)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs and writes checkpoints."""
        return self.rank == 0

    def any(self, flags: list[bool]) -> list[bool]:
        """Each flag OR-ed over all processes (the same answer everywhere)."""
        if not self.enabled:
            return list(flags)
        values = torch.tensor([int(f) for f in flags], dtype=torch.int32)
        dist.all_reduce(values, op=dist.ReduceOp.MAX, group=self.control)
        return [bool(v) for v in values.tolist()]

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` summed over all processes (in place; on this device)."""
        if self.enabled:
            dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` (picklable) on every process."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0, group=self.control)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every process's ``obj``, indexed by rank (on every process)."""
        if not self.enabled:
            return [obj]
        found: list[Any] = [None] * self.world_size
        dist.all_gather_object(found, obj, group=self.control)
        return found

    def shared_run_dir(self, own: Path) -> Path:
        """Rank 0's run dir for everyone: Hydra names a run dir after the clock in
        each process, and the processes may not start in the same second.  The
        dir Hydra made here is removed when it differs and is empty."""
        chosen = Path(self.broadcast(str(own)))
        if chosen.resolve() != own.resolve():
            with contextlib.suppress(OSError):  # not empty: leave it
                own.rmdir()
        return chosen

    def close(self, wait: bool = True) -> None:
        """Leave the process group.  With ``wait`` (a clean finish) every process
        first waits for the others: one that tears its connections down while
        another still talks to it (rank 0 writing the last checkpoint, say) can
        make gloo abort the process."""
        if self.enabled and dist.is_initialized():
            if wait:
                dist.barrier(group=self.control)
            dist.destroy_process_group()


def world_from_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment variables, or
    from Slurm's in the tasks of an ``srun`` step (exporting torchrun's)."""
    env = os.environ
    if "WORLD_SIZE" not in env and int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_STEP_ID" in env:
        env["RANK"], env["WORLD_SIZE"] = env["SLURM_PROCID"], env["SLURM_NTASKS"]
        env["LOCAL_RANK"] = env.get("SLURM_LOCALID", "0")
        if "MASTER_ADDR" not in env:
            env["MASTER_ADDR"] = _slurm_first_host()
        env.setdefault("MASTER_PORT", str(20000 + int(env.get("SLURM_JOB_ID", "0")) % 20000))
    world = int(env.get("WORLD_SIZE", "1"))
    rank = int(env.get("RANK", "0"))
    local = int(env.get("LOCAL_RANK", str(rank)))
    return rank, world, local


def _slurm_first_host() -> str:
    """The job's first node, where rank 0 runs (``scontrol show hostnames``)."""
    nodes = os.environ.get("SLURM_JOB_NODELIST") or os.environ.get("SLURM_NODELIST", "")
    try:
        found = subprocess.run(
            ["scontrol", "show", "hostnames", nodes], capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        found = []
    if not found:
        raise RuntimeError("Slurm tasks: set MASTER_ADDR to the first node of the job")
    return found[0]


def setup(device_choice: str) -> Distributed:
    """Join the process group torchrun describes (if any) and pick the device."""
    rank, world, local = world_from_env()
    device = pick_device(device_choice)
    if world <= 1:
        return Distributed(device=device)
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise RuntimeError(
                f"process with LOCAL_RANK={local} has no GPU ({torch.cuda.device_count()} "
                "visible): use --nproc_per_node <= the number of GPUs"
            )
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    control = dist.new_group(backend="gloo") if backend != "gloo" else None
    log.info("process %d of %d on %s (%s)", rank, world, device, backend)
    return Distributed(
        rank=rank, world_size=world, local_rank=local, device=device, control=control
    )


def wrap_model(model: nn.Module, ctx: Distributed, *, compile: bool = False) -> nn.Module:
    """What the training step calls: the model, in DistributedDataParallel when
    there are several processes, compiled with ``torch.compile`` on request.
    The plain ``model`` stays the one whose ``state_dict`` is saved."""
    net: nn.Module = model
    if ctx.enabled:
        ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        net = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if compile:
        net = torch.compile(net)  # type: ignore[assignment]
    return net
