"""Download the official releases: atomically (temp file + rename), with progress and an md5 check."""

from __future__ import annotations

import hashlib
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from infomax.atomic import atomic_write
from infomax.errors import InfomaxError

BLOCK = 1 << 20
TIMEOUT_S = 60


@dataclass(frozen=True)
class Remote:
    """One file of an official release."""

    url: str
    md5: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


_FASHION = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_MNIST = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # the mirror torchvision uses

# Official addresses and checksums; the IDX kinds are a set of four files kept in one folder.
RELEASES: dict[str, tuple[Remote, ...]] = {
    "cifar10": (Remote("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),),
    "cifar100": (
        Remote("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85"),
    ),
    "tiny-imagenet": (Remote("http://cs231n.stanford.edu/tiny-imagenet-200.zip", "90528d7ca1a48142e341f4ef8d21d0de"),),
    "fashion-mnist": (
        Remote(_FASHION + "train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        Remote(_FASHION + "train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        Remote(_FASHION + "t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        Remote(_FASHION + "t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    ),
    "mnist": (
        Remote(_MNIST + "train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        Remote(_MNIST + "train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        Remote(_MNIST + "t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        Remote(_MNIST + "t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    ),
}

# The opener used for every download (tests replace it).
urlopen = urllib.request.urlopen


def md5sum(path: str | Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(remote: Remote, folder: str | Path, *, progress: bool = True) -> Path:
    """Download `remote` into `folder` unless it is already there; return its path.

    The file appears under its final name only once complete and verified.
    """
    folder = Path(folder)
    target = folder / remote.filename
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)

    def download(partial: Path) -> None:  # into a temp file; atomic_write renames it once verified
        digest = hashlib.md5(usedforsecurity=False)
        with urlopen(remote.url, timeout=TIMEOUT_S) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            from tqdm import tqdm

            with tqdm(
                total=total,
                desc=f"downloading {remote.filename}",
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                file=sys.stderr,
                disable=not progress,
                leave=False,
            ) as bar:
                for block in iter(lambda: response.read(BLOCK), b""):
                    digest.update(block)
                    out.write(block)
                    bar.update(len(block))
        got = digest.hexdigest()
        if got != remote.md5:
            raise InfomaxError(
                f"the download of {remote.url} is damaged: md5 {got}, expected {remote.md5}; "
                f"run the command again, or download the file by hand and give its path"
            )

    try:
        atomic_write(target, download)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise InfomaxError(
            f"could not download {remote.url} ({reason}); check the network connection, "
            f"or download it by hand and give its path"
        ) from None
    return target
