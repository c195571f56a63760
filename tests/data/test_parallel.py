"""The process pool gives the same result as decoding in this process, failures included."""

import numpy as np
import pytest

from infomax.data import parallel
from infomax.data.parallel import decode_names, worker_count
from infomax.errors import InfomaxError

from .canonical import bad_files, image_bytes, write_tree


@pytest.fixture
def mixed_zip(tmp_path):
    files = {f"img{i:03d}.png": image_bytes((i, 255 - i, 7), (10, 10)) for i in range(60)}
    files["img025.png"] = bad_files()["truncated.jpg"]
    files["img040.png"] = b""
    write_tree(tmp_path / "m.zip", files, as_zip=True)
    return tmp_path / "m.zip", sorted(files)


def test_pool_matches_single_process(mixed_zip, monkeypatch):
    path, names = mixed_zip
    monkeypatch.setattr(parallel, "PARALLEL_MIN", 8)
    monkeypatch.setattr(parallel, "CHUNK_MIN", 5)
    alone = decode_names(str(path), names, size=None, mode="RGB", resize="shorter-crop", progress=False, workers=1)
    pooled = decode_names(str(path), names, size=None, mode="RGB", resize="shorter-crop", progress=True, workers=2)
    assert np.array_equal(alone.images, pooled.images) and np.array_equal(alone.kept, pooled.kept)
    assert [n for n, _ in pooled.failed] == ["img025.png", "img040.png"] == [n for n, _ in alone.failed]
    assert pooled.images.shape == (58, 3, 10, 10)
    assert pooled.images[30, :, 0, 0].tolist() == [31, 224, 7]  # row 30 is img031: img025 was dropped


def test_pool_reports_mixed_sizes(tmp_path, monkeypatch):
    files = {f"a{i:02d}.png": image_bytes((0, 0, 0), (8, 8)) for i in range(20)}
    files["a15.png"] = image_bytes((0, 0, 0), (9, 8))
    write_tree(tmp_path, files, as_zip=False)
    monkeypatch.setattr(parallel, "PARALLEL_MIN", 4)
    monkeypatch.setattr(parallel, "CHUNK_MIN", 3)
    with pytest.raises(InfomaxError, match=r"different sizes: 8×8 \(a00.png\), 9×8 \(a15.png\)"):
        decode_names(
            str(tmp_path), sorted(files), size=None, mode="RGB", resize="shorter-crop", progress=False, workers=2
        )
    out = decode_names(str(tmp_path), sorted(files), size=6, mode="L", resize="shorter-crop", progress=False, workers=2)
    assert out.images.shape == (20, 1, 6, 6)


def test_nothing_decodes_gives_an_empty_result(tmp_path):
    write_tree(tmp_path, bad_files(), as_zip=False)
    out = decode_names(str(tmp_path), sorted(bad_files()), size=None, mode="RGB", resize="shorter-crop", progress=False)
    assert len(out.kept) == 0 and len(out.failed) == 5


def test_worker_count(monkeypatch):
    monkeypatch.setenv("INFOMAX_WORKERS", "3")
    assert worker_count() == 3
    monkeypatch.setenv("INFOMAX_WORKERS", "lots")
    assert worker_count() >= 1


def test_pool_with_threads_running_uses_a_fork_server(mixed_zip, monkeypatch):
    import threading

    path, names = mixed_zip
    monkeypatch.setattr(parallel, "PARALLEL_MIN", 8)
    monkeypatch.setattr(parallel, "CHUNK_MIN", 20)
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert parallel._context().get_start_method() in ("forkserver", "spawn")
        out = decode_names(str(path), names, size=4, mode="L", resize="resize", progress=False, workers=2)
    finally:
        stop.set()
        thread.join()
    assert out.images.shape == (58, 1, 4, 4)
