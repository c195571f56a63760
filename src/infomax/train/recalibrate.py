"""Re-estimating BatchNorm's running statistics after training (Ioffe & Szegedy 2015, sec. 3.1:
at inference BatchNorm should use the mean and variance of the training data under the final
weights).

During training the running averages follow the batches with momentum (0.01 for `seed`, Keras'
0.99), so at the end they mix statistics of earlier weights, and with augmentation they
describe augmented views, not the plain images an embedding sees. recalibrate_batchnorm
replaces them with the statistics of the final encoder on plain train images:

    running_mean = (1/B) Σ_b mean_b(y),   running_var = (1/B) Σ_b var_b(y)  (unbiased, per batch)

over B batches, for every BatchNorm in the encoder (PyTorch's cumulative average, momentum
None). Only the running statistics change, never a weight.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor, nn

from infomax.device import autocast


def recalibrate_batchnorm(encoder: nn.Module, batches: Iterable[Tensor], *, precision: str = "fp32") -> None:
    """Recompute the running mean and variance of every BatchNorm in `encoder` from `batches`:
    plain (un-augmented) normalized train images, N×C×H×W each."""
    norms = [m for m in encoder.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    was_training = encoder.training
    device = next(encoder.parameters()).device
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    encoder.train()
    try:
        with torch.no_grad(), autocast(device, precision):
            for x in batches:
                encoder(x)
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        encoder.train(was_training)
