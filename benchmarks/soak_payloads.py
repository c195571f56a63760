"""The requests of the serve soak (benchmarks/soak_serve.py): good and hostile, built once in memory.

Each variant is (kind, name, weight, expected statuses, how to send it). A multipart upload may
also get 503 (every decode slot and the queue taken); a search by row never.
"""

from __future__ import annotations

import io
import json
import os
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image

KINDS = ("id", "upload", "malformed", "bomb", "oversized", "aborted")
WEIGHTS = {"id": 40, "upload": 25, "malformed": 18, "bomb": 8, "oversized": 7, "aborted": 2}  # share, in %


@dataclass(frozen=True)
class Variant:
    kind: str
    name: str
    expect: frozenset  # HTTP statuses that are right for it
    body: object  # bytes, or a callable -> fresh body per request (aiohttp.FormData is single use)
    headers: dict | None = None
    chunked: bool = False  # sent without a length, in 1 MB chunks
    raw: bool = False  # bytes written on a socket that is then closed, no answer awaited
    k: int | None = 10  # 200: the number of results expected


def photo(width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """A smooth, noisy colour picture with a few shapes: compresses like a photo, not like a flat fill."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(0, 255, 3)
    slope = rng.uniform(-0.2, 0.2, (3, 2)) * 640 / max(width, height)
    img = np.stack([base[c] + slope[c, 0] * x + slope[c, 1] * y for c in range(3)], axis=-1)
    for _ in range(6):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.05, 0.3) * min(width, height)
        img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] += rng.uniform(-90, 90, 3)
    img += rng.normal(0, 8, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def encoded(image: Image.Image, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **kw)
    return out.getvalue()


def form(data: bytes, name: str, ctype: str, k: int | None = None):
    """A fresh multipart body for each request."""
    def build():
        import aiohttp

        f = aiohttp.FormData()
        f.add_field("file", data, filename=name, content_type=ctype)
        if k is not None:
            f.add_field("k", str(k))
        return f
    return build


def variants(gallery: int, ids: list[str], gallery_pngs: list[bytes], max_upload: int, seed: int = 0) -> list[Variant]:
    """Every request the soak sends: the server's gallery size and upload limit, some gallery ids and images."""
    rng = np.random.default_rng(seed)
    pick = random.Random(seed)
    pictures = [photo(640, 480, rng), photo(1600, 1200, rng), photo(320, 240, rng)]
    jpegs = [encoded(p, "JPEG", quality=85) for p in pictures]
    pngs = [encoded(pictures[2], "PNG"), *gallery_pngs[:4]]
    up = frozenset({200, 503})
    out: list[Variant] = []
    for row in pick.sample(range(gallery), 8):
        out.append(Variant("id", "by row", frozenset({200}), json.dumps({"id": row, "k": 10}).encode(),
                           {"content-type": "application/json"}))
    for key in ids[:8]:
        out.append(Variant("id", "by image id", frozenset({200}), json.dumps({"id": key, "k": 5}).encode(),
                           {"content-type": "application/json"}, k=5))
    for i, data in enumerate(jpegs):
        out.append(Variant("upload", f"JPEG {pictures[i].width}x{pictures[i].height}", up,
                           form(data, "photo.jpg", "image/jpeg", 10)))
    for i, data in enumerate(pngs):
        out.append(Variant("upload", "PNG", up, form(data, f"p{i}.png", "image/png", 10)))
    bad = frozenset({400, 503})
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n" + os.urandom(200)
    pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    malformed = [
        ("random bytes", bad, form(rng.bytes(4096), "x.png", "image/png"), None),
        ("truncated PNG", bad, form(pngs[0][: len(pngs[0]) // 2], "t.png", "image/png"), None),
        ("truncated JPEG", bad, form(jpegs[0][: len(jpegs[0]) // 3], "t.jpg", "image/jpeg"), None),
        ("PNG header only", bad, form(pngs[0][:40], "h.png", "image/png"), None),
        ("EPS", bad, form(eps, "x.eps", "image/x-eps"), None),
        ("PDF", bad, form(pdf, "x.pdf", "application/octet-stream"), None),
        ("declared text/plain", frozenset({415, 503}), form(jpegs[2], "x.txt", "text/plain"), None),
        ("image as raw body", frozenset({415}), jpegs[2], {"content-type": "image/jpeg"}),
        ("garbage multipart", bad, b"\x00\xff" * 512, {"content-type": "multipart/form-data; boundary=zz"}),
        ("no file field", frozenset({422, 503}), _fields({"k": "3"}), None),
        ("k out of range", frozenset({422, 503}), form(jpegs[2], "p.jpg", "image/jpeg", 1000), None),
        ("invalid JSON", frozenset({400}), b"{not json", {"content-type": "application/json"}),
        ("unknown row", frozenset({404}), json.dumps({"id": gallery + 7}).encode(), {"content-type": "application/json"}),
    ]
    out += [Variant("malformed", n, e, b, h, k=None) for n, e, b, h in malformed]
    for mode, colour in (("1", 1), ("RGB", (200, 30, 30))):  # 40 MP of one colour: 5 KB (1 bit), 120 KB (RGB)
        bomb = encoded(Image.new(mode, (8000, 5000), colour), "PNG")
        out.append(Variant("bomb", f"8000x5000 {mode} PNG, {len(bomb) // 1024} KB", bad,
                           form(bomb, "bomb.png", "image/png"), k=None))
    big = rng.bytes(max_upload + 1)  # just over the upload limit: read, then refused
    over = rng.bytes(max_upload + 256 * 1024)  # over the request limit: refused from its declared length
    out += [
        Variant("oversized", "limit + 1 byte", frozenset({413, 503}), form(big, "big.jpg", "image/jpeg"), k=None),
        Variant("oversized", "declared length", frozenset({413}), form(over, "over.jpg", "image/jpeg"), k=None),
        Variant("oversized", "chunked", frozenset({413, 503}), _multipart(over, "b"),
                {"content-type": "multipart/form-data; boundary=b"}, chunked=True, k=None),
    ]
    head = (b"POST /api/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 200000\r\n\r\n")
    out.append(Variant("aborted", "1 KB of 200 KB, then closed", frozenset(), head + _multipart(rng.bytes(1000), "b")[:1000],
                       raw=True, k=None))
    return out


def _multipart(data: bytes, boundary: str) -> bytes:
    """A well-formed multipart body with `data` as the file (sent chunked: no length declared)."""
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode()


def _fields(fields: dict):
    def build():
        import aiohttp

        f = aiohttp.FormData(default_to_multipart=True)
        for key, value in fields.items():
            f.add_field(key, value)
        return f
    return build


def chooser(all_variants: list[Variant], seed: int):
    """A function that picks the next request: a kind by WEIGHTS, then one of its variants."""
    rng = random.Random(seed)
    by_kind = {k: [v for v in all_variants if v.kind == k] for k in KINDS}
    kinds = [k for k in KINDS if by_kind[k]]
    weights = [WEIGHTS[k] for k in kinds]
    return lambda: rng.choice(by_kind[rng.choices(kinds, weights)[0]])
