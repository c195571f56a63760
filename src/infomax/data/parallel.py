"""Decode many images of one folder or zip in parallel: a process pool over chunks of names.

Each worker opens the tree itself (a zip is memory-mapped once per worker) and returns one
uint8 array per chunk, so per-image overhead stays inside a tight loop. Small jobs run in
this process. Images that do not decode are reported, not fatal.

The chunks come back in input order, with at most WINDOW_PER_WORKER chunks per worker in
flight, and go straight to a sink (e.g. the cache file being written): the whole array is
never held in memory unless the caller asks for it (no sink).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from infomax.data.decode import BadImage, decode_array
from infomax.data.sources import cached_tree
from infomax.device import usable_cores
from infomax.errors import InfomaxError

PARALLEL_MIN = 2048  # fewer images than this are decoded in this process
CHUNK_MIN, CHUNK_MAX = 64, 2048
CHUNK_BYTES = 16 << 20  # at most this many bytes of pixels per chunk (fewer images when they are large)
WINDOW_PER_WORKER = 2  # chunks submitted but not yet consumed, per worker


@dataclass
class Decoded:
    """The images that decoded, in input order, and why the others did not."""

    images: np.ndarray | None  # uint8 K×C×H×W; None when they went to a sink
    kept: np.ndarray  # int64 K: positions in the input names of the decoded images
    failed: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    shape: tuple[int, int, int] | None = None  # C×H×W of every image; None when none decoded

Sink = Callable[[np.ndarray, np.ndarray], None]  # (int64 K positions, uint8 K×C×H×W pixels), in order


def worker_count() -> int:
    """`$INFOMAX_WORKERS`, else the cores this process may run on."""
    env = os.environ.get("INFOMAX_WORKERS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return usable_cores()


def decode_names(
    tree_path: str,
    names: list[str],
    *,
    size: int | None,
    mode: str,
    resize: str,
    progress: bool = True,
    desc: str = "decoding",
    workers: int | None = None,
    sink: Sink | None = None,
) -> Decoded:
    """Decode `names` of the folder or zip at `tree_path`: into one array, or, given a sink,
    block by block into sink(positions, pixels), called in increasing order of position.

    With size=None every image must have the size of the first one that decodes; otherwise
    an InfomaxError asks for the size= option.
    """
    tree_path = str(tree_path)
    shape, failed, first = _probe(tree_path, names, size, mode, resize)
    if shape is None:
        return Decoded(
            np.empty((0, 1 if mode == "L" else 3, size or 0, size or 0), np.uint8),
            np.empty(0, np.int64),
            [(names[i], reason) for i, reason in failed],
        )
    todo = list(range(first, len(names)))
    workers = worker_count() if workers is None else max(1, workers)
    most = max(1, CHUNK_BYTES // math.prod(shape))
    chunk = max(1, min(most, max(CHUNK_MIN, min(CHUNK_MAX, math.ceil(len(todo) / (workers * 8))))))
    tasks = [
        (tree_path, [names[i] for i in todo[s : s + chunk]], todo[s], size, mode, resize, shape)
        for s in range(0, len(todo), chunk)
    ]

    parallel = workers > 1 and len(todo) >= PARALLEL_MIN
    context = _context() if parallel else None  # chosen before the progress bar starts its thread
    out = None
    if sink is None:
        out = np.empty((len(names), *shape), np.uint8)  # N×C×H×W, compacted below

        def sink(positions, pixels):
            out[positions] = pixels
    ok = np.zeros(len(names), bool)
    sizes: dict[tuple[int, int], str] = {shape[1:]: names[first]}  # H×W -> first file of that size
    from tqdm import tqdm

    with tqdm(
        total=len(names), initial=first, desc=desc, unit="img", file=sys.stderr, disable=not progress, leave=False
    ) as bar:
        for start, pixels, good, bad, odd in _run(tasks, workers if parallel else 1, context):
            if len(pixels):
                sink(start + np.flatnonzero(good), pixels)
            ok[start : start + len(good)] = good
            failed += [(start + i, reason) for i, reason in bad]
            for i, hw in odd:
                sizes.setdefault(hw, names[start + i])
            bar.update(len(good))
    if len(sizes) > 1:
        examples = ", ".join(f"{w}×{h} ({name})" for (h, w), name in list(sizes.items())[:4])
        raise InfomaxError(
            f"images in {tree_path} have different sizes: {examples}; "
            f"choose one output size with the size= option, e.g. ,size={max(shape[1:])}"
        )
    kept = np.flatnonzero(ok)
    images = None if out is None else (out if len(kept) == len(names) else out[kept])
    return Decoded(images, kept.astype(np.int64), [(names[i], reason) for i, reason in sorted(failed)], shape)


def _probe(tree_path, names, size, mode, resize):
    """Decode from the start until one image works: its C×H×W is the shape of every output."""
    failed: list[tuple[int, str]] = []  # (position, reason)
    for i, name in enumerate(names):
        result = _decode_one(cached_tree(tree_path), name, size, mode, resize)
        if isinstance(result, str):
            failed.append((i, result))
            continue
        return tuple(int(s) for s in result.shape), failed, i
    return None, failed, len(names)


def _decode_one(tree, name, size, mode, resize) -> np.ndarray | str:
    """C×H×W pixels, or the reason they could not be had."""
    try:
        return decode_array(tree.read(name), size, mode, resize)
    except BadImage as exc:
        return str(exc)
    except OSError as exc:
        return f"cannot read it ({exc.strerror or exc})"


def decode_chunk(task):
    """Worker: decode one chunk. Returns (start, K×C×H×W pixels, ok mask, failures, odd sizes)."""
    tree_path, names, start, size, mode, resize, shape = task
    tree = cached_tree(tree_path)
    pixels = np.empty((len(names), *shape), np.uint8)
    good = np.zeros(len(names), bool)
    bad: list[tuple[int, str]] = []
    odd: list[tuple[int, tuple[int, int]]] = []
    for i, name in enumerate(names):
        result = _decode_one(tree, name, size, mode, resize)
        if isinstance(result, str):
            bad.append((i, result))
        elif result.shape != shape:
            odd.append((i, tuple(result.shape[1:])))
        else:
            pixels[i] = result
            good[i] = True
    tree.release()  # the archive's pages this chunk read
    return start, pixels if good.all() else pixels[good], good, bad, odd


def _run(tasks, workers: int, context=None):
    """Yield chunk results in task order, from a process pool when workers > 1, with at most
    WINDOW_PER_WORKER chunks per worker submitted and not yet consumed."""
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield decode_chunk(task)
        return
    workers = min(workers, len(tasks))
    pool = ProcessPoolExecutor(workers, mp_context=context or _context(), initializer=_worker_init)
    try:
        waiting = iter(tasks)
        window = range(workers * WINDOW_PER_WORKER)  # zipped first: zip stops without taking a task too many
        futures = deque(pool.submit(decode_chunk, task) for _, task in zip(window, waiting))
        while futures:
            result = futures.popleft().result()
            for task in waiting:
                futures.append(pool.submit(decode_chunk, task))
                break
            yield result
    except BrokenProcessPool:
        raise InfomaxError(
            "a decoding worker stopped unexpectedly (out of memory?); "
            "try again with fewer workers, e.g. INFOMAX_WORKERS=1"
        ) from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _worker_init() -> None:
    """Workers leave Ctrl-C to the main process, which cancels the remaining chunks."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _context():
    """How worker processes start.

    On Linux, a process with a single Python thread forks: instant, and scripts need no
    `if __name__ == "__main__":` guard. Otherwise (threads running, or not Linux) workers come
    from a fork server (or are spawned), which is safe with threads.
    """
    methods = multiprocessing.get_all_start_methods()
    if sys.platform.startswith("linux") and "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["infomax.data.parallel"])
        return ctx
    return multiprocessing.get_context("spawn")
