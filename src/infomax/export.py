"""The encoder as an ONNX graph (uint8 images -> μ), so its features can be served without PyTorch.

The graph reads the images the data readers produce, uint8 N×C×H×W, applies the run's pixel
normalization inside (x.float()·scale + offset), runs the encoder with BatchNorm folded into the
convolutions, and returns float32 N×z_dim μ, the same features as `Embedder.embed`.

Export uses torch.onnx.export's default exporter (`dynamo=True`: torch.export, then onnxscript),
which needs the packages of the `export` extra (onnx, onnxscript) and works offline; the legacy
TorchScript exporter (`dynamo=False`) is deprecated and warns. Checking a graph against PyTorch
also needs onnxruntime, in the same extra.
"""

from __future__ import annotations

import copy
import importlib
import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from infomax import extras
from infomax.atomic import atomic_write
from infomax.data.dataset import pixel_scale
from infomax.data.pixels import normalize_pixels
from infomax.errors import InfomaxError
from infomax.model.mirror import mirror_average
from infomax.model.whitening import whiten

INPUT, OUTPUT = "images", "mu"
DEFAULT_OPSET = 18  # onnxruntime 1.14 and later run it
INSTALL = "pip install 'infomax[export]'"


def require(module: str, what: str):
    """Import an `export` extra's package or say how to install it."""
    return extras.require(module, "export", what)


def has_onnxruntime() -> bool:
    """Whether onnxruntime imports (to check an exported file)."""
    try:
        importlib.import_module("onnxruntime")
    except ImportError:
        return False
    return True


class ImagesToMu(torch.nn.Module):
    """uint8 N×C×H×W -> float32 N×z: pixel normalization, then the encoder's μ (averaged over the
    image and its mirror when the run says so: model/mirror.py; whitened when the run fitted a
    whitening: model/whitening.py)."""

    def __init__(self, encoder: torch.nn.Module, normalization: str, whitening: torch.nn.Module | None = None,
                 mirror: bool = False):
        super().__init__()
        self.encoder, self.normalization, self.mirror = encoder, normalization, mirror
        self.whitened = whitening is not None  # a fitted one: m and W as constants of the graph
        if self.whitened:
            self.register_buffer("mean", whitening.mean.detach().to("cpu", torch.float32).clone())
            self.register_buffer("matrix", whitening.matrix.detach().to("cpu", torch.float32).clone())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = normalize_pixels(images, self.normalization)  # N×C×H×W float32, as Embedder.embed computes it
        mu = (mirror_average(self.encoder, x) if self.mirror else self.encoder(x)).mu  # N×z
        return whiten(mu, self.mean, self.matrix) if self.whitened else mu


def _embedder(source):
    """An Embedder, or a run folder / checkpoint folder to load one from (on the CPU)."""
    if isinstance(source, (str, os.PathLike)):
        from infomax.embed.embedder import Embedder

        return Embedder.from_checkpoint(source, device="cpu"), str(Path(source).resolve())
    return source, None


def _to_onnx(module: torch.nn.Module, example: torch.Tensor, opset: int, dynamic_batch: bool):
    """torch.onnx.export with dynamo=True, quietly -> onnx.ModelProto."""
    dynamic = ({0: torch.export.Dim("N")},) if dynamic_batch else None
    onnx_logger = logging.getLogger("torch.onnx")  # "torchvision is not installed" notices
    level = onnx_logger.level
    onnx_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # raised inside torch.export
            program = torch.onnx.export(module, (example,), dynamo=True, verbose=False, opset_version=opset,
                                        input_names=[INPUT], output_names=[OUTPUT], dynamic_shapes=dynamic)
    except Exception as exc:  # torch.export or the ONNX translation refused the graph
        raise InfomaxError(f"ONNX export failed ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                           f"try another --opset (default {DEFAULT_OPSET})") from exc
    finally:
        onnx_logger.setLevel(level)
    return program.model_proto


def export_onnx(embedder_or_checkpoint, path: str | Path, *, opset: int = DEFAULT_OPSET,
                dynamic_batch: bool = True, check_images: np.ndarray | None = None,
                source: str | None = None) -> dict:
    """Write the encoder (uint8 images -> μ) to `path` (.onnx) and a sidecar `path` .json.

    `embedder_or_checkpoint`: an Embedder, or a run folder / step folder. `dynamic_batch=False`
    fixes the batch at 1. With `check_images` (uint8 N×C×H×W) and onnxruntime installed, the file
    is run on them and its largest absolute difference from PyTorch's μ is recorded. `source`
    names the checkpoint in the sidecar when an Embedder is passed.
    Returns the sidecar's content: path, input, output, opset, normalization, z_dim, checkpoint.
    """
    path = Path(path)
    if path.suffix != ".onnx":
        raise InfomaxError(f"{path} should end in .onnx (its sidecar is the same name with .json)")
    onnx = require("onnx", "ONNX export")
    require("onnxscript", "ONNX export")
    embedder, checkpoint = _embedder(embedder_or_checkpoint)
    c, s = embedder.in_channels, embedder.image_size
    encoder = copy.deepcopy(embedder.encoder).to("cpu", torch.float32, memory_format=torch.contiguous_format).eval()
    scale, offset = pixel_scale(embedder.normalization)
    module = ImagesToMu(encoder, embedder.normalization, embedder.whitening, embedder.mirror).eval()
    example = torch.zeros((2 if dynamic_batch else 1, c, s, s), dtype=torch.uint8)  # N×C×H×W; 2 keeps N symbolic
    proto = _to_onnx(module, example, opset, dynamic_batch)
    onnx.checker.check_model(proto)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, proto.SerializeToString())
    batch = "N" if dynamic_batch else 1
    info = {
        "path": str(path.resolve()),
        "input": {"name": INPUT, "shape": [batch, c, s, s], "dtype": "uint8", "layout": "NCHW",
                  "mode": "L" if c == 1 else "RGB"},
        "output": {"name": OUTPUT, "shape": [batch, embedder.z_dim], "dtype": "float32"},
        "normalization": {"name": embedder.normalization, "scale": float(scale), "offset": float(offset),
                          "applied": "inside the graph: x.float() * scale + offset"},
        "z_dim": embedder.z_dim,
        "opset": next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
        "checkpoint": checkpoint or source,
        "torch": torch.__version__,
    }
    if check_images is not None and has_onnxruntime():
        info["check"] = {"images": len(check_images),
                         "max_abs_diff": max_abs_difference(path, embedder, check_images)}
    atomic_write(path.with_suffix(".json"), (json.dumps(info, indent=2) + "\n").encode())
    return info


def run_onnx(path: str | Path, images: np.ndarray) -> np.ndarray:
    """uint8 N×C×H×W through the ONNX file with onnxruntime (CPU) -> float32 N×z."""
    ort = require("onnxruntime", "Running an ONNX file")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run([OUTPUT], {INPUT: np.ascontiguousarray(images, dtype=np.uint8)})[0]


def max_abs_difference(path: str | Path, embedder, images: np.ndarray) -> float:
    """max |onnxruntime μ − Embedder.embed μ| over uint8 N×C×H×W images."""
    return float(np.abs(run_onnx(path, images) - embedder.embed(images)).max(initial=0.0))
