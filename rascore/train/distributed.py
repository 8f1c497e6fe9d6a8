"""Training beyond one process: torchrun's environment, the process group, DDP and sharded batches.

Under ``torchrun`` (WORLD_SIZE > 1) every process trains a DistributedDataParallel copy of the
network on its own slice of each epoch's class-balanced sample order: one GPU per process
(cuda:LOCAL_RANK) with NCCL, or CPU processes with Gloo. Rank 0 validates and decides early
stopping (the decision is broadcast, so every rank leaves the epoch loop together), then alone
tests, checkpoints and publishes; the other ranks stay quiet. Without torchrun's variables nothing
here does anything: one process trains exactly as before.

No state is kept at module level: what a process is comes from its environment (WORLD_SIZE,
RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT, set by torchrun) and from torch.distributed's group.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class DistEnv:
    """Where this process stands: its rank among ``world_size`` processes, and on its node."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """More than one process takes part."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that validates, writes, publishes and reports."""
        return self.rank == 0


def environment(environ: Mapping[str, str] | None = None) -> DistEnv:
    """Rank and world size from torchrun's variables; one process when they are absent."""
    environ = os.environ if environ is None else environ
    try:
        world_size = int(environ.get("WORLD_SIZE") or 1)
        rank = int(environ.get("RANK") or 0)
        local_rank = int(environ.get("LOCAL_RANK") or 0)
    except ValueError:
        raise ValueError("WORLD_SIZE, RANK and LOCAL_RANK must be integers (torchrun sets them)") from None
    if world_size < 1 or not 0 <= rank < world_size or local_rank < 0:
        raise ValueError(
            f"inconsistent torchrun environment: RANK={rank}, WORLD_SIZE={world_size}, "
            f"LOCAL_RANK={local_rank}"
        )
    return DistEnv(world_size, rank, local_rank)


def active() -> DistEnv:
    """This process's place in the initialised process group; one process when there is none."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return DistEnv(dist.get_world_size(), dist.get_rank(), environment().local_rank)
    return DistEnv()


def backend_for(device: str | torch.device) -> str:
    """NCCL for GPU training, Gloo for CPU processes."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def backend() -> str | None:
    """The running group's backend, or None without a group."""
    return str(dist.get_backend()) if dist.is_available() and dist.is_initialized() else None


def local_device(device: str | torch.device, env: DistEnv | None = None) -> torch.device:
    """The device this process trains on: cuda:LOCAL_RANK under torchrun on GPUs, else ``device``."""
    device = torch.device(device)
    env = env if env is not None else active()
    if not env.enabled or device.type != "cuda":
        return device
    count = torch.cuda.device_count()
    if env.local_rank >= count:
        raise ValueError(
            f"LOCAL_RANK {env.local_rank} has no GPU: this node sees {count}; start at "
            f"most {count} processes per node (torchrun --nproc_per_node)"
        )
    return torch.device("cuda", env.local_rank)


@contextmanager
def session(device: str | torch.device = "cpu") -> Iterator[DistEnv]:
    """Join torchrun's process group for the block and leave it at the end; a no-op in one process.

    A group someone else initialised is used as it is and left for them to destroy.
    """
    if dist.is_available() and dist.is_initialized():
        yield active()
        return
    env = environment()
    if not env.enabled:
        yield env
        return
    if not dist.is_available():
        raise RuntimeError("this torch build has no torch.distributed; train in one process")
    chosen = backend_for(device)
    options: dict = {}
    if chosen == "nccl":  # one GPU per process, bound before the communicator is made
        options["device_id"] = local_device(device, env)
        torch.cuda.set_device(options["device_id"])
    # env:// rendezvous: MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE as torchrun set them
    dist.init_process_group(backend=chosen, **options)
    try:
        yield env
    finally:
        dist.destroy_process_group()


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """The model in DistributedDataParallel when a group runs (gradients averaged across ranks)."""
    if not active().enabled:
        return model
    ids = (
        [device.index if device.index is not None else torch.cuda.current_device()]
        if device.type == "cuda"
        else None
    )
    return DistributedDataParallel(model, device_ids=ids)


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside a DDP wrapper (its attributes, state_dict and plain forward)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def shard(order: Sequence[int], rank: int, world_size: int) -> list[int]:
    """This rank's disjoint slice of an order every rank drew alike (padded to equal lengths).

    As torch's DistributedSampler: the order is padded by wrapping around until it divides evenly,
    then rank r takes positions r, r + world_size, ... so every rank runs the same number of steps.
    """
    order = list(order)
    if world_size <= 1:
        return order
    per_rank = math.ceil(len(order) / world_size)
    padded = (order * math.ceil(per_rank * world_size / max(len(order), 1)))[: per_rank * world_size]
    return padded[rank::world_size]


def _flag_tensor(value: float, device: torch.device) -> torch.Tensor:
    on = device if backend() == "nccl" else torch.device("cpu")
    return torch.tensor([float(value)], dtype=torch.float64, device=on)


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when it is True on any (a collective: all ranks must call it)."""
    if not active().enabled:
        return bool(flag)
    tensor = _flag_tensor(1.0 if flag else 0.0, device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item() > 0)


def broadcast_flag(flag: bool, device: torch.device, src: int = 0) -> bool:
    """Rank ``src``'s flag on every rank (early stopping decided on rank 0 alone)."""
    if not active().enabled:
        return bool(flag)
    tensor = _flag_tensor(1.0 if flag else 0.0, device)
    dist.broadcast(tensor, src=src)
    return bool(tensor.item() > 0)


def mean_across(value: float, device: torch.device) -> float:
    """The mean of a float over all ranks (the epoch's training loss)."""
    env = active()
    if not env.enabled:
        return float(value)
    tensor = _flag_tensor(value, device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return float(tensor.item()) / env.world_size


def collective_stop(
    should_stop: Callable[[], bool] | None, device: torch.device, every: int = 1
) -> Callable[[], bool]:
    """A ``should_stop`` every rank answers alike: any rank's True (rank 0's cancel check) stops all.

    Checked collectively on the first call and every ``every`` calls after it; all ranks call it
    once per step, so they meet at the same steps.
    """
    calls, stopped = [0], [False]

    def check() -> bool:
        calls[0] += 1
        if not stopped[0] and (calls[0] - 1) % max(every, 1) == 0:
            stopped[0] = any_rank(bool(should_stop is not None and should_stop()), device)
        return stopped[0]

    return check
