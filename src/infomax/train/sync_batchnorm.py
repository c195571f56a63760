"""BatchNorm with statistics over the global batch of all processes (Ioffe & Szegedy 2015, with
the batch spread over ranks), for multi-process training.

The reference's BatchNorm normalizes with the statistics of its batch of 64; with W ranks of 64/W
images each, every rank would see a different, smaller batch. Synced, each BatchNorm computes

    mean = Σ_ranks Σ x / n,   var = Σ_ranks Σ (x − mean)² / n,   n = images·h·w of all ranks,

with both sums all-reduced with gradients (torch.distributed.nn.functional.all_reduce), so the
forward and backward equal one process's over the global batch. torch.nn.SyncBatchNorm does this
on GPUs; on the CPU (gloo) it refuses, so `sync_batchnorm` uses SyncedBatchNorm2d there.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn

from infomax.train import distributed


class SyncedBatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d whose training-mode statistics span every rank of the process group (any
    device, any backend); outside training or a process group it is nn.BatchNorm2d."""

    def forward(self, x: Tensor) -> Tensor:  # x: N×C×H×W
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        xf = x.float()
        count = torch.tensor([float(x.numel() // x.shape[1])], device=x.device)
        dist.all_reduce(count)  # n over all ranks
        n = count[0]
        mean = distributed.all_reduce(xf.sum((0, 2, 3))) / n  # C
        centered = xf - mean[None, :, None, None]
        var = distributed.all_reduce(centered.square().sum((0, 2, 3))) / n  # C, biased: what normalizes
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach() * n / (n - 1).clamp(min=1))
        y = centered * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y.to(x.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: Tensor, unbiased_var: Tensor) -> None:
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), factor)
        self.running_var.lerp_(unbiased_var.to(self.running_var.dtype), factor)


def sync_batchnorm(module: nn.Module, device: torch.device) -> int:
    """Switch every nn.BatchNorm2d of module, in place, to one synced over the process group:
    torch.nn.SyncBatchNorm's kernels on CUDA, SyncedBatchNorm2d elsewhere. Parameters, buffers
    and state_dict keys stay the same. Returns how many were switched."""
    switched = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is not nn.BatchNorm2d:
                continue
            if device.type == "cuda":
                setattr(parent, name, nn.SyncBatchNorm.convert_sync_batchnorm(child))
            else:
                child.__class__ = SyncedBatchNorm2d
            switched += 1
    return switched


def unsync_batchnorm(module: nn.Module) -> int:
    """Switch synced BatchNorms back to nn.BatchNorm2d (for a model used after training)."""
    switched = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, SyncedBatchNorm2d):
                child.__class__ = nn.BatchNorm2d
                switched += 1
            elif isinstance(child, nn.SyncBatchNorm):
                bn = nn.BatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                    child.track_running_stats, device=child.weight.device)
                bn.load_state_dict(child.state_dict())
                setattr(parent, name, bn)
                switched += 1
    return switched
