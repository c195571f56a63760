"""Small embeddings folders built from real images (scikit-learn's digits) for the eval and index tests."""

import functools
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from infomax.embed.files import Embeddings, save_embeddings
from tests.datasets import small_digits


PART_SIZE = 100  # rows per part: the folders of these tests have several parts (320 rows: 100, 100, 100, 20)


def digits_embeddings(out_dir, labelled=True, n_train=256, n_test=64):
    """Save pixel features (8×8 means of the 16×16 digits, 64 dims) of small_digits as an embeddings folder."""
    data = small_digits(n_train=n_train, n_test=n_test)
    parts, frames = [], []
    for name, split in data.splits.items():
        x = split.images.astype(np.float32).reshape(len(split), 8, 2, 8, 2).mean(axis=(2, 4)).reshape(len(split), 64)
        parts.append(x / 255.0 - 0.3)
        labels = pd.array(split.labels if labelled else [pd.NA] * len(split), dtype="Int64")
        names = [str(int(l)) for l in split.labels] if labelled else [""] * len(split)
        frames.append(pd.DataFrame({"id": split.ids, "split": name, "label": labels, "label_name": names}))
    emb = Embeddings(np.concatenate(parts).astype(np.float32), pd.concat(frames, ignore_index=True),
                     {"data": "digits-test", "checkpoint": None})
    save_embeddings(out_dir, emb, part_size=PART_SIZE)
    return emb, data


@functools.lru_cache(maxsize=1)
def trained_run() -> Path:
    """A run folder with a one-step checkpoint (z_dim 16) on small_digits, made once per test session."""
    from infomax.config import resolve
    from infomax.train.loop import train

    run = Path(tempfile.mkdtemp(prefix="infomax-eval-run-"))
    cfg = resolve("digits", {}, {"preset": "seed", "batch_size": 32, "max_steps": 1, "device": "cpu", "z_dim": 16})
    train(cfg, run, small_digits(), progress=False)
    return run


def encoder_embeddings(out_dir):
    """Embeddings of small_digits by the trained_run() encoder, saved in out_dir."""
    from infomax.embed.embedder import Embedder
    from infomax.embed.run import embed_dataset

    run, data = trained_run(), small_digits()
    emb = embed_dataset(Embedder.from_checkpoint(run, device="cpu"), data, spec="digits-test", checkpoint=str(run))
    save_embeddings(out_dir, emb, part_size=PART_SIZE)
    return emb, data
