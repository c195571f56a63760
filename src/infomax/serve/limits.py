"""Request size limit, enforced before a body is read: by its declared length, then as it streams in."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # 10 MB


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
