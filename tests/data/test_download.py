"""Downloads: file:// URLs and a stand-in opener; md5 checked; nothing half-written is left behind."""

import hashlib
import io

import numpy as np
import pytest

from infomax.data import download, load, locate
from infomax.data.download import Remote, fetch
from infomax.errors import InfomaxError

from .canonical import write_cifar10, write_idx_set


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_fetch_file_url(tmp_path):
    source = tmp_path / "src" / "blob.bin"
    source.parent.mkdir()
    source.write_bytes(b"x" * 3_000_000)
    target = fetch(Remote(source.as_uri(), _md5(source.read_bytes())), tmp_path / "cache", progress=False)
    assert target == tmp_path / "cache" / "blob.bin" and target.read_bytes() == source.read_bytes()
    assert [p.name for p in target.parent.iterdir()] == ["blob.bin"]


def test_md5_mismatch_leaves_nothing(tmp_path):
    source = tmp_path / "blob.bin"
    source.write_bytes(b"payload")
    with pytest.raises(InfomaxError, match=f"is damaged: md5 {_md5(b'payload')}, expected 0+"):
        fetch(Remote(source.as_uri(), "0" * 32), tmp_path / "cache", progress=False)
    assert list((tmp_path / "cache").iterdir()) == []


def test_unreachable_url(tmp_path):
    with pytest.raises(InfomaxError, match="could not download .*missing.bin"):
        fetch(Remote((tmp_path / "missing.bin").as_uri(), "0" * 32), tmp_path / "cache", progress=False)


class _Response(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


def test_opener_is_used_once_and_file_kept(tmp_path, monkeypatch):
    calls = []

    def opener(url, timeout):
        calls.append(url)
        return _Response(b"abc" * 1000)

    monkeypatch.setattr(download, "urlopen", opener)
    remote = Remote("https://example.invalid/data/file.tar.gz", _md5(b"abc" * 1000))
    first = fetch(remote, tmp_path, progress=True)
    second = fetch(remote, tmp_path, progress=True)
    assert first == second and calls == [remote.url]


def test_interrupted_download_leaves_no_file(tmp_path, monkeypatch):
    class Broken(_Response):
        def read(self, n=-1):
            raise ConnectionResetError("connection reset")

    monkeypatch.setattr(download, "urlopen", lambda url, timeout: Broken(b"zzz"))
    with pytest.raises(InfomaxError, match="connection reset"):
        fetch(Remote("https://example.invalid/f.bin", "0" * 32), tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_cifar10_download_into_cache(tmp_path, infomax_home, monkeypatch):
    archive = tmp_path / "served" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    write_cifar10(archive)
    monkeypatch.setitem(download.RELEASES, "cifar10", (Remote(archive.as_uri(), _md5(archive.read_bytes())),))
    ds = load("cifar10", download=True, progress=False)
    assert (infomax_home / "downloads" / "cifar-10-python.tar.gz").is_file()
    assert len(ds.splits["train"]) == 20
    again = load("cifar10", progress=False)  # found in the cache, no download needed
    assert again.from_cache and np.array_equal(again.splits["test"].images, ds.splits["test"].images)


def test_cifar10_download_checksum_mismatch(tmp_path, infomax_home, monkeypatch):
    archive = tmp_path / "cifar-10-python.tar.gz"
    write_cifar10(archive)
    monkeypatch.setitem(download.RELEASES, "cifar10", (Remote(archive.as_uri(), "f" * 32),))
    with pytest.raises(InfomaxError, match="damaged: md5 .* expected f{32}"):
        load("cifar10", download=True, progress=False)
    assert not (infomax_home / "downloads" / "cifar-10-python.tar.gz").exists()


def test_fashion_mnist_download_and_system_folder(tmp_path, infomax_home, monkeypatch):
    served = tmp_path / "served"
    write_idx_set(served)
    remotes = tuple(
        Remote((served / name).as_uri(), _md5((served / name).read_bytes()))
        for name in sorted(p.name for p in served.iterdir())
    )
    monkeypatch.setitem(download.RELEASES, "fashion-mnist", remotes)
    monkeypatch.setitem(locate.SYSTEM_FOLDERS, "fashion-mnist", (tmp_path / "not-installed",))
    with pytest.raises(InfomaxError, match="no fashion-mnist data found .*not-installed.*--download"):
        load("fashion-mnist", progress=False)
    ds = load("fashion-mnist", download=True, progress=False)
    assert sorted(p.name for p in (infomax_home / "downloads" / "fashion-mnist").iterdir()) == sorted(
        p.name for p in served.iterdir()
    )
    assert ds.class_names[0] == "T-shirt/top" and len(ds.splits["test"]) == 3


def test_system_folder_is_used(tmp_path, monkeypatch):
    system = tmp_path / "usr-share-datasets-fashion-mnist"
    write_idx_set(system, n_train=4)
    monkeypatch.setitem(locate.SYSTEM_FOLDERS, "fashion-mnist", (system,))
    ds = load("fashion-mnist", progress=False)
    assert ds.path == str(system) and len(ds.splits["train"]) == 4
