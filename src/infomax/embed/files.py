"""The embeddings folder: the one format every later stage (eval, grid, index, serve) reads.

EMB_DIR/
  embeddings.npy     float32 N×z_dim, the μ features; row i = image i
  metadata.parquet   columns id (str), split (str), label (nullable int), label_name (str, "" when unknown)
  fc.npy, conv.npy   optional extra features (pooled pre-head, flattened local map), N×D
  embed.json         how they were made: checkpoint, data spec, splits, features, normalization
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from infomax.atomic import atomic_write
from infomax.errors import InfomaxError
from infomax.extras import PARQUET, require_all

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

VECTORS = "embeddings.npy"
METADATA = "metadata.parquet"
INFO = "embed.json"
EXTRA_FEATURES = ("fc", "conv")


@dataclass
class Embeddings:
    vectors: np.ndarray  # float32 N×D (μ)
    metadata: pd.DataFrame  # N rows: id, split, label, label_name
    info: dict
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # "fc" / "conv" -> N×D'

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def labelled(self) -> bool:
        return bool(self.metadata["label"].notna().all()) and len(self) > 0

    def rows(self, split: str) -> np.ndarray:
        """Row numbers of one split, in order."""
        return np.flatnonzero(self.metadata["split"].to_numpy() == split)

    @property
    def splits(self) -> list[str]:
        return list(dict.fromkeys(self.metadata["split"].tolist()))

    def labels(self) -> np.ndarray:
        """int64 labels (only valid when `labelled`)."""
        return self.metadata["label"].to_numpy(dtype=np.int64)

    def features(self, name: str = "y") -> np.ndarray:
        """'y' (μ) or an extra feature that was embedded."""
        if name == "y":
            return self.vectors
        if name not in self.extra:
            raise InfomaxError(
                f"features '{name}' were not embedded here; re-run `infomax embed --features {name}`"
            )
        return self.extra[name]


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save would append ".npy" to a bare temp name
        np.save(f, array)


def save_embeddings(out_dir: str | Path, emb: Embeddings) -> Path:
    """Write the folder; each file is written to a temp name and renamed into place."""
    require_all(PARQUET, "eval", f"writing {METADATA}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    check_consistent(emb, out)
    for name, array in emb.extra.items():
        atomic_write(out / f"{name}.npy", lambda p, a=array: _save_npy(p, a))
    atomic_write(out / METADATA, lambda p: emb.metadata.to_parquet(p, index=False))
    atomic_write(out / INFO, json.dumps(emb.info, indent=2))
    # The vectors go last: their presence marks a complete folder.
    atomic_write(out / VECTORS, lambda p: _save_npy(p, np.asarray(emb.vectors, dtype=np.float32)))
    return out


def load_embeddings(emb_dir: str | Path, mmap: bool = True) -> Embeddings:
    """Read and check an embeddings folder written by `infomax embed`."""
    require_all(PARQUET, "eval", f"reading {METADATA}")
    import pandas as pd

    d = Path(emb_dir)
    if not (d / VECTORS).is_file():
        raise InfomaxError(f"{d} holds no {VECTORS}; create it with `infomax embed --out {d}`")
    if not (d / METADATA).is_file():
        raise InfomaxError(f"{d} has {VECTORS} but no {METADATA}; re-run `infomax embed --out {d}`")
    try:
        vectors = np.load(d / VECTORS, mmap_mode="r" if mmap else None)
        metadata = pd.read_parquet(d / METADATA)
        info = json.loads((d / INFO).read_text()) if (d / INFO).is_file() else {}
    except (ValueError, OSError) as exc:
        raise InfomaxError(f"{d} is damaged ({exc}); re-run `infomax embed --out {d}`") from exc
    extra = {
        name: np.load(d / f"{name}.npy", mmap_mode="r" if mmap else None)
        for name in EXTRA_FEATURES
        if (d / f"{name}.npy").is_file()
    }
    emb = Embeddings(vectors=vectors, metadata=metadata, info=info, extra=extra)
    check_consistent(emb, d)
    return emb


def check_consistent(emb: Embeddings, where: Path) -> None:
    if emb.vectors.ndim != 2:
        raise InfomaxError(f"{where}: embeddings must be 2-D (N×D), got shape {emb.vectors.shape}")
    missing = {"id", "split", "label", "label_name"} - set(emb.metadata.columns)
    if missing:
        raise InfomaxError(f"{where}: metadata lacks columns {sorted(missing)}; re-run `infomax embed`")
    n = len(emb.vectors)
    if len(emb.metadata) != n:
        raise InfomaxError(
            f"{where}: {n} embeddings but {len(emb.metadata)} metadata rows; they must describe the "
            "same images, re-run `infomax embed`"
        )
    for name, array in emb.extra.items():
        if len(array) != n:
            raise InfomaxError(f"{where}: {name}.npy has {len(array)} rows, embeddings.npy {n}; re-run `infomax embed`")
