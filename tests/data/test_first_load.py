"""The first load decodes block by block into the cache file: same bytes as decoding each image
alone, whatever the chunk size, with failures at chunk boundaries; interrupted, it leaves nothing."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from infomax.data import load, parallel
from infomax.data.cache import SKIPPED

from .canonical import bad_files, image_bytes, write_tree

BAD = bad_files()


def _tree_files() -> dict[str, bytes]:
    """train/<a|b>/ and test/<a|b>/ PNGs of distinct colors and sizes, with damaged files among them.

    Seven of the 31 are damaged, the very first name (before any image decodes) and the last
    one of train/b included, so with chunks of 1, 3, 4 and 7 some fall on chunk boundaries.
    """
    files = {}
    for split, count in (("train", 22), ("test", 9)):
        for i in range(count):
            position = i if split == "train" else 22 + i
            name = f"{split}/{'ab'[i % 2]}/img{i:02d}.png"
            if position in (0, 4, 7, 8, 12, 21, 30):
                files[name] = list(BAD.values())[position % len(BAD)]
            else:
                files[name] = image_bytes((7 * position, 255 - 5 * position, 3 * i), (12 + i % 3, 9 + i % 4))
    return files


def _reference(files: dict[str, bytes], size: int) -> dict[str, tuple[np.ndarray, list[int], list[str]]]:
    """Each image decoded alone with Pillow (shorter side to `size`, center crop): per split
    (uint8 N×3×size×size, labels, ids) in natural order."""
    from PIL import ImageOps

    out = {}
    for split in ("train", "test"):
        images, labels, ids = [], [], []
        for name in sorted(n for n in files if n.startswith(split + "/")):  # zero-padded: natural order
            try:
                image = Image.open(io.BytesIO(files[name]))
                image.load()
            except Exception:  # noqa: BLE001 - the damaged ones
                continue
            if image.size[0] * image.size[1] > 50_000_000:
                continue
            fitted = ImageOps.fit(image.convert("RGB"), (size, size), Image.Resampling.BICUBIC)
            images.append(np.asarray(fitted).transpose(2, 0, 1))
            labels.append("ab".index(name.split("/")[1]))
            ids.append(name)
        out[split] = (np.stack(images), labels, ids)
    return out


@pytest.fixture
def tree(tmp_path, request) -> tuple[Path, dict[str, bytes]]:
    files = _tree_files()
    path = tmp_path / ("t.zip" if getattr(request, "param", True) else "t")
    write_tree(path, files, as_zip=path.suffix == ".zip")
    return path, files


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("chunk", [1, 3, 4, 7, 1000])
def test_chunked_first_load_matches_images_decoded_alone(tree, monkeypatch, infomax_home, chunk, workers):
    path, files = tree
    monkeypatch.setattr(parallel, "CHUNK_MIN", chunk)
    monkeypatch.setattr(parallel, "CHUNK_MAX", chunk)
    monkeypatch.setattr(parallel, "PARALLEL_MIN", 4)
    monkeypatch.setenv("INFOMAX_WORKERS", str(workers))
    ds = load(f"folder:{path},size=8", progress=False)
    reference = _reference(files, 8)
    entry = Path(ds.cache_path)
    for split, (images, labels, ids) in reference.items():
        got = ds.splits[split]
        assert got.ids == ids and got.labels.tolist() == labels
        assert np.array_equal(np.asarray(got.images), images)
        on_disk = np.load(entry / f"{split}.images.npy", allow_pickle=False)  # the file itself, header included
        assert on_disk.shape == images.shape and np.array_equal(on_disk, images)
        assert (entry / f"{split}.images.npy").stat().st_size == 128 + images.nbytes  # no room left for holes
    damaged = sorted(n for n in files if files[n] in BAD.values())
    assert sorted(name for name, _ in ds.skipped) == damaged and len(damaged) == 7
    lines = (entry / SKIPPED).read_text().splitlines()
    assert sorted(line.split("\t")[0] for line in lines) == damaged
    again = load(f"folder:{path},size=8", progress=False)
    assert again.from_cache and np.array_equal(again.splits["train"].images, reference["train"][0])


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("error", [Interrupt, KeyboardInterrupt])
def test_interrupted_first_load_leaves_no_entry(tree, monkeypatch, infomax_home, error):
    path, files = tree
    monkeypatch.setattr(parallel, "CHUNK_MIN", 3)
    monkeypatch.setattr(parallel, "CHUNK_MAX", 3)
    monkeypatch.setenv("INFOMAX_WORKERS", "1")
    real = parallel.decode_array
    calls = []

    def failing(*args):
        calls.append(1)
        if len(calls) == 15:  # half way: some chunks are in the file already
            raise error("stop")
        return real(*args)

    monkeypatch.setattr(parallel, "decode_array", failing)
    with pytest.raises(error):
        load(f"folder:{path},size=8", progress=False)
    assert len(calls) == 15 and list((infomax_home / "decoded").iterdir()) == []
    monkeypatch.setattr(parallel, "decode_array", real)
    ds = load(f"folder:{path},size=8", progress=False)
    assert not ds.from_cache and np.array_equal(ds.splits["test"].images, _reference(files, 8)["test"][0])
    assert load(f"folder:{path},size=8", progress=False).from_cache
