"""The weights a run keeps: an exponential moving average of the trained weights (Polyak &
Juditsky 1992; the "shadow variables" of TensorFlow's ExponentialMovingAverage), with `optim.ema`
as its decay d. After every optimizer step t (1, 2, ...):

    d_t = min(d, (1 + t) / (10 + t))        the warm-up: early steps are averaged with less history
    θ̄  ← d_t·θ̄ + (1 − d_t)·θ               every parameter (BatchNorm's running statistics are not
                                            averaged: the model's own are kept, or re-estimated)

Checkpoints hold θ̄ as the model's weights (so `embed`, `eval`, `serve` and `infomax.load` use
it) and θ, the weights being trained, in their training state (so `--resume` continues from θ
and θ̄ exactly).

    average = WeightAverage(model, decay=0.99)
    ...; opt.step(); average.update(model)
    weights, trained = average.checkpoint(model)   # model.safetensors's tensors, the state's "trained"
    average.use(model)                             # at the end: the model holds θ̄ from now on
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def average_decay(decay: float, step: int) -> float:
    """d_t = min(d, (1 + t) / (10 + t)) for optimizer step t ≥ 1."""
    return min(decay, (1 + step) / (10 + step))


def parameters(model: nn.Module) -> dict[str, Tensor]:
    """A copy of the model's parameters, by name."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


@torch.no_grad()
def load_parameters(model: nn.Module, tensors: dict[str, Tensor]) -> None:
    """Copy `tensors` (by name) into the model's parameters: θ̄ at the end of a run, θ on resuming."""
    for name, p in model.named_parameters():
        p.copy_(tensors[name])


class WeightAverage:
    """θ̄ of a model's parameters, by name; `step` counts the updates (the warm-up's t)."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.trained: dict[str, Tensor] | None = None  # θ once use() has put θ̄ into the model
        self.reset(model, 0)

    def reset(self, model: nn.Module, step: int) -> None:
        """Start from the model's parameters as θ̄, after `step` updates (a resumed run's)."""
        self.average, self.step = parameters(model), step

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One step of the average: θ̄ ← d_t·θ̄ + (1 − d_t)·θ."""
        self.step += 1
        weight = 1.0 - average_decay(self.decay, self.step)
        for name, p in model.named_parameters():
            self.average[name].lerp_(p.detach(), weight)

    def checkpoint(self, model: nn.Module) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """(the model's state dict with θ̄ for its parameters, θ by name): what a checkpoint saves."""
        if self.trained is not None:  # the model holds θ̄ already
            return model.state_dict(), self.trained
        return {**model.state_dict(), **self.average}, parameters(model)

    def use(self, model: nn.Module) -> None:
        """Put θ̄ into the model (keeping θ for the checkpoint): embedding and BatchNorm's re-estimate see it."""
        if self.trained is None:
            self.trained = parameters(model)
            load_parameters(model, self.average)
