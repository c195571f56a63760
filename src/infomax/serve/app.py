"""The web app: a JSON search API, the gallery images, a health check and the search page.

    POST /api/search        multipart `file` (+ optional `k`), or JSON {"id": ROW, "k": 10}
    GET  /api/images/{row}  a gallery image by row number: its source file at up to 256 px (JPEG),
                            or its decoded pixels enlarged (PNG) for data without source files
    GET  /api/info          gallery size, class names, limits (used by the page)
    GET  /healthz           liveness
    GET  /                  the search page (static HTML, CSS and JavaScript)

Every error is a 4xx with a JSON body {"error": "what is wrong"}; an upload that finds every
decode slot and its queue taken (limits.DecodeGate) gets 503 with Retry-After; one whose body
does not arrive within limits.UPLOAD_READ_S (30 s) gets 408 and frees its place.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from infomax.extras import require

require("fastapi", "serve", "the search web app")  # a clear message instead of an ImportError below

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from infomax import __version__
from infomax.data.decode import FORMAT_NAMES, MAX_PIXELS
from infomax.errors import InfomaxError
from infomax.serve.limits import (MAX_DECODES, MAX_UPLOAD_BYTES, RETRY_AFTER_S, UPLOAD_READ_S, BodyLimit, DecodeGate,
                                  megabytes)
from infomax.serve.schema import SEARCH_BODY, SEARCH_RESPONSES
from infomax.serve.service import DEFAULT_K, MAX_K, Query, SearchService

STATIC = Path(__file__).parent / "static"
IMAGE_TYPES = ("image/", "application/octet-stream")  # what an upload may be declared as


def create_app(service: SearchService, max_upload_bytes: int = MAX_UPLOAD_BYTES, max_decodes: int = MAX_DECODES,
               max_waiting: int | None = None, upload_read_s: float = UPLOAD_READ_S) -> FastAPI:
    """The app around a loaded service (the caller owns the service and closes it).

    max_decodes: uploads decoded at once; max_waiting: uploads queued for a decode beyond those
    (default 8 per decode); more at once get 503 with Retry-After. upload_read_s: seconds an
    admitted upload's body may take to arrive (then 408), so stalled clients cannot hold every place.
    """
    app = FastAPI(title="infomax image search", version=__version__,
                  description="Search a gallery of images by example, with features learned without labels.")
    app.state.service = service
    gate = app.state.decode_gate = DecodeGate(max_decodes, max_waiting)
    # the whole request may carry a little multipart framing besides the file itself
    app.add_middleware(BodyLimit, limit=max_upload_bytes + 64 * 1024, upload_limit=max_upload_bytes)
    add_error_handlers(app)
    class_names = service.gallery.class_names()
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/healthz", summary="liveness check")
    async def healthz() -> dict:
        return {"status": "ok", "gallery": service.size,
                "searches": service.batcher.jobs, "batches": service.batcher.batches,
                "uploads_in_progress": gate.inside, "uploads_refused_busy": gate.refused}

    @app.get("/api/info", summary="the gallery and the limits of the search API")
    async def info() -> dict:
        return {
            "gallery": service.size,
            "image_shape": list(service.gallery.image_shape),
            "pictures": "source" if service.gallery.pictures.from_sources else "pixels",
            "class_names": class_names,
            "default_k": DEFAULT_K,
            "max_k": MAX_K,
            "max_upload_bytes": max_upload_bytes,
            "max_pixels": MAX_PIXELS,
            "max_decodes": gate.slots,
        }

    @app.post("/api/search", summary="nearest gallery images to an uploaded image or a gallery row",
              openapi_extra=SEARCH_BODY, responses=SEARCH_RESPONSES)
    async def search(request: Request) -> JSONResponse:
        started = time.perf_counter()
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media == "application/json":
            query, echo = await _by_id(service, request)
        elif media == "multipart/form-data":
            if not gate.enter():  # refused before the body is read
                raise HTTPException(503, f"busy: {gate.slots} uploads are being decoded and {gate.waiting} more are "
                                         f"waiting; try again in {RETRY_AFTER_S} s",
                                    headers={"Retry-After": str(RETRY_AFTER_S)})
            try:
                query, echo = await _by_upload(service, request, max_upload_bytes, gate, upload_read_s)
            finally:
                gate.leave()
        else:
            raise HTTPException(415, f"content type {media or '(none)'} is not accepted: send multipart/form-data "
                                     'with an image in the field "file", or application/json {"id": ROW, "k": 10}')
        hits = await asyncio.wrap_future(service.submit(query))
        return JSONResponse({"query": echo, "k": query.k, "results": service.describe(hits),
                             "took_ms": round((time.perf_counter() - started) * 1000, 3)})

    @app.get("/api/images/{row}", summary="a gallery image (JPEG from its source file, else PNG) by row number",
             response_class=Response, responses={200: {"content": {"image/jpeg": {}, "image/png": {}}},
                                                 404: {"description": "no such row"}})
    async def image(row: int) -> Response:
        if not 0 <= row < len(service.gallery):
            raise HTTPException(404, f"no gallery image {row}: rows are 0 to {len(service.gallery) - 1}")
        picture = await run_in_threadpool(service.gallery.picture, row)  # may decode a source file
        return Response(picture.data, media_type=picture.media_type, headers={"Cache-Control": "public, max-age=86400"})

    return app


async def _by_id(service: SearchService, request: Request) -> tuple[Query, dict]:
    try:
        body = await request.json()
    except ValueError:
        raise HTTPException(400, 'the body is not valid JSON: send {"id": ROW, "k": 10}') from None
    if not isinstance(body, dict) or "id" not in body:
        raise HTTPException(422, 'the JSON body must be an object with an "id": send {"id": ROW, "k": 10}')
    key = body["id"]
    if isinstance(key, bool) or not isinstance(key, (int, str)):
        raise HTTPException(422, f'"id" must be a gallery row number or an image id, not {key!r}')
    k = _check_k(service, body.get("k", DEFAULT_K))
    try:
        row = service.row_of(key)
    except KeyError as exc:
        raise HTTPException(404, exc.args[0]) from None
    return Query(k=k, row=row), {"type": "row", **service.gallery.describe(row)}


async def _by_upload(service: SearchService, request: Request, limit: int, gate: DecodeGate,
                     read_s: float) -> tuple[Query, dict]:
    try:
        data, name, k = await asyncio.wait_for(_receive(service, request, limit), read_s)
    except asyncio.TimeoutError:
        raise HTTPException(408, f"the upload did not arrive within {read_s:g} s: send the whole request "
                                 "without pausing") from None
    if len(data) > limit:
        raise HTTPException(413, f"the upload is over {megabytes(limit)}: send a smaller image")
    try:
        pixels = await run_in_threadpool(gate.run, service.decode, data)
    except InfomaxError as exc:
        raise HTTPException(400, f"cannot use the upload {name!r}: {_reason(exc)}") from None
    return Query(k=k, image=pixels), {"type": "upload", "filename": name, "bytes": len(data)}


async def _receive(service: SearchService, request: Request, limit: int) -> tuple[bytes, str, int]:
    """The multipart body read: (the file's first limit + 1 bytes, its name, k)."""
    try:
        form = await request.form(max_files=1, max_fields=4)
    except StarletteHTTPException as exc:  # malformed multipart: starlette's 400 with a terse reason
        if exc.status_code != 400:
            raise
        raise HTTPException(400, f"the multipart body cannot be read ({exc.detail}): send multipart/form-data "
                                 'with one image in a file field named "file"') from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise HTTPException(422, 'the multipart form needs the image in a file field named "file"')
        declared = (upload.content_type or "").lower()
        if declared and not declared.startswith(IMAGE_TYPES):
            raise HTTPException(415, f"the upload is declared as {declared}, not an image: send a {FORMAT_NAMES} file")
        raw_k = form.get("k")
        k = _check_k(service, _as_int(raw_k) if raw_k not in (None, "") else DEFAULT_K)
        data = await upload.read(limit + 1)
        name = upload.filename or "upload"
    finally:
        await form.close()
    return data, name, k


def _as_int(value):
    try:
        return int(str(value).strip())
    except ValueError:
        return value


def _check_k(service: SearchService, k) -> int:
    try:
        return service.check_k(k)
    except InfomaxError as exc:
        raise HTTPException(422, str(exc)) from None


def _reason(exc: Exception) -> str:
    """The decoder names its input "image: ..."; the client knows which image it sent."""
    text = str(exc)
    return text[len("image: "):] if text.startswith("image: ") else text


def add_error_handlers(app: FastAPI) -> None:
    """Every error as {"error": message} with its status code."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": f"internal error ({type(exc).__name__}); the server logged it"}, status_code=500)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("path", "query", "body"))
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return JSONResponse({"error": "; ".join(parts) or "invalid request"}, status_code=422)
