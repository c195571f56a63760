"""A long-running search keeps its resident memory bounded: mapped index pages leave its RSS.

An ivfpq index is read through memory mappings (faiss's inverted lists in index.faiss, rows.npy,
metadata.arrow, id_order.npy). Each page a search touches stays counted in the process's RSS
until the mapping is closed, so over thousands of queries the whole index ends up there (72 bytes
a vector: 0.72 GB at 10 million). Those pages are file cache that the system can reclaim, but an
RSS that grows with the gallery is what memory limits and monitors see.

`PageBudget` reads the process's RssFile every `every` searches; above `budget` bytes it calls
madvise(MADV_DONTNEED) on every mapping of a file in the index folder. The pages stay in the
system's file cache; a later search maps back the ones it reads (a minor fault, no disk read).
Linux only: elsewhere it does nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

BUDGET = 2**29  # bytes of mapped file pages a search process keeps before releasing them (512 MiB)
EVERY = 16  # searches between two checks (a check reads /proc/self/status: ~20 µs, a search ~5 ms)
MADV_DONTNEED = 4


class PageBudget:
    def __init__(self, folder: str | Path, budget: int = BUDGET, every: int = EVERY):
        self.prefix = str(Path(folder).resolve()) + "/"
        self.budget, self.every, self.count = budget, max(1, int(every)), 0
        self.enabled = sys.platform.startswith("linux")

    def tick(self) -> None:
        """One search done: every `every`-th, release the index's pages if the budget is exceeded."""
        self.count += 1
        if self.enabled and self.count % self.every == 0 and rss_file() > self.budget:
            self.release()

    def release(self) -> None:
        import ctypes

        madvise = ctypes.CDLL(None, use_errno=True).madvise
        madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        for start, end in mappings(self.prefix):
            madvise(start, end - start, MADV_DONTNEED)


def rss_file() -> int:
    """Bytes of file-backed pages in this process's resident memory."""
    with open("/proc/self/status") as f:
        line = next((line for line in f if line.startswith("RssFile:")), "RssFile: 0 kB")
    return int(line.split()[1]) * 1024


def mappings(prefix: str) -> list[tuple[int, int]]:
    """(start, end) addresses of this process's mappings of files whose path starts with prefix."""
    found = []
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split(None, 5)
            if len(fields) == 6 and fields[5].rstrip("\n").startswith(prefix):
                start, end = (int(a, 16) for a in fields[0].split("-"))
                found.append((start, end))
    return found
