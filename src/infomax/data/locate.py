"""Where a data set's files are: the given path, a known location, or a fresh download."""

from __future__ import annotations

from pathlib import Path

from infomax.data.download import RELEASES, fetch
from infomax.data.spec import KINDS, DataSpec
from infomax.errors import InfomaxError

# Folders where system packages put data sets (Debian: dataset-fashion-mnist).
SYSTEM_FOLDERS = {
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),
    "mnist": (Path("/usr/share/datasets/mnist"),),
}
FOLDER_KINDS = ("fashion-mnist", "mnist")  # releases made of several files, kept in one folder


def locate(spec: DataSpec, *, root: Path, download: bool, progress: bool) -> Path | None:
    """The path to read for `spec` (None for kinds that read no files)."""
    kind = KINDS[spec.kind]
    if kind.path == "none":
        return None
    if spec.path:
        path = Path(spec.path).expanduser()
        if not path.exists():
            hint = (
                f"; or leave out the path and add --download to fetch it into {root / 'downloads'}"
                if spec.kind in RELEASES
                else ""
            )
            raise InfomaxError(f"{path} does not exist: check the path in '{spec.text}'{hint}")
        return path
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
    return _missing(spec.kind, looked, remotes[0].url)


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
