"""The Python API: load data, fit, load a trained model, embed images, build an index, search.

    import infomax
    data = infomax.load_data("cifar10:~/data/cifar-10-python.tar.gz")   # or a uint8 array / tensor / torch Dataset
    run = infomax.fit(data, preset="recommended", minutes=10, out="runs/c10")
    z = run.model.embed(images)                                          # N×D float32
    model = infomax.load("runs/c10")                                     # a run folder or a checkpoint
    index = infomax.build_index(z); scores, rows = index.search(z[:5], k=10)

Each command of the CLI is a thin layer over these functions and the modules they call.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from infomax.config import Config, resolve
from infomax.data.memory import as_array, as_dataset
from infomax.data.dataset import Dataset
from infomax.embed.embedder import Embedder
from infomax.errors import InfomaxError


def load_data(source, *, labels=None, download: bool = False, progress: bool = True,
              normalization: str = "center") -> Dataset:
    """A data set from a spec string ("cifar10:PATH", "folder:PATH,size=64", "digits", ...; see
    docs/data.md), or from images in memory: a uint8 array or tensor N×C×H×W or N×H×W×C (or N×H×W),
    a list of PIL images, or a torch Dataset whose items are images or (image, label) pairs.
    A "webdataset:DIR" spec gives an infomax.data.stream.Stream (batches read from tar shards)."""
    if isinstance(source, (str, Path)):
        from infomax.data import load
        from infomax.data.spec import STREAM_KINDS, parse_spec

        if parse_spec(str(source)).kind in STREAM_KINDS:  # tar shards: a Stream of batches, not arrays
            from infomax.data.stream import open_stream

            return open_stream(str(source))

        return load(str(source), download=download, progress=progress)
    return as_dataset(source, labels=labels, normalization=normalization)


class Model:
    """A trained encoder, ready to embed: embed(images) -> N×D float32 μ (eval mode, BatchNorm folded)."""

    def __init__(self, embedder: Embedder, path: Path | None = None):
        self.embedder, self.path = embedder, path

    @property
    def config(self) -> dict:
        """The run config it was trained with: train settings, model, objective, data."""
        return self.embedder.config

    @property
    def encoder(self) -> torch.nn.Module:
        return self.embedder.encoder

    @property
    def dim(self) -> int:
        return self.embedder.z_dim

    def embed(self, images, batch_size: int | None = None) -> np.ndarray:
        """Features y (μ, averaged with the image's mirror and whitened where the run says so) of
        images: file paths, PIL images, or uint8 arrays / tensors (one image C×H×W or H×W×C, or a
        batch N×C×H×W or N×H×W×C) -> float32 N×D. Files and PIL images are resized and cropped the
        way the training data was read."""
        return self.embedder.embed(self._pixels(images), batch_size)

    def _pixels(self, images) -> np.ndarray:
        c, s = self.embedder.in_channels, self.embedder.image_size
        if isinstance(images, (list, tuple)) and images and not isinstance(images[0], (np.ndarray, torch.Tensor)):
            return np.stack([self.embedder.load_image(_as_source(im)) for im in images])
        if isinstance(images, (str, Path)) or _is_pil(images):
            return self._pixels([images])
        single = as_array(images)
        if single.ndim == 3 and single.shape in ((c, s, s), (s, s, c)):  # one image, not a batch of gray ones
            images = single[None]
        array = as_dataset(images).splits["train"].images
        if tuple(array.shape[1:]) != (c, s, s):
            raise InfomaxError(f"the images are {tuple(array.shape[1:])} (C×H×W) but the model reads {(c, s, s)}; "
                               "pass files or PIL images (resized for you), or resize the arrays")
        return array

    def save_onnx(self, path: str | Path, **options) -> dict:
        """The encoder (uint8 images -> μ) as ONNX, normalization included (needs infomax[export])."""
        from infomax.export import export_onnx

        return export_onnx(self.embedder, path, **options)


def _is_pil(x) -> bool:
    return type(x).__module__.startswith("PIL.")


def _as_source(image):
    """A path or bytes that decode_image reads: PIL images are passed through PNG bytes."""
    if _is_pil(image):
        import io

        buf = io.BytesIO()
        image.save(buf, format="PNG")
        return buf.getvalue()
    return image


@dataclass
class Run:
    """A finished call of fit: the run folder, the trained model, how training ended."""

    path: Path
    model: Model
    steps: int
    stopped_by: str  # "epochs" | "max_steps" | "time_budget"
    images_per_s: float
    losses: dict[str, float]  # the last step's loss terms
    config: Config


def fit(data, preset: str = "recommended", *, minutes: float | None = None, steps: int | None = None,
        epochs: int | None = None, out: str | Path | None = None, encoder: torch.nn.Module | None = None,
        resume: bool = False, progress: bool = True, **settings) -> Run:
    """Train an encoder on data's train split and return the run with its model.

    data: anything load_data takes (or a Dataset). preset: "recommended" (default) or "seed" (the
    reference). minutes / steps / epochs: the run's length (time budget, optimizer steps, passes);
    a time budget alone decides it, and widens "recommended" once it buys enough passes over the
    data (config.for_time_budget).
    out: the run folder (config, checkpoints, logs); a new temporary folder when None.
    encoder: a name from the registry ("cnn", "resnet18"), or your own nn.Module mapping images
    N×C×H×W to a local feature map N×C'×h×w (or to a (map, pooled vector) pair): it gets μ and
    log σ² heads and trains with the DIM objective (the module itself is trained, in place).
    settings: any other setting by name (lr=5e-4, critic="dot", objective={"beta": 2.0}, ...; see
    infomax.config). Returns a Run; run.model.embed(images) gives features.
    """
    from infomax.train import distributed
    from infomax.train.loop import train

    if isinstance(encoder, str):
        settings, encoder = {**settings, "encoder": encoder}, None
    distributed.setup()  # under torchrun: join the process group
    with distributed.main_first():  # rank 0 decodes (and caches) first
        dataset = data if isinstance(data, Dataset) else load_data(data, progress=progress)
    length = {"time_budget": minutes, "max_steps": steps, "epochs": epochs}
    size = dataset.image_shape[1] if encoder is None else None  # a module of yours keeps its width
    cfg = resolve(dataset.kind, {}, {"preset": preset, **settings, **length}, image_size=size,
                  train_images=dataset.train_images)
    run_dir = Path(out) if out is not None else Path(distributed.from_main(
        tempfile.mkdtemp(prefix="infomax-run-") if distributed.current().main else None))
    result = train(cfg, run_dir, dataset, resume=resume, progress=progress, encoder=encoder)
    model = load(run_dir, encoder=encoder)
    return Run(run_dir, model, result.step, result.stopped_by, result.images_per_s, result.last_losses, cfg)


def load(path: str | Path, *, device: str = "auto", precision: str = "fp32",
         encoder: torch.nn.Module | None = None) -> Model:
    """A trained model from a run folder, a checkpoint folder or `pretrained:NAME` (an encoder
    shipped in the package: "pretrained:cifar10", "pretrained:tiny-imagenet"; no training, no
    network). A run trained with an encoder module of your own needs that module (untrained)
    as `encoder`."""
    if encoder is not None:
        import copy

        encoder = copy.deepcopy(encoder)  # the weights are loaded into a copy, not into the caller's module
    return Model(Embedder.from_checkpoint(path, device=device, precision=precision, encoder=encoder), Path(path))


class Index:
    """Nearest neighbours by cosine similarity over a set of vectors (faiss; exact for small sets,
    HNSW over 8-bit vectors for large ones). search(queries, k) -> (scores Q×k, rows Q×k): rows
    index the vectors given to build_index (-1 where fewer than k exist), best first."""

    def __init__(self, gallery, ids: list[str]):
        self.gallery, self.ids = gallery, ids

    def __len__(self) -> int:
        return len(self.gallery)

    def search(self, queries, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        scores, positions = self.gallery.search(np.asarray(queries, dtype=np.float32), k)
        rows = np.where(positions >= 0, self.gallery.embedding_rows[np.maximum(positions, 0)], -1)
        return scores, rows


def build_index(embeddings, *, ids=None, kind: str = "auto", out: str | Path | None = None) -> Index:
    """An index over vectors (N×D array), or over an embeddings folder written by `infomax embed`
    (its train split), written as an index folder to `out` (what `infomax search` and `infomax
    serve` read). ids: a name per vector (default: its row number)."""
    import pandas as pd

    from infomax.index.build import build_faiss, choose_kind, default_params, normalize
    from infomax.index.store import GalleryIndex, build_gallery

    if isinstance(embeddings, (str, Path)):
        if out is None:
            raise InfomaxError("building from an embeddings folder writes an index folder: give out=PATH")
        gallery = build_gallery(embeddings, out, kind=kind)
        return Index(gallery, gallery.ids)
    vectors = np.asarray(embeddings, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) == 0:
        raise InfomaxError(f"build_index takes vectors N×D (N ≥ 1), got shape {vectors.shape}")
    ids = [str(i) for i in (ids if ids is not None else range(len(vectors)))]
    if len(ids) != len(vectors):
        raise InfomaxError(f"{len(ids)} ids for {len(vectors)} vectors; give one id per vector")
    unit, rows = normalize(vectors), np.arange(len(vectors), dtype=np.int64)
    chosen = choose_kind(len(vectors), kind)
    if chosen == "ivfpq":  # an in-memory array: the on-disk kind needs an embeddings folder
        if kind == "ivfpq":
            raise InfomaxError("kind='ivfpq' is built from an embeddings folder: build_index(EMB_DIR, out=...)")
        chosen = "hnsw"
    params = default_params(chosen, len(vectors))
    index, order = build_faiss(unit, chosen, params)
    if order is not None:
        unit, rows = unit[order], rows[order]
    if index is None:
        from infomax.index.build import flat_index

        index = flat_index(unit)
    metadata = pd.DataFrame({"id": [ids[r] for r in rows]})
    gallery = GalleryIndex(Path("."), {"kind": chosen, "params": params}, unit, rows, metadata, index)
    return Index(gallery, ids)
