"""Downloads: file:// URLs and a stand-in opener; md5 checked; nothing half-written is left behind."""

import hashlib
import io

import numpy as np
import pytest

from infomax.data import download, load, locate
from infomax.data.download import Remote, fetch
from infomax.errors import InfomaxError

from .canonical import write_cifar10, write_cifar100, write_idx_set


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


# --- a path given: the release goes exactly there (torchvision's convention), from a local server ---


def _mirror(tmp_path, monkeypatch, write, *, sums: bool = True):
    """Write a release into a served folder; point INFOMAX_MIRROR (and INFOMAX_CHECKSUMS) at it."""
    served = tmp_path / "served"
    served.mkdir()
    write(served)
    if sums:
        listing = tmp_path / "SHA256SUMS"
        listing.write_text("".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n"
                                   for p in sorted(served.iterdir())))
        monkeypatch.setenv("INFOMAX_CHECKSUMS", str(listing))
    return served


def test_cifar10_download_to_the_given_path(tmp_path, infomax_home, monkeypatch):
    from tests.local_http import serve_folder

    served = _mirror(tmp_path, monkeypatch, lambda d: write_cifar10(d / "cifar-10-python.tar.gz", per_batch=3))
    target = tmp_path / "data" / "sub" / "cifar-10-python.tar.gz"  # the folder does not exist yet
    requests: list[str] = []
    with serve_folder(served, requests) as url:
        monkeypatch.setenv("INFOMAX_MIRROR", url + "/mirror/")
        with pytest.raises(InfomaxError, match=rf"{target} does not exist: add --download .*{url}/mirror/cifar-10"):
            load(f"cifar10:{target}", progress=False)
        (served / "mirror").mkdir()
        (served / "cifar-10-python.tar.gz").rename(served / "mirror" / "cifar-10-python.tar.gz")
        ds = load(f"cifar10:{target}", download=True, progress=False)
        again = load(f"cifar10:{target}", download=True, progress=False)  # there now: not fetched again
    assert requests == ["/mirror/cifar-10-python.tar.gz"]
    assert target.read_bytes() == (served / "mirror" / "cifar-10-python.tar.gz").read_bytes()
    assert sorted(p.name for p in target.parent.iterdir()) == ["cifar-10-python.tar.gz"]
    assert not (infomax_home / "downloads").exists()
    assert len(ds.splits["train"]) == 15 and len(ds.splits["test"]) == 3 and again.from_cache


def test_mirror_alone_keeps_the_official_checksum(tmp_path, infomax_home, monkeypatch):
    from tests.local_http import serve_folder

    served = _mirror(tmp_path, monkeypatch, lambda d: write_cifar10(d / "cifar-10-python.tar.gz"), sums=False)
    target = tmp_path / "c10.tar.gz"
    with serve_folder(served) as url:
        monkeypatch.setenv("INFOMAX_MIRROR", url)
        with pytest.raises(InfomaxError, match="damaged: md5 [0-9a-f]{32}, expected c58f30108f718f92721af3b95e74349a"):
            load(f"cifar10:{target}", download=True, progress=False)
    assert list(tmp_path.glob("*.tar.gz")) == []  # no partial file left


def test_fashion_mnist_download_into_the_given_folder(tmp_path, infomax_home, monkeypatch):
    from tests.local_http import serve_folder

    served = _mirror(tmp_path, monkeypatch, lambda d: write_idx_set(d, n_train=4, n_test=2))
    folder = tmp_path / "fm"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte").write_bytes((served / "train-images-idx3-ubyte.gz").read_bytes())
    with serve_folder(served) as url:
        monkeypatch.setenv("INFOMAX_MIRROR", url)
        with pytest.raises(InfomaxError, match=r"lacks train-labels-idx1-ubyte.gz, t10k-images.*--download"):
            load(f"fashion-mnist:{folder}", progress=False)
        ds = load(f"fashion-mnist:{folder}", download=True, progress=False)
    assert sorted(p.name for p in folder.iterdir()) == [  # the file already there is kept, raw name and all
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "train-images-idx3-ubyte", "train-labels-idx1-ubyte.gz"]
    assert len(ds.splits["train"]) == 4 and ds.class_names[9] == "Ankle boot"


def test_a_folder_path_gets_the_archive_inside(tmp_path, infomax_home, monkeypatch):
    from tests.local_http import serve_folder

    served = _mirror(tmp_path, monkeypatch, lambda d: write_cifar100(d / "cifar-100-python.tar.gz"), sums=False)
    listing = tmp_path / "MD5SUMS"
    listing.write_text(f"{_md5((served / 'cifar-100-python.tar.gz').read_bytes())} *cifar-100-python.tar.gz\n")
    monkeypatch.setenv("INFOMAX_CHECKSUMS", str(listing))
    empty = tmp_path / "c100"
    empty.mkdir()
    with pytest.raises(InfomaxError, match=f"{empty} is empty: add --download .* to {empty}/cifar-100-python.tar.gz"):
        load(f"cifar100:{empty}", progress=False)
    with serve_folder(served) as url:
        monkeypatch.setenv("INFOMAX_MIRROR", url)
        ds = load(f"cifar100:{empty}", download=True, progress=False)
    assert [p.name for p in empty.iterdir()] == ["cifar-100-python.tar.gz"] and len(ds.splits["train"]) == 6
    assert load(f"cifar100:{empty}", progress=False).from_cache  # the archive in the folder is found


def test_bad_checksum_list(tmp_path, monkeypatch):
    listing = tmp_path / "sums"
    listing.write_text("abc  cifar-10-python.tar.gz\n")
    monkeypatch.setenv("INFOMAX_CHECKSUMS", str(listing))
    with pytest.raises(InfomaxError, match="line 1 is not 'HEX  NAME'"):
        download.effective(download.RELEASES["cifar10"][0])
