"""The embeddings folder: the one format every later stage (eval, grid, index, serve) reads.

EMB_DIR/
  embeddings/part-NNNNN.npy      float32 (or float16) rows × z_dim, the μ features, parts in row order
  metadata/part-NNNNN.parquet    the same rows: id (str), split (str), label (nullable int), label_name
  fc/, conv/ part-NNNNN.npy      optional extra features (pooled pre-head, flattened local map)
  embed.json                     how they were made (checkpoint, data spec, splits, features,
                                 normalization, storage dtype, part size) and the parts' row counts

See `infomax.embed.shards` for the parts. A folder of the older single-file layout
(embeddings.npy, metadata.parquet, fc.npy, conv.npy) still loads, as one part.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from infomax.atomic import atomic_write
from infomax.embed import shards
from infomax.embed.shards import ShardedArray
from infomax.errors import InfomaxError
from infomax.extras import PARQUET, require_all

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

INFO = "embed.json"
EXTRA_FEATURES = ("mu", "fc", "conv")
PART_SIZE = 100_000  # rows per part: see docs/embed.md ("Parts")


@dataclass
class Embeddings:
    vectors: ShardedArray | np.ndarray  # float32 N×D (μ); loaded: a ShardedArray over the parts
    metadata: pd.DataFrame  # N rows: id, split, label, label_name
    info: dict
    extra: dict = field(default_factory=dict)  # "fc" / "conv" -> N×D' (ShardedArray when loaded)

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


def part_bounds(n: int, part_size: int) -> list[tuple[int, int]]:
    """[start, stop) rows of each part of n rows (one empty part when n = 0)."""
    if part_size < 1:
        raise InfomaxError(f"--part-size must be at least 1 row, got {part_size}")
    return [(a, min(a + part_size, n)) for a in range(0, n, part_size)] or [(0, 0)]


def clear_folder(out: Path) -> None:
    """Remove the embeddings (either layout) and embed.json from `out`; other files stay."""
    for sub in (shards.VECTORS_DIR, shards.METADATA_DIR, *EXTRA_FEATURES):
        shutil.rmtree(out / sub, ignore_errors=True)
    for name in (shards.LEGACY_VECTORS, shards.LEGACY_METADATA, INFO, *(f"{f}.npy" for f in EXTRA_FEATURES)):
        (out / name).unlink(missing_ok=True)


def parts_record(out: Path) -> list[dict]:
    """[{"name": "part-00000", "rows": n}, ...] of the finished parts."""
    return [{"name": shards.part_name(k), "rows": int(n)}
            for k, n in zip(shards.finished_parts(out), shards.part_rows(out))]


def save_embeddings(out_dir: str | Path, emb: Embeddings, part_size: int = PART_SIZE,
                    dtype: str = "float32") -> Path:
    """Write an in-memory Embeddings as parts of `part_size` rows (replacing any embeddings there)."""
    require_all(PARQUET, "eval", "writing the embeddings' metadata")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    check_consistent(emb, out)
    clear_folder(out)
    for k, (a, b) in enumerate(part_bounds(len(emb), part_size)):
        shards.write_part(out, k, np.asarray(emb.vectors[a:b], dtype=dtype), emb.metadata.iloc[a:b],
                          {name: np.asarray(x[a:b], dtype=dtype) for name, x in emb.extra.items()})
    info = {**emb.info, "dtype": dtype, "part_size": part_size, "complete": True, "parts": parts_record(out)}
    atomic_write(out / INFO, json.dumps(info, indent=2))
    return out


def load_embeddings(emb_dir: str | Path, mmap: bool = True) -> Embeddings:
    """Read and check an embeddings folder written by `infomax embed`: the vectors (and extra
    features) as ShardedArrays over memory-mapped parts, the metadata as one DataFrame.
    mmap=False reads the vectors into memory."""
    require_all(PARQUET, "eval", "reading the embeddings' metadata")
    d = Path(emb_dir)
    info = read_info(d)
    vectors, extra = _open_vectors(d, info)
    if not mmap:
        vectors = ShardedArray([np.asarray(vectors)])
        extra = {name: ShardedArray([np.asarray(x)]) for name, x in extra.items()}
    emb = Embeddings(vectors=vectors, metadata=shards.read_metadata(d), info=info, extra=extra)
    check_consistent(emb, d)
    return emb


def load_vectors(emb_dir: str | Path) -> ShardedArray:
    """Only the μ vectors of an embeddings folder (memory-mapped parts), its metadata left unread:
    what a pass over many rows needs (index building, export)."""
    d = Path(emb_dir)
    return _open_vectors(d, read_info(d))[0]


def _open_vectors(d: Path, info: dict) -> tuple[ShardedArray, dict[str, ShardedArray]]:
    """The vectors and extra features of a finished embeddings folder, as ShardedArrays."""
    parts = shards.finished_parts(d)
    if parts:
        if info.get("complete") is False:
            raise InfomaxError(f"the embedding into {d} did not finish ({len(parts)} of {info.get('num_parts', '?')} "
                               f"parts); run the same `infomax embed --out {d}` again to resume it")
        if parts != list(range(len(parts))):
            missing = sorted(set(range(parts[-1] + 1)) - set(parts))
            raise InfomaxError(f"{d} lacks embeddings part {shards.part_name(missing[0])}; re-run `infomax embed --out {d}`")
        vectors = ShardedArray.open([shards.vectors_path(d, k) for k in parts], info.get("z_dim"))
        extra = {name: ShardedArray.open([shards.vectors_path(d, k, name) for k in parts])
                 for name in EXTRA_FEATURES if (d / name).is_dir()}
    elif (d / shards.LEGACY_VECTORS).is_file():
        vectors = ShardedArray.open([d / shards.LEGACY_VECTORS])
        extra = {name: ShardedArray.open([d / f"{name}.npy"]) for name in EXTRA_FEATURES if (d / f"{name}.npy").is_file()}
    else:
        raise InfomaxError(f"{d} holds no embeddings ({shards.VECTORS_DIR}/part-*.npy); "
                           f"create them with `infomax embed --out {d}`")
    return vectors, extra


def read_info(d: Path) -> dict:
    try:
        return json.loads((d / INFO).read_text()) if (d / INFO).is_file() else {}
    except (ValueError, OSError) as exc:
        raise InfomaxError(f"{d / INFO} is damaged ({exc}); re-run `infomax embed --out {d}`") from exc


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
            raise InfomaxError(f"{where}: the {name} features have {len(array)} rows, the embeddings {n}; "
                               "re-run `infomax embed`")
