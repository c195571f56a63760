"""The service's limits: request size, enforced before a body is read (by its declared length,
then as it streams in), and how many uploads are read and decoded at once."""

from __future__ import annotations

import threading

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # 10 MB
MAX_DECODES = 4  # uploads decoded at once (each at most decode.MAX_PIXELS: about 130 MB at the worst)
WAITING_PER_DECODE = 8  # uploads that may wait for a decode, per decode slot (each holds its body, <= 10 MB)
RETRY_AFTER_S = 1  # the Retry-After of a 503
UPLOAD_READ_S = 30.0  # an admitted upload's body must arrive within this, or 408 (a stalled client frees its place)


class DecodeGate:
    """At most `slots` uploads decode at once and `waiting` more wait for a turn; past that, `enter`
    says no and the app answers 503 with Retry-After. Threading primitives: any thread (a test)
    can hold `decoding`.
    """

    def __init__(self, slots: int = MAX_DECODES, waiting: int | None = None):
        if slots < 1:
            raise ValueError(f"slots must be at least 1, got {slots}")
        self.slots = slots
        self.waiting = WAITING_PER_DECODE * slots if waiting is None else waiting
        self.decoding = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self.inside = 0  # uploads admitted: being read, waiting or decoding
        self.refused = 0  # uploads answered 503 so far

    def enter(self) -> bool:
        """Admit one upload (True), or count a refusal (False) when slots and queue are full."""
        with self._lock:
            if self.inside >= self.slots + self.waiting:
                self.refused += 1
                return False
            self.inside += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.inside -= 1

    def run(self, fn, *args):
        """fn(*args) in a decode slot, waiting for one (called in a worker thread)."""
        with self.decoding:
            return fn(*args)


def megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB" if n % (1024 * 1024) == 0 else f"{n / (1024 * 1024):.1f} MB"


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes gets 413 without being read in full.

    A declared Content-Length over the limit is refused at once; a body sent without one (chunked)
    is counted as it arrives and refused as soon as it passes the limit. `upload_limit` is the
    figure the error message names (the file limit; `limit` adds room for multipart framing).
    """

    def __init__(self, app, limit: int, upload_limit: int | None = None):
        self.app = app
        self.limit = limit
        self.message = f"the request is over {megabytes(upload_limit or limit)}: uploads are limited to {megabytes(upload_limit or limit)}"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await JSONResponse({"error": self.message}, status_code=413)(scope, receive, send)

        received = 0
        started = False

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise HTTPException(413, self.message)
            return message

        async def watched_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except HTTPException as exc:  # raised while the body was read outside a route
            if started or exc.status_code != 413:
                raise
            await JSONResponse({"error": self.message}, status_code=413)(scope, receive, send)
