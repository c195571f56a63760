"""Fitting the whitening of the kept feature (model/whitening.py): the mean and covariance of μ
(with run.mirror, of μ averaged over each image and its mirror: model/mirror.py) over plain
(un-augmented) train images under the final weights, in float64, summed over every rank's share
of the images. Training fits it at its end (run.whiten images); `whiten_checkpoint`
(`infomax whiten`) fits it for a checkpoint written without it, or again."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from torch import Tensor, nn

from infomax.config import Config
from infomax.errors import InfomaxError
from infomax.model.mirror import mirror_average
from infomax.model.whitening import POWER, Whitening, check_power, kept
from infomax.train import distributed


@torch.no_grad()
def fit_whitening(encoder: nn.Module, whitening: Whitening, batches: Iterable[Tensor], *,
                  power: float = POWER, mirror: bool = False) -> tuple[int, Tensor]:
    """Fit `whitening` on the codes μ of `batches` (normalized N×C×H×W images, the encoder in eval
    mode and float32: BatchNorm's running statistics, as embed computes μ; with `mirror`, μ
    averaged over each image and its mirror, as embed computes it then); returns the codes
    counted and the eigenvalues of their covariance, largest first (none when fewer than two)."""
    z, device = whitening.mean.numel(), whitening.mean.device
    was_training = encoder.training
    sums = torch.zeros(z, dtype=torch.float64, device=device)
    outer = torch.zeros(z, z, dtype=torch.float64, device=device)
    count = torch.zeros((), dtype=torch.float64, device=device)
    encoder.eval()
    try:
        for x in batches:
            mu = (mirror_average(encoder, x) if mirror else encoder(x)).mu.double()  # N×z
            sums += mu.sum(0)
            outer += mu.T @ mu
            count += len(mu)
    finally:
        encoder.train(was_training)
    for t in (sums, outer, count):
        distributed.sum_over_ranks(t)
    n = int(count.item())
    return n, whitening.fit(sums, outer, n, power) if n > 1 else torch.zeros(0, dtype=torch.float64)


def whiten_checkpoint(checkpoint: str | Path, *, out: str | Path | None = None, data: str | None = None,
                      images: int = 10240, power: float | None = None, mirror: bool | None = None,
                      device: str = "auto", batch_size: int = 256) -> dict:
    """Fit the whitening of a checkpoint's μ on `images` plain train images of `data` (default:
    the data it was trained on), a seeded sample, and write the checkpoint again with it. `power`
    and `mirror` (whether the feature averages each image and its mirror) default to the run's
    own settings (run.whiten_power, run.mirror; those of its preset today where the run was saved
    before the setting existed: recommended's 0.3 and the mirror). A run
    folder gets a new copy of its latest checkpoint (same step; the run resumes as before); an
    encoder-only folder is rewritten; with `out`, an encoder-only folder is written there instead
    (needed for pretrained:NAME). The checkpoint's run settings record the fit (run.whiten,
    run.whiten_power, run.mirror). Returns {"path": the folder written, "images", "power", "mirror",
    "directions" (of μ's z_dim, those kept), "largest" and "mean" (the covariance's largest and
    mean eigenvalue)}."""
    from infomax.checkpoint import STATE, find_checkpoint, load_checkpoint, save_checkpoint, save_encoder
    from infomax.data import load
    from infomax.data.pixels import normalize_pixels
    from infomax.embed.embedder import Embedder
    from infomax.embed.run import read_at_model_size

    if images < 2:
        raise InfomaxError(f"--images must be at least 2 (it is {images}): the covariance needs two codes")
    ckpt = load_checkpoint(checkpoint)
    settings = Config.from_dict(ckpt.config["train"])
    power = settings.run.whiten_power if power is None else power
    mirror = settings.run.mirror if mirror is None else mirror
    check_power(power, "--power")
    settings = settings.replace(whiten_power=power, mirror=mirror)  # mirror needs training that flipped
    run_dir = ckpt.path.parent.parent
    encoder_only = not (ckpt.path / STATE).is_file()
    latest = not encoder_only and ckpt.path.parent.name == "checkpoints" and find_checkpoint(run_dir) == ckpt.path
    shipped = str(checkpoint).startswith("pretrained:")
    if out is None and (shipped or not (encoder_only or latest)):
        what = "is part of the package" if shipped else "is not a run's latest checkpoint"
        raise InfomaxError(f"{checkpoint} {what}: give --out DIR for a whitened encoder-only copy")
    embedder = Embedder.from_checkpoint(checkpoint, device=device)
    spec = read_at_model_size(data, embedder) if data else ckpt.config["data"].get("spec")
    if not spec:
        raise InfomaxError(f"{checkpoint} was trained on images in memory: give the data set (--data SPEC)")
    dataset = load(spec, progress=False)
    if not hasattr(dataset, "splits"):
        raise InfomaxError(f"{spec} is a stream of shards; whiten on a decoded data set (--data SPEC of its images)")
    train = dataset.splits[dataset.train_split].images
    embedder.check_images(train[:0], where=f"the train images of {spec}")
    index = np.sort(torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:images].numpy())
    batches = (normalize_pixels(torch.from_numpy(np.array(train[index[s : s + batch_size]])).to(embedder.device),
                                embedder.normalization) for s in range(0, len(index), batch_size))
    whitening = Whitening(embedder.z_dim).to(embedder.device)
    _, lam = fit_whitening(embedder.encoder, whitening, batches, power=power, mirror=mirror)
    weights = {**ckpt.weights, **{f"whitening.{k}": v.cpu() for k, v in whitening.state_dict().items()}}
    settings = settings.replace(whiten=len(index))  # all of them when the split holds fewer
    config = {**ckpt.config, "train": settings.to_dict()}
    if out is None and latest:
        save_checkpoint(run_dir, config=config, model=None, state=ckpt.training_state(), step=ckpt.step,
                        epoch=ckpt.epoch, weights=weights)
        path = run_dir
    else:
        path = save_encoder(checkpoint, out or ckpt.path, weights=weights, config=config)
    return {"path": path, "images": len(index), "power": power, "mirror": mirror,
            "directions": int(kept(lam).sum()), "largest": float(lam[0]), "mean": float(lam.clamp(min=0).mean())}


__all__ = ["fit_whitening", "whiten_checkpoint"]
