"""A worker thread that runs queued jobs in batches: the one place the model and index are used.

Requests put jobs on a queue and wait on a future. The worker takes everything that is waiting
(up to `max_batch`) and hands it to `run_batch` in one call, so concurrent searches share one
model forward pass and one index scan. There is no timer: a lone request runs at once, and the
requests that arrive while a batch runs form the next batch. One thread touches the model and
the index, so requests share no mutable state.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Any, Callable, Sequence

_STOP = object()


class Batcher:
    """Run `run_batch(jobs) -> results` (one result per job, same order) on a worker thread."""

    def __init__(self, run_batch: Callable[[Sequence[Any]], Sequence[Any]], max_batch: int = 64,
                 name: str = "infomax-search", setup: Callable[[], Any] | None = None):
        """`setup` runs first on the worker thread (per-thread settings such as OpenMP threads)."""
        if max_batch < 1:
            raise ValueError(f"max_batch must be ≥ 1, got {max_batch}")
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.batches = 0  # batches run so far (read by /healthz and the load test)
        self.jobs = 0  # jobs run so far
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._setup = setup
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Any) -> Future:
        """Queue one job; the future resolves to its result or raises its error."""
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the search worker is stopped")
            self._queue.put((job, future))
        return future

    def __call__(self, job: Any, timeout: float | None = None) -> Any:
        """Queue one job and wait for its result (for callers without an event loop)."""
        return self.submit(job).result(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Finish the queued jobs, then stop the worker."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join(timeout)

    def _take(self) -> tuple[list, bool]:
        """Block for one item, then take whatever else is already waiting."""
        items, stop = [], False
        item = self._queue.get()
        while True:
            if item is _STOP:
                stop = True
            else:
                items.append(item)
            if len(items) >= self.max_batch:
                break
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
        return items, stop

    def _loop(self) -> None:
        if self._setup is not None:
            self._setup()
        stop = False
        while not stop:
            items, stop = self._take()
            items = [(job, fut) for job, fut in items if fut.set_running_or_notify_cancel()]
            if not items:
                continue
            try:
                results = self.run_batch([job for job, _ in items])
                if len(results) != len(items):
                    raise RuntimeError(f"run_batch returned {len(results)} results for {len(items)} jobs")
            except BaseException as exc:  # noqa: BLE001 - every waiting request must hear about it
                for _, fut in items:
                    fut.set_exception(exc)
                continue
            self.batches += 1
            self.jobs += len(items)
            for (_, fut), result in zip(items, results):
                if isinstance(result, BaseException):
                    fut.set_exception(result)
                else:
                    fut.set_result(result)
