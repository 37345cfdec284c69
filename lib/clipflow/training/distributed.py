"""Process groups for multi-process training, from the launcher's environment.

``torchrun`` sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` and the rendezvous address; ``srun`` sets
``SLURM_PROCID``/``SLURM_NTASKS``/``SLURM_LOCALID``, and the rendezvous is the job's first node
(open_clip_train's ``world_info_from_env`` reads the same variables). One process per GPU; gloo on
CPU, nccl on CUDA.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Distributed:
    rank: int
    world_size: int
    local_rank: int
    initialised_here: bool  # this call created the process group, so it must destroy it

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _from_env() -> tuple[int, int, int]:
    if "WORLD_SIZE" in os.environ:  # torchrun (also within a SLURM allocation)
        return (
            int(os.environ["RANK"]),
            int(os.environ["WORLD_SIZE"]),
            int(os.environ["LOCAL_RANK"]),
        )
    if int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in os.environ:  # srun
        return (
            int(os.environ["SLURM_PROCID"]),
            int(os.environ["SLURM_NTASKS"]),
            int(os.environ.get("SLURM_LOCALID", "0")),
        )
    return 0, 1, 0


def _slurm_rendezvous() -> None:
    """MASTER_ADDR/PORT for ``env://`` under srun: the first node, a port from the job id."""
    if "MASTER_ADDR" not in os.environ:
        nodes = subprocess.run(
            ["scontrol", "show", "hostnames", os.environ["SLURM_JOB_NODELIST"]],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        os.environ["MASTER_ADDR"] = nodes[0]
    os.environ.setdefault("MASTER_PORT", str(20000 + int(os.environ["SLURM_JOB_ID"]) % 20000))


def setup(device: str) -> Distributed:
    """Join (or create) the process group the environment describes; a no-op for one process."""
    if dist.is_available() and dist.is_initialized():
        return Distributed(dist.get_rank(), dist.get_world_size(), 0, initialised_here=False)
    rank, world_size, local_rank = _from_env()
    if world_size == 1:
        return Distributed(0, 1, 0, initialised_here=False)
    if "WORLD_SIZE" not in os.environ:
        _slurm_rendezvous()
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(
        "nccl" if cuda else "gloo", init_method="env://", rank=rank, world_size=world_size
    )
    return Distributed(rank, world_size, local_rank, initialised_here=True)


def gather_objects(value: object, context: Distributed) -> list[object]:
    """``value`` from every rank, in rank order (``[value]`` for one process)."""
    if context.world_size == 1:
        return [value]
    gathered: list[object] = [None] * context.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def barrier(context: Distributed) -> None:
    """Wait for every rank (a no-op for one process)."""
    if context.world_size > 1:
        dist.barrier()
