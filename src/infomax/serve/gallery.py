"""The gallery: the data set's images by row number, with their ids and class names, as PNG.

Row numbers are the embeddings' rows: the data set's splits in order (train first). Images are
only ever looked up by row in the decoded data set; no path from a client is opened.
"""

from __future__ import annotations

import io
from bisect import bisect_right
from functools import lru_cache
from typing import Sequence

import numpy as np
import pandas as pd
from PIL import Image

from infomax.errors import InfomaxError

PNG_CACHE = 4096  # encoded images kept in memory (a 32×32 PNG is about 3 KB)


class Gallery:
    """Images (uint8 C×H×W) and their description, addressed by row number."""

    def __init__(self, parts: Sequence[np.ndarray], ids: Sequence[str], labels: Sequence, label_names: Sequence):
        self.parts = list(parts)  # one uint8 N×C×H×W array per split, in row order
        self.starts = np.cumsum([0] + [len(p) for p in self.parts]).tolist()
        n = self.starts[-1]
        if not len(ids) == len(labels) == len(label_names) == n:
            raise ValueError(f"gallery of {n} images but {len(ids)} ids, {len(labels)} labels, {len(label_names)} names")
        self.ids = [str(i) for i in ids]
        self.labels = [None if _missing(v) else int(v) for v in labels]
        self.label_names = [None if _missing(v) or str(v) == "" else str(v) for v in label_names]
        self._rows_by_id = None
        self.png = lru_cache(maxsize=PNG_CACHE)(self._png)

    @classmethod
    def from_dataset(cls, dataset, metadata, spec: str = "the data") -> "Gallery":
        """The data set's images with the embeddings' metadata (id, label, label_name per row).

        Refuses a data set whose rows are not the ones the embeddings describe.
        """
        parts = [split.images for split in dataset.splits.values()]
        data_ids = [i for split in dataset.splits.values() for i in split.ids]
        ids = metadata["id"].astype(str).tolist()
        if len(data_ids) != len(ids):
            raise InfomaxError(
                f"{spec} holds {len(data_ids)} images but the index describes {len(ids)}; "
                "pass the --data the embeddings were made from"
            )
        for row, (a, b) in enumerate(zip(data_ids, ids)):
            if str(a) != b:
                raise InfomaxError(
                    f"{spec} does not match the index: row {row} is '{a}' in the data but '{b}' in the index; "
                    "pass the --data the embeddings were made from"
                )
        return cls(parts, ids, metadata["label"].tolist(), metadata["label_name"].tolist())

    def __len__(self) -> int:
        return self.starts[-1]

    def image(self, row: int) -> np.ndarray:
        """uint8 C×H×W of one row."""
        if not 0 <= row < len(self):
            raise IndexError(f"row {row} is outside the gallery (0..{len(self) - 1})")
        part = bisect_right(self.starts, row) - 1
        return np.asarray(self.parts[part][row - self.starts[part]])

    def _png(self, row: int) -> bytes:
        pixels = self.image(row)
        picture = Image.fromarray(pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0))
        out = io.BytesIO()
        picture.save(out, format="PNG")
        return out.getvalue()

    def row_of(self, id_: str) -> int | None:
        """The row of a source id, or None."""
        if self._rows_by_id is None:
            self._rows_by_id = {v: r for r, v in enumerate(self.ids)}
        return self._rows_by_id.get(id_)

    def describe(self, row: int) -> dict:
        """JSON-ready description of one row."""
        return {
            "row": row,
            "id": self.ids[row],
            "label": self.labels[row],
            "label_name": self.label_names[row],
            "image_url": f"/api/images/{row}",
        }

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.parts[0].shape[1:]) if self.parts else ()


def _missing(value) -> bool:
    return value is None or bool(pd.isna(value))
