"""Download the official releases: atomically (temp file + rename), with progress and a checksum.

Two environment variables serve places without the official hosts (an offline mirror, a test):
`INFOMAX_MIRROR=URL` fetches every release file from URL/<file name> instead (still checked
against the official checksum), and `INFOMAX_CHECKSUMS=FILE` names a local file in the format of
`md5sum` or `sha256sum` (`HEX  NAME` per line) whose entries replace the expected checksum of the
files they name. Neither is read from the network: the checksum a download must match is always
one this machine holds.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

from infomax.atomic import atomic_write
from infomax.errors import InfomaxError

BLOCK = 1 << 20
TIMEOUT_S = 60
ALGORITHMS = {32: "md5", 64: "sha256"}  # hex length -> hashlib name


@dataclass(frozen=True)
class Remote:
    """One file of an official release: its address and its md5 (32 hex) or sha256 (64 hex)."""

    url: str
    checksum: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def algorithm(self) -> str:
        return ALGORITHMS.get(len(self.checksum), "md5")


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


def effective(remote: Remote) -> Remote:
    """`remote` with INFOMAX_MIRROR and INFOMAX_CHECKSUMS applied (see the module docstring)."""
    mirror = os.environ.get("INFOMAX_MIRROR", "").strip()
    if mirror:
        remote = replace(remote, url=mirror.rstrip("/") + "/" + remote.filename)
    listing = os.environ.get("INFOMAX_CHECKSUMS", "").strip()
    if listing:
        sums = read_checksums(Path(listing).expanduser())
        if remote.filename in sums:
            remote = replace(remote, checksum=sums[remote.filename])
    return remote


def read_checksums(path: Path) -> dict[str, str]:
    """{file name: hex digest} from `md5sum` / `sha256sum` output."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise InfomaxError(f"INFOMAX_CHECKSUMS={path} cannot be read ({exc.strerror}); fix the path or unset it") from None
    sums = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        digest = parts[0].lower()
        if len(parts) != 2 or len(digest) not in ALGORITHMS or any(c not in "0123456789abcdef" for c in digest):
            raise InfomaxError(
                f"INFOMAX_CHECKSUMS={path} line {number} is not 'HEX  NAME' with an md5 or sha256 digest: {line!r}"
            )
        sums[parts[1].strip().lstrip("*").rsplit("/", 1)[-1]] = digest
    return sums


def fetch(remote: Remote, folder: str | Path, *, progress: bool = True) -> Path:
    """Download `remote` into `folder` unless it is already there; return its path."""
    return fetch_to(remote, Path(folder) / remote.filename, progress=progress)


def fetch_to(remote: Remote, target: str | Path, *, progress: bool = True) -> Path:
    """Download `remote` to exactly `target` (creating its folder) unless it exists; return it.

    The file appears under its final name only once complete and verified.
    """
    target = Path(target)
    if target.is_file():
        return target
    remote = effective(remote)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InfomaxError(f"cannot create {target.parent} for the download ({exc.strerror}); give another path") from None

    def download(partial: Path) -> None:  # into a temp file; atomic_write renames it once verified
        digest = hashlib.new(remote.algorithm, usedforsecurity=False)
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
        if got != remote.checksum:
            raise InfomaxError(
                f"the download of {remote.url} is damaged: {remote.algorithm} {got}, expected {remote.checksum}; "
                f"run the command again, or download the file by hand and give its path"
            )

    try:
        atomic_write(target, download)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise InfomaxError(
            f"could not download {remote.url} ({reason}); check the network connection, "
            f"or download it by hand to {target}"
        ) from None
    return target
