"""The images behind embedding rows.

Rows of an embeddings folder follow the data set's splits concatenated in order (train first,
then test or val); row i is image j of its split, where j counts the earlier rows of that split.
These helpers load the data set and hand back the images of given rows (decoded pixels, or
pictures to look at), after checking that the data set is the one that was embedded (same split
sizes, same ids).
"""

from __future__ import annotations

import numpy as np

from infomax.errors import InfomaxError


def load_dataset(spec: str | None, emb):
    """The data set named by `spec`, or by the embeddings' embed.json when spec is None."""
    spec = spec or emb.info.get("data")
    if not spec:
        raise InfomaxError("no data set named: pass --data SPEC (embed.json records none)")
    from infomax.data import load

    return load(spec)


def split_positions(emb) -> np.ndarray:
    """int64 N: the position of each embedding row within its own split."""
    split = emb.metadata["split"].to_numpy()
    positions = np.empty(len(split), dtype=np.int64)
    for name in emb.splits:
        rows = np.flatnonzero(split == name)
        positions[rows] = np.arange(len(rows))
    return positions


def check_dataset(dataset, emb) -> None:
    """Refuse a data set whose splits do not match the embedded ones."""
    for name in emb.splits:
        if name not in dataset.splits:
            raise InfomaxError(
                f"the embeddings have a split '{name}' that {dataset.kind}:{dataset.path} lacks "
                f"(it has {', '.join(dataset.splits)}); pass the --data that was embedded"
            )
        embedded, present = len(emb.rows(name)), len(dataset.splits[name])
        if embedded != present:
            raise InfomaxError(
                f"split '{name}' has {present} images in {dataset.kind}:{dataset.path} but {embedded} "
                "embeddings; pass the --data that was embedded or re-run `infomax embed`"
            )


def data_rows(dataset, emb, rows: np.ndarray) -> np.ndarray:
    """int64 R: the data set row (its splits one after another) of each embedding row, checked
    against the metadata ids."""
    rows = np.asarray(rows, dtype=np.int64)
    check_dataset(dataset, emb)
    offsets = dict(zip(dataset.splits, np.cumsum([0] + [len(s) for s in dataset.splits.values()]).tolist()))
    split = emb.metadata["split"].to_numpy()[rows]
    positions = split_positions(emb)[rows]
    ids = emb.metadata["id"].to_numpy()[rows]
    out = np.empty(len(rows), dtype=np.int64)
    for name in np.unique(split):
        where = np.flatnonzero(split == name)
        out[where] = offsets[name] + positions[where]
        source_ids = np.asarray(dataset.splits[name].ids, dtype=object)[positions[where]].astype(str)
        wrong = np.flatnonzero(source_ids != ids[where].astype(str))
        if len(wrong):
            w = where[wrong[0]]
            raise InfomaxError(
                f"row {rows[w]} is '{ids[w]}' in the embeddings but '{source_ids[wrong[0]]}' in "
                f"{dataset.kind}:{dataset.path}; pass the --data that was embedded"
            )
    return out


def row_images(dataset, emb, rows: np.ndarray) -> np.ndarray:
    """uint8 R×C×H×W decoded images of the given embedding rows, checked against the metadata ids."""
    found = data_rows(dataset, emb, rows)
    parts = [s.images for s in dataset.splits.values()]
    starts = np.cumsum([0] + [len(p) for p in parts])
    out = np.empty((len(found), *dataset.image_shape), dtype=np.uint8)
    which = np.searchsorted(starts, found, side="right") - 1
    for part in np.unique(which):
        where = np.flatnonzero(which == part)
        out[where] = parts[part][found[where] - starts[part]]
    return out


def row_pictures(dataset, emb, rows: np.ndarray, box: int, pictures=None) -> list[np.ndarray]:
    """uint8 H×W×3 per embedding row to draw within box×box: the source file's picture where the
    data has source files, else the decoded pixels enlarged by a whole factor (infomax.data.pictures)."""
    from infomax.data.pictures import Pictures

    pictures = pictures or Pictures.for_dataset(dataset)
    return [pictures.display(int(r), box) for r in data_rows(dataset, emb, rows)]
