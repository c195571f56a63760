"""An embeddings folder read for one pass over many rows: what an ivfpq index build needs.

`load_embeddings` holds the metadata as one DataFrame: about 200 bytes a row in pandas, 2 GB
at 10 million rows. `EmbeddingsOnDisk` never does: the vectors are memory-mapped parts, the
split column is read alone (pyarrow, a few bytes a row), ids are read for the rows asked for,
and the metadata of a run of rows comes in chunks of at most `CHUNK` rows, one parquet record
batch at a time. It answers what the index build asks of an `Embeddings`: `vectors`, `info`,
`rows(split)`, `splits`, `ids[rows]` and `metadata_chunks(rows)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from infomax.embed import shards
from infomax.embed.files import load_vectors, read_info
from infomax.errors import InfomaxError

CHUNK = 1 << 18  # metadata rows per chunk: about 50 MB as a DataFrame


class EmbeddingsOnDisk:
    def __init__(self, folder: str | Path):
        import pyarrow.parquet as pq

        self.folder = Path(folder)
        self.info = read_info(self.folder)
        self.vectors = load_vectors(self.folder)
        self.files = shards.metadata_files(self.folder)
        counts = np.array([pq.ParquetFile(f).metadata.num_rows for f in self.files], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)  # files + 1
        if self.offsets[-1] != len(self.vectors):
            raise InfomaxError(f"{self.folder}: {len(self.vectors)} embeddings but {self.offsets[-1]} metadata rows; "
                               "they must describe the same images, re-run `infomax embed`")
        self.ids = _Column(self, "id")

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def _column(self, f: int, name: str):
        import pyarrow.parquet as pq

        try:
            return pq.read_table(self.files[f], columns=[name]).column(name)
        except (ValueError, OSError, KeyError) as exc:
            raise InfomaxError(f"{self.files[f]} is damaged or lacks '{name}' ({exc}); re-run `infomax embed`") from exc

    def rows(self, split: str) -> np.ndarray:
        """Row numbers of one split, in order (only the split column is read)."""
        import pyarrow.compute as pc

        found = [self.offsets[f] + np.flatnonzero(pc.equal(self._column(f, "split"), split).to_numpy(False))
                 for f in range(len(self.files))]
        return np.concatenate(found).astype(np.int64) if found else np.zeros(0, np.int64)

    @property
    def splits(self) -> list[str]:
        import pyarrow.compute as pc

        names = (pc.unique(self._column(f, "split")).to_pylist() for f in range(len(self.files)))
        return list(dict.fromkeys(n for part in names for n in part))

    def metadata_chunks(self, rows: np.ndarray, chunk: int = CHUNK) -> Iterator:
        """DataFrames (id, split, label, label_name) of `rows` (ascending), in order, ≤ chunk rows each."""
        import pyarrow.parquet as pq

        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) > 1 and np.any(np.diff(rows) <= 0):
            raise ValueError("metadata_chunks needs ascending rows")
        for f, path in enumerate(self.files):
            start = int(self.offsets[f])
            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk):
                lo, hi = np.searchsorted(rows, [start, start + batch.num_rows])
                if hi > lo:
                    frame = batch.take(rows[lo:hi] - start).to_pandas()
                    frame["label"] = frame["label"].astype("Int64")
                    yield frame
                start += batch.num_rows


class _Column:
    """One metadata column by row: column[int array] -> object array, reading only that column of
    the files that hold the rows."""

    def __init__(self, emb: EmbeddingsOnDisk, name: str):
        self.emb, self.name = emb, name

    def __len__(self) -> int:
        return len(self.emb)

    def __getitem__(self, rows) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty(len(rows), dtype=object)
        part_of = np.searchsorted(self.emb.offsets, rows, side="right") - 1
        for f in np.unique(part_of):
            at = np.flatnonzero(part_of == f)
            out[at] = self.emb._column(int(f), self.name).take(rows[at] - self.emb.offsets[f]).to_pylist()
        return out
