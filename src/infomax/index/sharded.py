"""An index split into shards by vector range, searched as one gallery.

    infomax index --embeddings EMB --out IDX --shards 4

INDEX_DIR/
  shards.json       the shards in order: their folders and sizes, the split, the source embeddings
  shard-00/ ...     each an ordinary index folder (any kind) over one contiguous range of the
                    gallery's rows: shard 0 the first n/K rows, shard 1 the next, ...

`ShardedGallery` searches every shard (one thread each) and merges their top k by score. Each
shard re-ranks its candidates with exact cosine scores, so the merge is exact: a sharded flat
index returns what one flat index over all rows returns. Positions are global: position p of
shard s is `offsets[s] + p`. Shards build one after another, so the build's peak memory is
one shard's; shards can live on separate disks (a shard folder may be a symbolic link).

For `infomax serve`, a sharded gallery reads like an ivfpq one (`lazy`): its vectors, embeddings
rows and metadata are read by position from the shard that holds each (`ByShard`,
`ShardedMetadata`), and an id is found by asking each shard in turn.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from infomax.errors import InfomaxError
from infomax.index.store import GalleryIndex, write_folder

MANIFEST = "shards.json"


def shard_name(s: int) -> str:
    return f"shard-{s:02d}"


def is_sharded(index_dir: str | Path) -> bool:
    return (Path(index_dir) / MANIFEST).is_file()


def build_sharded(emb_dir: str | Path, out_dir: str | Path, shards: int, split: str = "train", emb=None,
                  **options) -> "ShardedGallery":
    """Index the split's rows in `shards` contiguous ranges, one index folder each (options go to
    `build_gallery`: kind, params, threads, max_memory); returns the sharded gallery."""
    from infomax.embed.files import load_embeddings
    from infomax.embed.ondisk import EmbeddingsOnDisk
    from infomax.index.build import choose_kind
    from infomax.index.store import build_gallery, gallery_rows

    emb = emb if emb is not None else EmbeddingsOnDisk(emb_dir)
    rows = gallery_rows(emb, split)
    if not 1 <= shards <= len(rows):
        raise InfomaxError(f"--shards {shards}: give 1 to {len(rows)} (the gallery's size)")
    ranges = np.array_split(rows, shards)
    kinds = {choose_kind(len(part), options.get("kind", "auto"), dim=int(emb.vectors.shape[1]),
                         max_memory=options.get("max_memory")) for part in ranges}
    if kinds != {"ivfpq"} and isinstance(emb, EmbeddingsOnDisk):  # in-memory shards hold their metadata
        emb = load_embeddings(emb_dir)

    def fill(tmp: Path) -> None:
        for s, part in enumerate(ranges):
            build_gallery(emb_dir, tmp / shard_name(s), split=split, emb=emb, rows=part, **options)
        manifest = {"format": 1, "split": split, "embeddings": str(Path(emb_dir).resolve()),
                    "shards": [{"dir": shard_name(s), "size": int(len(part))} for s, part in enumerate(ranges)]}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))

    write_folder(out_dir, fill)
    return ShardedGallery.load(out_dir)


class ShardedGallery:
    """Several GalleryIndex shards searched as one gallery of global positions 0..n-1."""

    def __init__(self, path: Path, shards: list[GalleryIndex], info: dict):
        self.path, self.shards, self.info = path, shards, info
        sizes = [len(s) for s in shards]
        self.offsets = np.cumsum([0] + sizes[:-1]).astype(np.int64)  # global position of each shard's first
        self.kind = "sharded " + "/".join(sorted({s.kind for s in shards}))
        self.params = shards[0].params
        self.lazy = True  # read by position through the shards, as an ivfpq index is
        self.vectors = ByShard(self, lambda shard, local: shard.vectors[local])  # unit float32, by position
        self.embedding_rows = ByShard(self, lambda shard, local: shard.embedding_rows[local])  # int64
        self.metadata = ShardedMetadata(self)
        self._pool = ThreadPoolExecutor(max_workers=len(shards), thread_name_prefix="shard")

    @classmethod
    def load(cls, index_dir: str | Path) -> "ShardedGallery":
        d = Path(index_dir)
        try:
            info = json.loads((d / MANIFEST).read_text())
            entries = info["shards"]
        except (OSError, ValueError, KeyError) as exc:
            raise InfomaxError(f"sharded index {d} is damaged ({exc}); rebuild it with `infomax index --shards`") from exc
        shards = [GalleryIndex.load(d / e["dir"]) for e in entries]
        for e, shard in zip(entries, shards):
            if len(shard) != e["size"]:
                raise InfomaxError(f"shard {d / e['dir']} holds {len(shard)} vectors, {MANIFEST} says {e['size']}; rebuild it")
        dims = {s.dim for s in shards}
        if len(dims) != 1:
            raise InfomaxError(f"the shards of {d} hold vectors of different sizes ({sorted(dims)}); rebuild it")
        first = shards[0].info
        return cls(d, shards, {**info, "kind": "sharded", "checkpoint": first.get("checkpoint"),
                               "data": first.get("data"), "dim": first.get("dim"), "size": sum(len(s) for s in shards),
                               "build_seconds": round(sum(s.info.get("build_seconds", 0) for s in shards), 2)})

    def __len__(self) -> int:
        return int(self.offsets[-1] + len(self.shards[-1]))

    @property
    def dim(self) -> int:
        return self.shards[0].dim

    def locate(self, positions) -> tuple[np.ndarray, np.ndarray]:
        """Global positions -> (shard number, position within that shard), both int64."""
        positions = np.asarray(positions, dtype=np.int64)
        if positions.size and (positions.min() < 0 or positions.max() >= len(self)):
            raise InfomaxError(f"row {int(positions.max() if positions.max() >= len(self) else positions.min())} "
                               f"is outside the gallery (0..{len(self) - 1})")
        shard = np.searchsorted(self.offsets, positions, side="right") - 1
        return shard, positions - self.offsets[shard]

    def vector(self, row: int) -> np.ndarray:
        shard, local = self.locate([row])
        return self.shards[int(shard[0])].vector(int(local[0]))

    @property
    def ids(self) -> "_Ids":
        return _Ids(self)

    def describe(self, positions):
        """id, split, label, label_name of some global positions, read from their shards only."""
        import pandas as pd

        positions = np.asarray(positions, dtype=np.int64).ravel()
        shard, local = self.locate(positions)
        frames, order = [], []
        for s in np.unique(shard):
            at = np.flatnonzero(shard == s)
            frames.append(self.shards[int(s)].describe(local[at]))
            order.append(at)
        if not frames:
            return self.shards[0].describe(np.zeros(0, dtype=np.int64))
        table = pd.concat(frames, ignore_index=True)
        return table.iloc[np.argsort(np.concatenate(order), kind="stable")].reset_index(drop=True)

    def check_embeddings(self, emb) -> None:
        """Raise InfomaxError unless `emb` is the embeddings folder the shards were built from."""
        self.shards[0].check_embeddings(emb)  # every shard records the fingerprint of the whole folder

    def embedding_rows_of(self, positions) -> np.ndarray:
        """The embeddings row of each global position (int64)."""
        shard, local = self.locate(positions)
        return np.array([self.shards[s].embedding_rows[p] for s, p in zip(shard.tolist(), local.tolist())], dtype=np.int64)

    def search(self, vectors: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Every shard's top k, merged: scores float32 Q×k (best first) and global positions int64 Q×k
        (-1 / -inf beyond the gallery's size). Safe to call from several threads at once."""
        found = list(self._pool.map(lambda s: s.search(vectors, k), self.shards))
        scores = np.concatenate([f[0] for f in found], axis=1)  # Q×(K·k)
        pos = np.concatenate([np.where(f[1] >= 0, f[1] + off, -1) for f, off in zip(found, self.offsets)], axis=1)
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]  # ties: the earlier shard first
        r = np.arange(len(scores))[:, None]
        return scores[r, top].astype(np.float32), pos[r, top]


class ByShard:
    """An array-like over global positions whose rows each shard reads for its own: view[p] or
    view[int array] (any shape), read from the shards that hold them, in the order asked."""

    def __init__(self, gallery: ShardedGallery, read):
        self.gallery, self.read = gallery, read  # read(shard GalleryIndex, local int64 array) -> rows

    def __len__(self) -> int:
        return len(self.gallery)

    def __getitem__(self, key) -> np.ndarray:
        positions = np.asarray(key, dtype=np.int64)
        shard, local = self.gallery.locate(positions.ravel())
        parts, order = [], []
        for s in np.unique(shard):
            at = np.flatnonzero(shard == s)
            parts.append(np.asarray(self.read(self.gallery.shards[int(s)], local[at])))
            order.append(at)
        if not parts:
            first = np.asarray(self.read(self.gallery.shards[0], np.zeros(0, dtype=np.int64)))
            return first.reshape(positions.shape + first.shape[1:])
        rows = np.concatenate(parts)[np.argsort(np.concatenate(order), kind="stable")]
        return rows.reshape(positions.shape + rows.shape[1:])

    def bounds(self) -> tuple[int, int]:
        """(smallest, largest) value over every position: the shards' own, combined (embedding rows)."""
        values = [self.read(s, slice(None)) for s in self.gallery.shards]
        return min(int(np.min(v)) for v in values), max(int(np.max(v)) for v in values)


class ShardedMetadata:
    """The metadata of a sharded gallery by global position, as lazy.ArrowMetadata reads it."""

    def __init__(self, gallery: ShardedGallery):
        self.gallery = gallery
        self._by_id: dict[int, dict[str, int]] = {}  # shards that hold their metadata in memory

    def __len__(self) -> int:
        return len(self.gallery)

    def take(self, positions):
        return self.gallery.describe(positions)

    def records(self, positions) -> list[dict]:
        """The rows of some global positions as dicts, in order (a missing label or name: None)."""
        import pandas as pd

        return [{"id": str(r["id"]), "split": r["split"], "label": None if pd.isna(r["label"]) else int(r["label"]),
                 "label_name": None if pd.isna(r["label_name"]) else str(r["label_name"])}
                for r in self.take(positions).to_dict("records")]

    def row_of(self, id_: str) -> int | None:
        """The global position of an id (the first, if repeated), or None: each shard is asked in turn."""
        for s, shard in enumerate(self.gallery.shards):
            if shard.lazy:
                local = shard.metadata.row_of(id_)
            else:
                if s not in self._by_id:
                    self._by_id[s] = {}
                    for r, i in enumerate(shard.ids):
                        self._by_id[s].setdefault(i, r)
                local = self._by_id[s].get(id_)
            if local is not None:
                return int(self.gallery.offsets[s] + local)
        return None

    def label_names(self) -> list[str]:
        names = set()
        for shard in self.gallery.shards:
            names.update(shard.metadata.label_names() if shard.lazy else
                         (str(n) for n in shard.metadata["label_name"] if isinstance(n, str) and n))
        return sorted(names)


class _Ids:
    """ids[p] of a sharded gallery, read from the shard holding p."""

    def __init__(self, gallery: ShardedGallery):
        self.gallery = gallery

    def __len__(self) -> int:
        return len(self.gallery)

    def __getitem__(self, position: int) -> str:
        return str(self.gallery.describe([int(position)])["id"].iloc[0])


def open_index(index_dir: str | Path):
    """A GalleryIndex, or a ShardedGallery for a folder written with --shards."""
    return ShardedGallery.load(index_dir) if is_sharded(index_dir) else GalleryIndex.load(index_dir)
