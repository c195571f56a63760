"""A trained encoder ready to turn uint8 images into features (μ, and optionally fc / conv)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch.nn.utils.fusion import fuse_conv_bn_eval

from infomax.checkpoint import load_checkpoint
from infomax.data.dataset import pixel_scale
from infomax.data.pixels import normalize_pixels
from infomax.data.store import RELEASE_BYTES, release_pages
from infomax.device import autocast, pick_device
from infomax.errors import InfomaxError
from infomax.model.config import ModelConfig
from infomax.model.encoder import Encoder
from infomax.model.encoders import as_encoder, build_encoder
from infomax.model.mirror import mirror_average
from infomax.model.whitening import Whitening, whiten

# μ (whitened where the run fitted a whitening), μ itself, pooled pre-head feature, flattened local map;
# each averaged over the image and its mirror where the run says so (run.mirror)
FEATURES = ("y", "mu", "fc", "conv")


def encoder_for(config: dict, encoder: torch.nn.Module | None, where: str) -> torch.nn.Module:
    """The (untrained) encoder a saved run config describes: from the registry, or the user's module."""
    cfg = ModelConfig.from_dict(config["model"])
    if cfg.encoder == "custom":
        if encoder is None:
            raise InfomaxError(f"{where} was trained with an encoder module of your own: pass that module "
                               "(e.g. infomax.load(path, encoder=MyEncoder())) to load it")
        return as_encoder(encoder, cfg)
    return build_encoder(cfg)


def default_batch_size(device: torch.device) -> int:
    """Images per forward pass: small batches keep a CPU's activations in cache (64 runs about
    25% faster than 500 on a 2-core machine, docs/embed.md); accelerators want large ones."""
    return 64 if device.type == "cpu" else 512


def fold_batchnorm(encoder: torch.nn.Module) -> torch.nn.Module:
    """A copy of an eval-mode encoder with each BatchNorm of the cnn encoder folded into the
    convolution before it: conv'(x) = γ·(conv(x) − running_mean)/sqrt(running_var + ε) + β, the
    same function in one op. Other encoders are copied as they are."""
    encoder = copy.deepcopy(encoder).eval()
    if not isinstance(encoder, Encoder):
        return encoder
    for block in [*encoder.down, *encoder.head]:
        block.conv = fuse_conv_bn_eval(block.conv, block.bn)
        block.bn = torch.nn.Identity()
    return encoder


def _part(weights: dict, prefix: str) -> dict:
    """The tensors of one submodule, named without its prefix."""
    return {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}


class Embedder:
    """Encoder in eval mode (BatchNorm running statistics) plus the pixel normalization it was trained with."""

    def __init__(self, encoder: torch.nn.Module, config: dict, device: torch.device, precision: str = "fp32",
                 whitening: Whitening | None = None):
        self.config = config
        self.model_config = ModelConfig.from_dict(config["model"])
        self.device = device
        self.precision = precision
        self.channels_last = device.type != "mps"
        encoder = fold_batchnorm(encoder).to(device)
        self.encoder = encoder.to(memory_format=torch.channels_last) if self.channels_last else encoder
        # every feature averaged over the image and its mirror when the run says so (model/mirror.py)
        self.mirror = bool(config.get("train", {}).get("run", {}).get("mirror", False))
        # y: μ, or μ whitened when the run fitted a whitening after training (model/whitening.py)
        self.whitening = whitening.to(device) if whitening is not None and whitening.fitted else None
        self.normalization = config["data"]["normalization"]
        pixel_scale(self.normalization)  # a damaged config fails here, not at the first batch

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto", precision: str = "fp32",
                        encoder: torch.nn.Module | None = None) -> "Embedder":
        """The encoder of a run folder or checkpoint (its critics are not loaded). A run trained
        with a module of the user's own needs that module (untrained) as `encoder`."""
        ckpt = load_checkpoint(path)
        model = encoder_for(ckpt.config, encoder, where=str(ckpt.path))
        fitted = _part(ckpt.weights, "whitening.")  # none in checkpoints written before whitening
        whitening = Whitening(len(fitted["mean"])) if "mean" in fitted else None
        try:
            model.load_state_dict(_part(ckpt.weights, "encoder."))
            if whitening is not None:
                whitening.load_state_dict(fitted)
        except RuntimeError as exc:
            raise InfomaxError(f"the weights in {ckpt.path} do not fit the model its config describes "
                               f"({str(exc).splitlines()[0]}); re-train or pass another checkpoint") from exc
        return cls(model, ckpt.config, pick_device(device), precision, whitening)

    @classmethod
    def random_init(cls, path: str | Path, device: str = "auto", seed: int = 0,
                    encoder: torch.nn.Module | None = None) -> "Embedder":
        """The same architecture and normalization as the checkpoint, with untrained weights."""
        ckpt = load_checkpoint(path)
        torch.manual_seed(seed)
        return cls(encoder_for(ckpt.config, encoder, where=str(ckpt.path)), ckpt.config, pick_device(device))

    @property
    def whitening_power(self) -> float | None:
        """The power p of y = (μ − m)·C^(−p) (model/whitening.py); None when y is μ itself."""
        return None if self.whitening is None else float(self.whitening.power)

    @property
    def image_size(self) -> int:
        return self.model_config.image_size

    @property
    def in_channels(self) -> int:
        return self.model_config.in_channels

    @property
    def z_dim(self) -> int:
        return self.model_config.z_dim

    def check_images(self, images: np.ndarray, where: str = "images") -> None:
        expected = (self.in_channels, self.image_size, self.image_size)
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise InfomaxError(
                f"{where} are {tuple(images.shape[1:])} (C×H×W) but the model reads {expected}; "
                f"load the data with size={self.image_size} and mode={'L' if self.in_channels == 1 else 'RGB'}"
            )

    @torch.inference_mode()
    def embed_features(self, images: np.ndarray, features=("y",), batch_size: int | None = None,
                       progress: bool = False) -> dict[str, np.ndarray]:
        """uint8 N×C×H×W -> {name: float32 N×D} for the asked features, in row order.

        `images` may be a memory map of any size: it is read one batch at a time, and the pages
        read are unmapped every RELEASE_BYTES, so only the output grows with N."""
        batch_size = batch_size or default_batch_size(self.device)
        unknown = set(features) - set(FEATURES)
        if unknown:
            raise InfomaxError(f"unknown features {sorted(unknown)}; choose from {', '.join(FEATURES)}")
        self.check_images(images)
        n = len(images)
        out: dict[str, np.ndarray] = {}
        from tqdm.auto import tqdm

        read = 0  # bytes read from `images` since its pages were last unmapped
        for start in tqdm(range(0, n, batch_size), disable=not progress, unit="batch", desc="embed"):
            chunk = torch.from_numpy(np.array(images[start : start + batch_size]))  # a writable copy
            read += chunk.numel()
            if read >= RELEASE_BYTES:
                release_pages(images)
                read = 0
            x = normalize_pixels(chunk.to(self.device), self.normalization)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(self.device, self.precision):
                enc = mirror_average(self.encoder, x) if self.mirror else self.encoder(x)
            w = self.whitening
            parts = {"y": enc.mu if w is None else whiten(enc.mu, w.mean, w.matrix), "mu": enc.mu, "fc": enc.pooled,
                     "conv": enc.local.flatten(1) if "conv" in features else None}
            for name in features:
                value = parts[name].float().cpu().numpy()
                if name not in out:
                    out[name] = np.empty((n, value.shape[1]), dtype=np.float32)
                out[name][start : start + len(value)] = value
        release_pages(images)
        if n == 0:
            out = {name: np.zeros((0, 0), dtype=np.float32) for name in features}
        return out

    def embed(self, images: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """uint8 N×C×H×W -> float32 N×z_dim: y (μ, averaged with the mirror's and whitened where the run
        says so)."""
        return self.embed_features(images, ("y",), batch_size)["y"]

    def load_image(self, source) -> np.ndarray:
        """Decode one image file or bytes the way the training data was read -> uint8 C×H×W."""
        from infomax.data.decode import decode_image

        options = self.config["data"].get("options") or {}
        mode = "L" if self.in_channels == 1 else "RGB"
        return decode_image(source, size=self.image_size, mode=mode, resize=options.get("resize", "shorter-crop"))

    def embed_files(self, paths) -> np.ndarray:
        """Image files (or bytes) -> float32 N×z_dim."""
        images = np.stack([self.load_image(p) for p in paths]) if len(paths) else np.zeros((0, self.in_channels, self.image_size, self.image_size), np.uint8)
        return self.embed(images)
