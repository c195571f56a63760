"""Gallery data read by row from disk: metadata, ids and unit vectors of a large (ivfpq) index.

An ivfpq index serves galleries too large to hold their metadata or vectors in memory:
- metadata.arrow: an uncompressed Arrow IPC file (id, split, label, label_name per position),
  memory-mapped; a lookup of k positions reads only those rows (`ArrowMetadata.take`);
- id_order.npy: int64 n, the positions sorted by id, memory-mapped: `row_of(id)` is a binary
  search that reads about log2(n) ids;
- the vectors stay in the embeddings folder; `UnitRows` reads rows of it and normalizes them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from infomax.extras import require

pa = require("pyarrow", "index", "the search index")
pd = require("pandas", "index", "the search index")

COLUMNS = ("id", "split", "label", "label_name")


def write_metadata(path: str | Path, frames, order_path: str | Path) -> int:
    """Write the metadata of the gallery positions, chunk by chunk, as an Arrow IPC file.

    frames: iterable of DataFrames (columns id, split, label, label_name) in position order.
    Also writes order_path (id_order.npy: positions sorted by id). Returns the row count.
    """
    import pyarrow.compute as pc

    schema = pa.schema([("id", pa.string()), ("split", pa.string()), ("label", pa.int64()),
                        ("label_name", pa.string())])
    n = 0
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for frame in frames:
            frame = frame.reset_index(drop=True)
            batch = pa.RecordBatch.from_pydict({
                "id": pa.array(frame["id"].astype(str).tolist(), pa.string()),
                "split": pa.array(frame["split"].astype(str).tolist(), pa.string()),
                "label": pa.array(pd.array(frame["label"], dtype="Int64"), pa.int64(), from_pandas=True),
                "label_name": pa.array(frame["label_name"].fillna("").astype(str).tolist(), pa.string()),
            }, schema=schema)
            writer.write_batch(batch)
            n += len(frame)
    ids = ArrowMetadata.open(path).table.column("id")  # memory-mapped: only the ids are read
    order = pc.sort_indices(ids).to_numpy().astype(np.int64)  # n positions, by id
    with open(order_path, "wb") as f:
        np.save(f, order)
    return n


class ArrowMetadata:
    """The metadata of the gallery positions, memory-mapped: rows are read when asked for."""

    def __init__(self, table, order: np.ndarray | None = None):
        self.table = table  # pyarrow Table backed by the mapped file
        self.order = order  # int64 n: positions sorted by id (memory-mapped), or None
        self.batches = table.to_batches()  # the file's record batches (zero-copy), and where each starts
        self.starts = np.cumsum([0] + [b.num_rows for b in self.batches])

    @classmethod
    def open(cls, path: str | Path, order_path: str | Path | None = None) -> "ArrowMetadata":
        source = pa.memory_map(str(path), "r")
        table = pa.ipc.open_file(source).read_all()  # zero-copy: buffers point into the mapping
        order = np.load(order_path, mmap_mode="r") if order_path is not None else None
        return cls(table, order)

    def __len__(self) -> int:
        return self.table.num_rows

    def take(self, positions) -> pd.DataFrame:
        """The rows of some positions (int64 array), in that order, as a DataFrame."""
        frame = self._taken(positions).to_pandas()
        frame["label"] = frame["label"].astype("Int64")
        return frame

    def records(self, positions) -> list[dict]:
        """The rows of some positions, in that order, as dicts (id, split, label, label_name; no pandas)."""
        return self._taken(positions).to_pylist()

    def _taken(self, positions):
        """The rows of `positions` (in that order) as a small Table. Each is taken from its own record
        batch: Table.take on the whole table would first join every batch of each column into one
        array, a copy of the whole gallery's metadata for each lookup."""
        positions = np.asarray(positions, dtype=np.int64).ravel()
        if len(positions) and (positions.min() < 0 or positions.max() >= len(self)):
            raise IndexError(f"positions outside the gallery (0..{len(self) - 1})")
        batch_of = np.searchsorted(self.starts, positions, side="right") - 1  # the batch of each position
        order = np.argsort(batch_of, kind="stable")  # the positions grouped by batch
        grouped, batches = positions[order], batch_of[order]
        parts = [self.batches[b].take(pa.array(grouped[batches == b] - self.starts[b])) for b in np.unique(batches)]
        table = pa.Table.from_batches(parts, schema=self.table.schema)  # k rows, in `order`
        return table.take(pa.array(np.argsort(order)))  # back in the order asked for

    def id(self, position: int) -> str:
        return self.table.column("id")[int(position)].as_py()

    def row_of(self, id_: str) -> int | None:
        """The position of an id (the first, if repeated), or None: a binary search over id_order."""
        if self.order is None:
            raise ValueError("this metadata has no id order")
        lo, hi = 0, len(self.order)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.id(self.order[mid]) < id_:
                lo = mid + 1
            else:
                hi = mid
        if lo < len(self.order) and self.id(self.order[lo]) == id_:
            return int(self.order[lo])
        return None

    def label_names(self) -> list[str]:
        """The distinct non-empty class names, sorted (one pass over the mapped column)."""
        import pyarrow.compute as pc

        return sorted(n for n in pc.unique(self.table.column("label_name")).to_pylist() if n)

    def __getitem__(self, column: str) -> pd.Series:
        """A whole column (n values in memory): for small galleries and tests only."""
        return self.table.column(column).to_pandas()


class LazyIds:
    """`GalleryIndex.ids` of an ivfpq index: ids[p] reads one row of the mapped metadata."""

    def __init__(self, metadata: ArrowMetadata):
        self.metadata = metadata

    def __len__(self) -> int:
        return len(self.metadata)

    def __getitem__(self, position):
        if isinstance(position, slice):
            return [self.metadata.id(p) for p in range(*position.indices(len(self)))]
        p = int(position)
        if not -len(self) <= p < len(self):
            raise IndexError(f"position {p} is outside the gallery (0..{len(self) - 1})")
        return self.metadata.id(p % len(self))

    def __iter__(self):
        ids = self.metadata.table.column("id")
        for start in range(0, len(self), 65536):
            yield from ids.slice(start, 65536).to_pylist()


class UnitRows:
    """Unit-normalized float32 rows of stored vectors, read by position (pread for a ShardedArray).

    source: N×D vectors (np.memmap or any array-like that supports slicing and integer-array
    indexing); rows: int64 n, the source row of each position. view[p] -> D, view[array] -> len×D.
    """

    def __init__(self, source, rows: np.ndarray):
        self.source, self.rows = source, rows
        self.shape = (len(rows), int(source.shape[1]))
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        single = np.ndim(key) == 0 and not isinstance(key, slice)
        positions = np.arange(*key.indices(len(self))) if isinstance(key, slice) else np.atleast_1d(np.asarray(key))
        src = np.asarray(self.rows[positions.ravel()], dtype=np.int64)
        order = np.argsort(src, kind="stable")  # read in file order, put back in asked order
        block = np.empty((len(src), self.shape[1]), dtype=np.float32)
        read = getattr(self.source, "read", None)  # ShardedArray: pread, the RSS stays flat
        block[order] = read(src[order]) if read is not None else np.asarray(self.source[src[order]], dtype=np.float32)
        block /= np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12)
        block = block.reshape(*positions.shape, self.shape[1])
        return block[0] if single else block
