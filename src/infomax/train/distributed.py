"""Training on several processes with torch.distributed, launched by torchrun.

    torchrun --nproc_per_node=2 -m infomax train --data cifar10:PATH --out runs/c10

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; `setup` joins the process group (gloo for CPU
tensors, NCCL for CUDA ones) and returns who this process is. Each rank trains on its own part of
every batch (`--batch-size` is the global batch; each rank takes batch_size / world_size images),
and the objective sees the global batch: `gather_rows` collects every rank's features with
gradients (torch.distributed.nn.functional.all_gather), so N ranks × B images meet the same
negatives as one process with N·B images. DistributedDataParallel averages the gradients.
"""

from __future__ import annotations

import atexit
import inspect
import logging
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor, nn

from infomax.errors import InfomaxError

log = logging.getLogger(__name__)
# torch 2.13 marks torch.distributed.nn's differentiable collectives deprecated in favour of the
# private _functional_collectives; they are the public ones, and they work: say so once, not per step
warnings.filterwarnings("ignore", message=r"torch\.distributed\.nn\.functional\.\w+ is deprecated",
                        category=FutureWarning)
if dist.is_available():
    # Imported before any process group exists: these functions read `group=group.WORLD` once, at
    # import; imported after init_process_group they would hold the world group, and gloo's threads,
    # past destroy_process_group into the interpreter's teardown, where those threads can abort the
    # process (SIGABRT, "terminate called without an active exception") after a clean run.
    from torch.distributed.nn.functional import all_gather, all_reduce  # noqa: F401  (all_reduce: sync_batchnorm)


@dataclass(frozen=True)
class Ranks:
    """Who this process is: rank of world_size processes, local_rank on its machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """True on the process that writes checkpoints, logs and the progress bar."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched() -> bool:
    """True when torchrun (or any launcher setting WORLD_SIZE > 1) started this process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def restart_count() -> int:
    """How often torchrun's elastic agent has restarted the workers (--max-restarts)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))


def setup(timeout_s: float = 1800) -> Ranks:
    """Join the process group torchrun describes (once; later calls return the same Ranks);
    a single process without a launcher gets Ranks() and no process group."""
    if dist.is_available() and dist.is_initialized():
        return current()
    if not launched():
        return Ranks()
    if not dist.is_available():
        raise InfomaxError("this torch build has no torch.distributed; run one process (without torchrun)")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "gloo"
    if torch.cuda.is_available() and dist.is_nccl_available():
        torch.cuda.set_device(local_rank)
        backend = "cpu:gloo,cuda:nccl"  # each collective goes to the backend of its tensors' device
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    atexit.register(_leave)
    ranks = current()
    log.info("process %d of %d (local rank %d), backend %s", ranks.rank, ranks.world_size, local_rank, backend)
    return ranks


def _leave() -> None:
    """Destroy the process group while the interpreter is whole: gloo's threads, left to the
    interpreter's teardown, can abort the process (SIGABRT) after a clean run."""
    if dist.is_initialized():
        dist.destroy_process_group()


def current() -> Ranks:
    """This process's Ranks (Ranks() without a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return Ranks()
    return Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def device_for(device: torch.device, ranks: Ranks) -> torch.device:
    """The device of this rank: its own GPU (LOCAL_RANK) when training on CUDA."""
    if ranks.distributed and device.type == "cuda" and device.index is None:
        return torch.device("cuda", ranks.local_rank)
    return device


def per_rank_batch(batch_size: int, ranks: Ranks) -> int:
    """Images each rank takes per step; the global batch must split evenly."""
    if batch_size % ranks.world_size:
        raise InfomaxError(f"--batch-size {batch_size} is the batch of all {ranks.world_size} processes together "
                           f"and must split evenly among them; use a multiple of {ranks.world_size}")
    return batch_size // ranks.world_size


def gather_rows(t: Tensor, views: int = 1) -> Tensor:
    """Every rank's rows of t (V·b×…, each of its V views' b rows together) as the global batch
    (V·W·b×…): view 1 of rank 0, 1, …, then view 2 of rank 0, 1, …, as one process holding all
    W·b images would lay them out. Gradients flow back to the rank that owns each row."""
    parts = all_gather(t)  # W tensors of V·b rows, rank order
    rows = torch.cat([chunk for v in range(views) for chunk in (p.chunk(views)[v] for p in parts)])
    return _ContiguousGrad.apply(rows)


class _ContiguousGrad(torch.autograd.Function):
    """Identity whose backward hands on a contiguous gradient. all_gather's backward sends each
    rank its rows' gradient through gloo's all_to_all, which reads the memory of a strided
    gradient (e.g. a channel slice from the concat critic's torch.cat) as if it were dense: the
    gradients came out wrong (the family of pytorch/pytorch#192920, gloo on strided tensors)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return grad.contiguous()


class _LossStep(nn.Module):
    """model.loss(x, x2) on the global batch as a forward pass, for DistributedDataParallel."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, x2: Tensor | None, generator: torch.Generator, small: Tensor | None = None):
        return self.model.loss(x, x2, generator=generator, gather=gather_rows, small=small)


def loss_function(model: nn.Module, ranks: Ranks, device: torch.device, *, synced_batchnorm: bool = True):
    """f(x, x2, generator, small) -> (loss, terms) of model (a DIM) on this rank's batch: model.loss for
    one process; under several, DistributedDataParallel over the objective of the global batch.
    Every rank computes the same loss (the generator, seeded alike, draws the same negatives and
    ε on each); the gather sends each row's gradient back to its rank times W, which DDP's mean
    over ranks cancels, so the gradients equal one process's on the global batch."""
    if not ranks.distributed:
        return lambda x, x2, generator, small=None: model.loss(x, x2, generator=generator, small=small)
    from torch.nn.parallel import DistributedDataParallel

    # synced BatchNorm statistics agree on every rank already: no buffer broadcast before each step
    sync = {"forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
            else "broadcast_buffers": not synced_batchnorm}
    ddp = DistributedDataParallel(_LossStep(model), device_ids=[device.index] if device.type == "cuda" else None, **sync)
    return lambda x, x2, generator, small=None: ddp(x, x2, generator, small)


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when `flag` is True on any (e.g. the time budget ran out on one clock)."""
    if not current().distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def sum_over_ranks(t: Tensor) -> Tensor:
    """t summed over every rank, in place (t as it is under one process)."""
    if current().distributed:
        dist.all_reduce(t)
    return t


def all_objects(obj) -> list:
    """obj of every rank, in rank order ([obj] for one process)."""
    ranks = current()
    if not ranks.distributed:
        return [obj]
    out = [None] * ranks.world_size
    dist.all_gather_object(out, obj)
    return out


def from_main(obj):
    """Rank 0's obj, on every rank."""
    if not current().distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if current().distributed:
        dist.barrier()


@contextmanager
def main_first():
    """Run the block on rank 0 first and then on the others (e.g. a first load that writes the
    decoded-array cache: the other ranks then read it)."""
    ranks = current()
    if ranks.distributed and not ranks.main:
        dist.barrier()
    try:
        yield
    finally:
        if ranks.distributed and ranks.main:
            dist.barrier()


__all__ = ["Ranks", "setup", "loss_function", "current", "launched", "restart_count", "device_for", "per_rank_batch",
           "gather_rows", "any_rank", "all_objects", "from_main", "barrier", "main_first"]
