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

import torch
from torch import nn

from infomax.device import autocast
from infomax.train.batches import BatchSource


def recalibrate_batchnorm(encoder: nn.Module, source: BatchSource, index: torch.Tensor, *, batch_size: int = 256,
                          precision: str = "fp32") -> None:
    """Recompute the running mean and variance of every BatchNorm in `encoder` from the plain
    (un-augmented) images source[index], in batches of `batch_size`."""
    norms = [m for m in encoder.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    was_training = encoder.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    encoder.train()
    try:
        with torch.no_grad(), autocast(source.device, precision):
            for start in range(0, len(index), batch_size):
                encoder(source.batch(index[start : start + batch_size]))
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        encoder.train(was_training)
