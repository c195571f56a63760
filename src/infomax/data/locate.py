"""Where a data set's files are: the given path, a known location, or a fresh download.

With a path, the path is where the release goes (torchvision's convention): `cifar10:PATH
--download` fetches the archive to exactly PATH when PATH is missing (PATH ending in the
archive's suffix), or into the folder PATH otherwise. Without a path, the cache's downloads
folder (and, for Fashion-MNIST, the folder Debian's package uses).
"""

from __future__ import annotations

from pathlib import Path

from infomax.data.download import RELEASES, effective, fetch, fetch_to
from infomax.data.spec import KINDS, DataSpec
from infomax.errors import InfomaxError

# Folders where system packages put data sets (Debian: dataset-fashion-mnist).
SYSTEM_FOLDERS = {
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),
    "mnist": (Path("/usr/share/datasets/mnist"),),
}
FOLDER_KINDS = ("fashion-mnist", "mnist")  # releases made of several files, kept in one folder
# Names at the top of a folder that holds an extracted single-archive release (or part of one:
# the reader then says what is missing).
EXTRACTED = {
    "cifar10": ("cifar-10-batches-py", "batches.meta", "data_batch_1", "test_batch"),
    "cifar100": ("cifar-100-python", "meta", "train", "test"),
    "tiny-imagenet": ("tiny-imagenet-200", "wnids.txt", "train", "val"),
}
ARCHIVE_SUFFIXES = (".gz", ".tgz", ".tar", ".zip")


def locate(spec: DataSpec, *, root: Path, download: bool, progress: bool) -> Path | None:
    """The path to read for `spec` (None for kinds that read no files)."""
    kind = KINDS[spec.kind]
    if kind.path == "none":
        return None
    if spec.path:
        path = Path(spec.path).expanduser()
        if spec.kind not in RELEASES:
            if not path.exists():
                raise InfomaxError(f"{path} does not exist: check the path in '{spec.text}'")
            return path
        return _at_path(spec, path, download=download, progress=progress)
    downloads = root / "downloads"
    candidates = _candidates(spec.kind, downloads)
    for candidate in candidates:
        if _present(spec.kind, candidate):
            return candidate
    remotes = RELEASES[spec.kind]
    if download:
        folder = downloads / spec.kind if spec.kind in FOLDER_KINDS else downloads
        paths = [fetch(remote, folder, progress=progress) for remote in remotes]
        return folder if spec.kind in FOLDER_KINDS else paths[0]
    looked = ", ".join(str(c) for c in candidates)
    return _missing(spec.kind, looked, effective(remotes[0]).url)


def _at_path(spec: DataSpec, path: Path, *, download: bool, progress: bool) -> Path:
    """A release at a given path: there already, or downloaded there with `download`."""
    remotes = RELEASES[spec.kind]
    if spec.kind in FOLDER_KINDS:  # PATH is the folder of the four IDX files
        if path.is_file():
            raise InfomaxError(f"{path} is a file; {spec.kind}:PATH names the folder of its IDX files")
        missing = [r for r in remotes if not _idx_present(path, r.filename)]
        if not missing:
            return path
        if download:
            for remote in missing:
                fetch_to(remote, path / remote.filename, progress=progress)
            return path
        names = ", ".join(r.filename for r in missing)
        return _how_to_get(spec, f"{path} lacks {names}", path, [effective(r).url for r in missing])
    remote = remotes[0]
    if path.is_file():
        return path
    if path.is_dir():
        inside = path / remote.filename
        if any((path / name).exists() for name in EXTRACTED[spec.kind]):
            return path  # the extracted release
        if inside.is_file() or download:
            return fetch_to(remote, inside, progress=progress)
        if not any(path.iterdir()):
            return _how_to_get(spec, f"{path} is empty", inside, [effective(remote).url])
        return path  # something else: the reader says what it expected
    target = path if path.name.lower().endswith(ARCHIVE_SUFFIXES) else path / remote.filename
    if download:
        return fetch_to(remote, target, progress=progress)
    return _how_to_get(spec, f"{path} does not exist", target, [effective(remote).url])


def _idx_present(folder: Path, filename: str) -> bool:
    """The IDX file, gzip'd or raw, in `folder`."""
    from infomax.data.readers.idx import find_file

    try:
        find_file(folder, filename.removesuffix(".gz"))
    except (InfomaxError, OSError):  # OSError: no such folder
        return False
    return True


def _how_to_get(spec: DataSpec, problem: str, target: Path, urls: list[str]):
    raise InfomaxError(
        f"{problem}: add --download (download=True in Python) to fetch the {spec.kind} release to {target}, "
        f"e.g. infomax data info {spec.text} --download; or download {' '.join(urls)} by hand to that place"
    )


def _candidates(kind: str, downloads: Path) -> list[Path]:
    if kind in FOLDER_KINDS:
        return [downloads / kind, *SYSTEM_FOLDERS.get(kind, ())]
    return [downloads / remote.filename for remote in RELEASES[kind]]


def _present(kind: str, path: Path) -> bool:
    if kind in FOLDER_KINDS:
        return path.is_dir() and any(path.glob("train-images*"))
    return path.is_file()


def _missing(kind: str, looked: str, url: str):
    raise InfomaxError(
        f"no {kind} data found (looked in {looked}); add --download to fetch it from {url}, "
        f"or give its path: {kind}:PATH"
    )
