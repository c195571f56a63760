"""File trees: the files of a folder or of a zip archive, named by relative POSIX paths.

Readers list names, then read bytes by name; decoding workers reopen the same tree by path
(`open_tree`, cached per process). Zip members are read straight from a memory map of the
archive (no ZipExtFile per member), with the CRC checked.

Limits: a file or zip member over MAX_FILE_BYTES (128 MB, decode.py) is not read; a zip member
over RATIO_FREE_BYTES (1 MB) whose size is more than MAX_RATIO times its compressed size is not
decompressed (a zip bomb), and no member is ever decompressed past its declared size. Such files,
broken links and files that are not regular files raise OSError with the reason; the readers list
them, with it, in skipped.txt.
"""

from __future__ import annotations

import errno
import hashlib
import mmap
import os
import re
import struct
import zipfile
import zlib
from pathlib import Path

from infomax.data.decode import MAX_FILE_BYTES, read_file
from infomax.data.store import release_mapping
from infomax.errors import InfomaxError

MAX_RATIO = 100  # uncompressed ÷ compressed size of a zip member (image files rarely pass 10)
RATIO_FREE_BYTES = 1024 * 1024  # members up to this size are read whatever their ratio

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zip local file header, 30 bytes
_LOCAL_MAGIC = b"PK\x03\x04"


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def is_hidden(name: str) -> bool:
    """Dot files and folders, and the __MACOSX folder macOS adds to zips."""
    return any(part.startswith(".") or part == "__MACOSX" for part in name.split("/"))


def natural_key(name: str) -> tuple[str, str]:
    """Sort key putting img2 before img10 (and ok.png before ok2.png): digit runs are zero-padded."""
    return re.sub(r"\d+", lambda m: m.group().rjust(20, "0"), name), name


class FolderTree:
    """The files under a folder."""

    def __init__(self, root: Path):
        self.path = Path(root)
        self._stats: dict[str, tuple[int, int]] | None = None

    def names(self) -> list[str]:
        return sorted(self._listing(), key=natural_key)

    def read(self, name: str) -> bytes:
        """A file's bytes; OSError with the reason for a broken link, a pipe or a file over the limit."""
        path = self.path / name
        try:
            return read_file(path)
        except FileNotFoundError as exc:
            if path.is_symlink():
                raise OSError(_broken_reason(path, exc)) from None
            raise
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise OSError(_broken_reason(path, exc)) from None
            raise

    def release(self) -> None:
        """Nothing to release: files are read, not mapped."""

    def identity(self, name: str) -> str:
        """What changes when the file changes: its absolute path, size and modification time."""
        st = os.stat(self.path / name)
        return f"file\0{os.path.abspath(self.path / name)}\0{st.st_size}\0{st.st_mtime_ns}"

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for name, (size, mtime) in sorted(self._listing().items()):
            digest.update(f"{name}\0{size}\0{mtime}\n".encode("utf-8", "surrogateescape"))
        return digest.hexdigest()

    def _listing(self) -> dict[str, tuple[int, int]]:
        if self._stats is None:
            stats: dict[str, tuple[int, int]] = {}
            for folder, dirs, files in os.walk(self.path):
                dirs[:] = [d for d in dirs if not is_hidden(d)]
                rel = Path(folder).relative_to(self.path).as_posix()
                for file in files:
                    if is_hidden(file):
                        continue
                    name = file if rel == "." else f"{rel}/{file}"
                    path = os.path.join(folder, file)
                    try:
                        st = os.stat(path)
                    except OSError:  # a broken link: listed, and skipped with the reason when read
                        try:
                            st = os.lstat(path)
                        except OSError:
                            continue  # gone since the listing
                    stats[name] = (st.st_size, st.st_mtime_ns)
            self._stats = stats
        return self._stats


def _broken_reason(path: Path, exc: OSError) -> str:
    target = os.readlink(path) if path.is_symlink() else "?"
    if exc.errno == errno.ELOOP:
        return f"a symbolic link in a loop (to {target}); fix or remove the link"
    return f"a broken symbolic link (to {target}, which does not exist); fix or remove the link"


class ZipTree:
    """The members of a zip archive."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self._zip = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise InfomaxError(
                f"{self.path} is not a readable zip archive ({exc}); check the file or re-download it"
            ) from None
        self._infos = {
            info.filename: info for info in self._zip.infolist() if not info.is_dir() and not is_hidden(info.filename)
        }
        self._pid = os.getpid()  # a forked worker keeps the memory map but opens its own ZipFile
        self._file = open(self.path, "rb")
        size = os.fstat(self._file.fileno()).st_size
        self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ) if size else None

    def names(self) -> list[str]:
        return sorted(self._infos, key=natural_key)

    def read(self, name: str) -> bytes:
        """A member's bytes; raises OSError with a reason when the member is damaged or too large."""
        info = self._infos[name]
        check_member(info)
        if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            try:  # encrypted or unusual compression: the slow path, read no further than declared
                with self._own_zip().open(info) as member:
                    data = member.read(info.file_size + 1)
            except (RuntimeError, NotImplementedError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise OSError(f"cannot read archive member: {exc}") from None
            if len(data) != info.file_size:
                raise OSError(f"damaged archive member {name} ({len(data):,} bytes, {info.file_size:,} declared)")
            return data
        start = info.header_offset
        end = start + _LOCAL_HEADER.size
        if self._map is None or end > len(self._map):
            raise OSError("archive member lies past the end of the file")
        header = _LOCAL_HEADER.unpack(self._map[start:end])
        if header[0] != _LOCAL_MAGIC:
            raise OSError("damaged archive member (bad local header)")
        data_start = end + header[-2] + header[-1]  # + file name length + extra field length
        raw = self._map[data_start : data_start + info.compress_size]
        if len(raw) != info.compress_size:
            raise OSError("truncated archive member")
        if info.compress_type == zipfile.ZIP_DEFLATED:
            try:  # never more than the declared size, whatever the stream holds
                raw = zlib.decompressobj(-15).decompress(raw, info.file_size + 1)
            except zlib.error as exc:
                raise OSError(f"damaged archive member ({exc})") from None
        if len(raw) != info.file_size:
            raise OSError(f"damaged archive member {name} ({len(raw):,} bytes or more, {info.file_size:,} declared)")
        if zlib.crc32(raw) != info.CRC:
            raise OSError("damaged archive member (CRC mismatch)")
        return raw

    def identity(self, name: str) -> str:
        """What changes when the member changes: the archive's path, the member's name, size and CRC."""
        info = self._infos[name]
        return f"zip\0{os.path.abspath(self.path)}\0{name}\0{info.file_size}\0{info.CRC:08x}"

    def _own_zip(self) -> zipfile.ZipFile:
        """The ZipFile for this process (a file offset shared with a parent would race)."""
        if self._pid != os.getpid():
            self._zip, self._pid = zipfile.ZipFile(self.path), os.getpid()
        return self._zip

    def fingerprint(self) -> str:
        st = self.path.stat()
        return f"{st.st_size}-{st.st_mtime_ns}"

    def release(self) -> None:
        """Unmap the archive's pages read so far (they stay in the page cache): a worker that
        reads the whole archive keeps a resident memory independent of its size."""
        release_mapping(self._map)

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
        self._file.close()
        self._zip.close()

    def __del__(self) -> None:
        try:
            self.close()
        except (AttributeError, BufferError, OSError):
            pass  # partly built, or already closed


def check_member(info: zipfile.ZipInfo) -> None:
    """OSError naming the member when its declared size or compression ratio is over the limits."""
    size, packed = info.file_size, max(info.compress_size, 1)
    if size > MAX_FILE_BYTES:
        raise OSError(f"archive member {info.filename} is {size:,} bytes uncompressed, over the limit of "
                      f"{MAX_FILE_BYTES // (1024 * 1024)} MB for one image file")
    if size > RATIO_FREE_BYTES and size > MAX_RATIO * packed:
        raise OSError(f"archive member {info.filename} expands {size / packed:,.0f}:1 ({packed:,} to {size:,} "
                      f"bytes), over the limit of {MAX_RATIO}:1 (a zip bomb?); store it as PNG or JPEG, or leave it out")


def open_tree(path: str | Path) -> FolderTree | ZipTree:
    """A FolderTree for a folder, a ZipTree for a zip file; a clear error otherwise."""
    path = Path(path)
    if path.is_dir():
        return FolderTree(path)
    if not path.exists():
        raise InfomaxError(f"{path} does not exist; give the path of a folder or a .zip file")
    if zipfile.is_zipfile(path):
        return ZipTree(path)
    raise InfomaxError(f"{path} is neither a folder nor a zip archive; give a folder of images or a .zip of them")


_OPEN_ZIPS: dict[str, tuple[tuple[int, ...], ZipTree]] = {}
_OPEN_MAX = 4


def cached_tree(path: str | Path) -> FolderTree | ZipTree:
    """open_tree, with zips kept open per process while the file is unchanged.

    Decoding workers read many chunks from one archive; folders are cheap to reopen.
    """
    key = str(path)
    try:
        st = os.stat(key)
    except OSError:
        return open_tree(key)  # raises the clear error
    if os.path.isdir(key):
        return FolderTree(Path(key))
    stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
    hit = _OPEN_ZIPS.get(key)
    if hit and hit[0] == stamp:
        return hit[1]
    tree = open_tree(key)
    if isinstance(tree, ZipTree):
        _OPEN_ZIPS.pop(key, None)  # dropped trees close once no reader holds them
        while len(_OPEN_ZIPS) >= _OPEN_MAX:
            _OPEN_ZIPS.pop(next(iter(_OPEN_ZIPS)))
        _OPEN_ZIPS[key] = (stamp, tree)
    return tree
