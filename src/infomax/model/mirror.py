"""The kept feature of an image and its left-right mirror, averaged.

Training with the `default` augmentation flips half the images left-right, so the encoder learns
to give an image and its mirror x̄ the same code, nearly: μ(x) and μ(x̄) still differ by what
the network did not make symmetric. Averaging the two,

    μ̄(x) = ½ (μ(x) + μ(x̄)),

keeps the part of μ that the flip leaves alone (the projection onto flip-invariant functions:
μ̄(x̄) = μ̄(x) exactly) and cancels the rest. It is test-time augmentation with the one
transform the training made the feature invariant to (Krizhevsky et al. 2012 averaged the
predictions of mirrored crops). `run.mirror` turns it on for embed, search, serve, export and the
whitening fit (model/whitening.py, fitted on μ̄); it costs a second forward pass per image.
The local map C is flipped back before it is averaged, so its positions still match the image's.
"""

from __future__ import annotations

from torch import Tensor, nn

from infomax.model.encoder import EncoderOutput


def mirror_images(x: Tensor) -> Tensor:
    """x̄: each N×C×H×W image flipped left-right (the last axis reversed)."""
    return x.flip(-1)


def mirror_average(encoder: nn.Module, x: Tensor) -> EncoderOutput:
    """½(f(x) + f(x̄)) for every output of the encoder (eval mode), the maps (local C, middle) of
    x̄ flipped back first; log σ² is averaged like the rest. Two forward passes of N images, not
    one of 2N: a CPU keeps a small batch's activations in cache (embed/embedder.py)."""
    a, b = encoder(x), encoder(mirror_images(x))

    def average(u: Tensor | None, v: Tensor | None, spatial: bool) -> Tensor | None:
        return None if u is None else (u + (v.flip(-1) if spatial else v)) / 2

    return EncoderOutput(mu=average(a.mu, b.mu, False), logvar=average(a.logvar, b.logvar, False),
                         local=average(a.local, b.local, True), pooled=average(a.pooled, b.pooled, False),
                         middle=average(a.middle, b.middle, True))


__all__ = ["mirror_average", "mirror_images"]
