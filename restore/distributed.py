"""Multi-process training under `torchrun` (one process per GPU, or several CPU processes with gloo), and
the per-process batch streams it needs. Without WORLD_SIZE > 1 in the environment everything here reduces
to a single process: no process group, unwrapped modules, the whole dataset.

Under torchrun each process trains on its own shard of every epoch (a `DistributedSampler`), gradients of
the trainable modules are averaged by `DistributedDataParallel`, and only rank 0 writes files. Multi-node
runs need the run folder on storage every node sees (the mapping stage and `--resume` read checkpoints on
every rank).
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler


@dataclass(frozen=True)
class Context:
    """This process's place in the job: `rank` of `world` processes, training on `device`."""

    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes checkpoints, logs and samples."""
        return self.rank == 0


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """The device `name` means: "auto" is CUDA when available, else the CPU; a bare "cuda" is this node's
    GPU `local_rank` (torchrun's LOCAL_RANK)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    return torch.device("cuda", local_rank) if device.type == "cuda" and device.index is None else device


def setup(device_name: str) -> Context:
    """Join the torchrun job described by the environment (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, ...)
    with nccl on GPUs and gloo on CPUs, or describe a single process when WORLD_SIZE is unset or 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = pick_device(device_name, int(os.environ.get("LOCAL_RANK", "0")))
    if world <= 1:
        return Context(device=device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        # Once per process, left up until exit: a process may train several stages (`restore train all`),
        # and a second init_process_group after a destroy cannot rendezvous again.
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(dist.destroy_process_group)
    return Context(rank=dist.get_rank(), world=dist.get_world_size(), device=device)


def finish(context: Context) -> None:
    """Wait for every process (rank 0's last checkpoint is on disk before anyone moves on)."""
    if context.world > 1:
        dist.barrier()


def wrap(module: nn.Module, context: Context) -> nn.Module:
    """`module` in DistributedDataParallel when there are several processes (its gradients averaged over
    them at every backward); itself otherwise."""
    if context.world == 1:
        return module
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids)


def unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, DistributedDataParallel) else module


def mean_over_ranks(values: dict[str, torch.Tensor], context: Context) -> dict[str, float]:
    """Scalar tensors averaged over all processes (one all-reduce), as floats for logging."""
    stacked = torch.stack([value.detach().float().reshape(()) for value in values.values()])
    if context.world > 1:
        dist.all_reduce(stacked)
        stacked /= context.world
    return dict(zip(values, stacked.tolist(), strict=True))


def gather(value: Any, context: Context) -> list[Any]:
    """Every process's `value` (picklable, small), in rank order; all ranks must call it together."""
    if context.world == 1:
        return [value]
    out: list[Any] = [None] * context.world
    dist.all_gather_object(out, value)
    return out


class BatchStream:
    """Endless batches of `dataset` for this process, epoch after epoch.

    Each epoch is a `DistributedSampler` permutation (seed + epoch; one shard per rank, all shards the same
    length) cut into `batch`-sized batches, the incomplete last one dropped unless it is the only one, with
    the dataset's crops moved by `set_epoch` too. `state()` is (epoch, batches consumed in it): a resumed
    stream skips the consumed batches by index, without loading them, and then yields exactly what an
    uninterrupted one would. The DataLoader gets its own generator, so it never draws from torch's global
    RNG (whose state a checkpoint restores).
    """

    def __init__(self, dataset: Dataset, batch: int, seed: int, context: Context, workers: int = 0) -> None:
        self.dataset, self.batch, self.workers = dataset, batch, workers
        self.sampler = DistributedSampler(dataset, num_replicas=context.world, rank=context.rank, seed=seed)
        self.pin = context.device.type == "cuda"
        self.epoch, self.position = 0, 0
        self._batches: Any = None

    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._batches = None

    def _open(self) -> None:
        self.sampler.set_epoch(self.epoch)
        self.dataset.set_epoch(self.epoch)
        indices = list(self.sampler)
        size = self.batch
        batches = [indices[i : i + size] for i in range(0, len(indices) - size + 1, size)] or [indices]
        loader = DataLoader(
            self.dataset,
            batch_sampler=batches[self.position :],
            num_workers=self.workers,
            pin_memory=self.pin,
            generator=torch.Generator(),
        )
        self._batches = iter(loader)

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> dict[str, Any]:
        if self._batches is None:
            self._open()
        try:
            batch = next(self._batches)
        except StopIteration:
            self.epoch, self.position = self.epoch + 1, 0
            self._open()
            batch = next(self._batches)
        self.position += 1
        return batch
