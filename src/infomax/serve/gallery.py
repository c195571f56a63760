"""The gallery: the indexed images by gallery row, with their ids, class names and pictures.

A gallery row is a position in the index (what `infomax search` calls a row). The index records
the embeddings row of each position, and embeddings rows are the data set's images in order
(its splits one after another, train first). The pixels come from the decoded data set; the
pictures shown to people come from the source files where the data has them
(infomax.data.pictures: 256 px, cached in memory and on disk). Images are only ever looked up
by row number: no path from a client is opened.

For an index whose metadata is read by row (ivfpq, or sharded), ids, labels and names are read
when a row is described, and ids are found by a binary search over the index's id order: nothing
that grows with the gallery is held in memory.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from infomax.data.pictures import Picture, Pictures
from infomax.errors import InfomaxError
from infomax.extras import require

pd = require("pandas", "serve", "the search service's gallery")


class Gallery:
    """Images (uint8 C×H×W) and their description, addressed by gallery row."""

    def __init__(self, parts: Sequence[np.ndarray], data_rows: Sequence[int], metadata: pd.DataFrame,
                 pictures: Pictures | None = None):
        """parts: the data set's image arrays (uint8 N×C×H×W), one per split, in order;
        data_rows: for each gallery row, its row in those parts taken one after another;
        metadata: for each gallery row, id, label and label_name;
        pictures: what the images look like (default: the decoded pixels, enlarged)."""
        self.parts = list(parts)
        self.pictures = pictures if pictures is not None else Pictures(self.parts)
        # metadata read by row (take, row_of, label_names: lazy.ArrowMetadata, sharded.ShardedMetadata)
        self.lazy = not isinstance(metadata, pd.DataFrame)
        lazy_rows = self.lazy or isinstance(data_rows, np.memmap)
        self.data_rows = data_rows if lazy_rows else np.asarray(data_rows, dtype=np.int64)
        if len(metadata) != len(self.data_rows):
            raise ValueError(f"{len(self.data_rows)} gallery rows but {len(metadata)} metadata rows")
        if self.lazy:
            self.metadata = metadata
            return
        self.ids = [str(i) for i in metadata["id"]]
        self.labels = [None if _missing(v) else int(v) for v in metadata["label"]]
        self.label_names = [None if _missing(v) or str(v) == "" else str(v) for v in metadata["label_name"]]
        self._rows_by_id = {v: r for r, v in enumerate(self.ids)}

    @classmethod
    def for_index(cls, dataset, index, spec: str = "the data", pictures_dir: str | bool | None = True) -> "Gallery":
        """The images of an index's gallery, from the data set its embeddings were made from.

        pictures_dir: the disk cache of pictures made from source files (True: the default
        folder, None: memory only). Refuses a data set whose images are not the ones the index describes (compared by id).
        """
        data_ids = [str(i) for split in dataset.splits.values() for i in split.ids]
        rows = index.embedding_rows  # int64 n (memory-mapped for ivfpq, read by shard when sharded)
        hint = "pass the --data the embeddings were made from"
        lazy = getattr(index, "lazy", False)
        # a lazy index is checked at up to 1,024 evenly spaced rows: its ids are read by row
        check = np.unique(np.linspace(0, len(rows) - 1, min(len(rows), 1024)).astype(np.int64)) if lazy \
            else np.arange(len(rows))
        lowest, highest = _bounds(rows)
        if len(rows) and (lowest < 0 or highest >= len(data_ids)):
            raise InfomaxError(f"{spec} holds {len(data_ids)} images but the index refers to image "
                               f"{highest}; {hint}")
        ids = index.describe(check)["id"].astype(str).tolist() if lazy else index.ids
        for position, row, id_ in zip(check.tolist(), np.asarray(rows[check]).tolist(), ids):
            if data_ids[row] != str(id_):
                raise InfomaxError(f"{spec} does not match the index: gallery row {position} is '{id_}' in the "
                                   f"index but '{data_ids[row]}' in the data; {hint}")
        pictures = Pictures.for_dataset(dataset, cache_dir=pictures_dir)
        return cls(pictures.parts, rows if lazy else np.asarray(rows), index.metadata, pictures)

    def __len__(self) -> int:
        return len(self.data_rows)

    def image(self, row: int) -> np.ndarray:
        """uint8 C×H×W of one gallery row."""
        if not 0 <= row < len(self):
            raise IndexError(f"row {row} is outside the gallery (0..{len(self) - 1})")
        return self.pictures.image(int(self.data_rows[row]))

    def picture(self, row: int) -> Picture:
        """What a gallery row looks like: its source file at up to 256 px (JPEG), or its decoded
        pixels enlarged (PNG); cached."""
        if not 0 <= row < len(self):
            raise IndexError(f"row {row} is outside the gallery (0..{len(self) - 1})")
        return self.pictures.picture(int(self.data_rows[row]))

    def row_of(self, id_: str) -> int | None:
        """The gallery row of an image id, or None."""
        if self.lazy:
            return self.metadata.row_of(id_)
        return self._rows_by_id.get(id_)

    def describe(self, row: int) -> dict:
        """JSON-ready description of one row."""
        return self.describe_rows([row])[0]

    def describe_rows(self, rows) -> list[dict]:
        """JSON-ready descriptions of some rows, in order (a lazy gallery reads them in one lookup)."""
        rows = [int(r) for r in rows]
        if self.lazy:
            described = [(str(m["id"]), m["label"], m["label_name"] or None) for m in self.metadata.records(rows)]
        else:
            described = [(self.ids[r], self.labels[r], self.label_names[r]) for r in rows]
        return [{"row": r, "id": i, "label": lab, "label_name": nm, "image_url": f"/api/images/{r}"}
                for r, (i, lab, nm) in zip(rows, described)]

    def class_names(self) -> list[str]:
        """The distinct class names of the gallery, sorted (a lazy gallery scans its mapped column)."""
        if self.lazy:
            return self.metadata.label_names()
        return sorted({n for n in self.label_names if n})

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.parts[0].shape[1:]) if self.parts else ()


def _bounds(rows) -> tuple[int, int]:
    """(smallest, largest) embeddings row of the gallery; (0, -1) when it is empty."""
    if not len(rows):
        return 0, -1
    if isinstance(rows, np.ndarray):
        return int(np.min(rows)), int(np.max(rows))
    return rows.bounds()  # sharded.ByShard: each shard's own


def _missing(value) -> bool:
    return value is None or bool(pd.isna(value))
