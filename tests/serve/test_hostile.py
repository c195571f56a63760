"""Hostile uploads: a full decode queue answers 503 with Retry-After, and every bad upload a 4xx JSON."""

import io
import threading
import time

import pytest
from PIL import Image

from tests.serve.conftest import encode


@pytest.fixture()
def tight(service):
    """An app with one decode slot and no queue, and its gate."""
    from fastapi.testclient import TestClient

    from infomax.serve.app import create_app

    app = create_app(service, max_decodes=1, max_waiting=0)
    with TestClient(app) as c:
        yield c, app.state.decode_gate


def _upload(client, data: bytes, ctype: str = "image/png", name: str = "x.png", **form):
    return client.post("/api/search", files={"file": (name, data, ctype)}, data=form)


def test_full_decode_queue_answers_503_with_retry_after(tight, stack):
    client, gate = tight
    png = encode(stack.data.splits["test"].images[0])
    assert gate.decoding.acquire(timeout=5)  # the test holds the one decode slot
    first = {}
    waiting = threading.Thread(target=lambda: first.update(reply=_upload(client, png, k="3")))
    try:
        waiting.start()
        deadline = time.monotonic() + 10
        while gate.inside < 1 and time.monotonic() < deadline:  # admitted, waiting for the slot
            time.sleep(0.01)
        assert gate.inside == 1
        busy = _upload(client, png)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert busy.json()["error"].startswith("busy: 1 uploads are being decoded and 0 more are waiting; try again")
        assert client.post("/api/search", json={"id": 2, "k": 3}).status_code == 200  # no decode: not gated
        assert waiting.is_alive()
    finally:
        gate.decoding.release()
        waiting.join(30)
    assert first["reply"].status_code == 200 and len(first["reply"].json()["results"]) == 3
    assert _upload(client, png).status_code == 200 and gate.inside == 0
    health = client.get("/healthz").json()
    assert health["uploads_refused_busy"] == 1 and health["uploads_in_progress"] == 0


def test_gate_counts_and_limits():
    from infomax.serve.limits import MAX_DECODES, WAITING_PER_DECODE, DecodeGate

    gate = DecodeGate(2)
    assert (gate.slots, gate.waiting) == (2, 16) and WAITING_PER_DECODE == 8
    assert [gate.enter() for _ in range(19)] == [True] * 18 + [False]
    gate.leave()
    assert gate.enter() and not gate.enter() and gate.refused == 2
    assert MAX_DECODES == 4
    with pytest.raises(ValueError):
        DecodeGate(0)


def test_cli_default_max_decodes_is_the_library_default():
    from infomax.cli import build_parser
    from infomax.serve.limits import MAX_DECODES

    args = build_parser().parse_args(["serve", "--index", "i"])
    assert args.max_decodes == MAX_DECODES


def _png(size, mode="RGB", color=0) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, "PNG")
    return out.getvalue()


def _eps() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "EPS")
    return out.getvalue()


HOSTILE = [  # (name, request, status, words in the error)
    ("40 MP PNG bomb", lambda c: _upload(c, _png((8000, 5000), "RGBA")), 400, "over the limit of 16.8 megapixels"),
    ("EPS", lambda c: _upload(c, _eps(), "image/x-eps", "x.eps"), 400, "PostScript (EPS) files are not accepted"),
    ("SVG", lambda c: _upload(c, b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"), 400, "not accepted"),
    ("no boundary", lambda c: c.post("/api/search", content=b"--x\r\n",
                                     headers={"content-type": "multipart/form-data"}), 400, "boundary"),
    ("garbage multipart", lambda c: c.post("/api/search", content=b"\x00\xff" * 500,
                                           headers={"content-type": "multipart/form-data; boundary=zz"}), 400, "multipart body cannot be read"),
    ("two files", lambda c: c.post("/api/search", files=[("file", ("a.png", _png((4, 4)), "image/png")),
                                                        ("file", ("b.png", _png((4, 4)), "image/png"))]), 400, "files"),
    ("huge k field", lambda c: _upload(c, _png((4, 4)), k="9" * 5000), 422, "k must be"),
    ("oversized chunked", lambda c: c.post("/api/search", content=iter([b"x" * 2**20] * 12),
                                           headers={"content-type": "multipart/form-data; boundary=b"}), 413, "10 MB"),
]


@pytest.mark.parametrize("name, send, status, words", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_uploads_get_a_4xx_with_a_json_message(client, name, send, status, words):
    reply = send(client)
    assert reply.status_code == status, f"{name}: {reply.status_code} {reply.text}"
    assert reply.headers["content-type"] == "application/json"
    assert words in reply.json()["error"], reply.json()


def test_a_stalled_upload_gets_408_and_frees_its_place(service, stack):
    """A client that sends half a body and waits must not hold an upload place for ever."""
    import json
    import socket

    import httpx
    import uvicorn

    from infomax.serve.app import create_app

    app = create_app(service, max_decodes=1, max_waiting=0, upload_read_s=0.5)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        thread.join(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    head = (b"POST /api/search HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: 100000\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; "
            b"filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n" + b"x" * 1000)  # 1 KB of the 100 KB declared
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as stalled:
            stalled.sendall(head)
            started = time.monotonic()
            reply = b""
            while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
                chunk = stalled.recv(4096)  # socket.timeout here: the upload was never answered
                if not chunk:
                    break
                reply += chunk
            waited = time.monotonic() - started
        status = int(reply.split(b" ", 2)[1])
        body = json.loads(reply.split(b"\r\n\r\n", 1)[1])
        assert status == 408 and 0.4 < waited < 5
        assert body["error"] == "the upload did not arrive within 0.5 s: send the whole request without pausing"
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(url + "/healthz").json()["uploads_in_progress"] == 0
        png = encode(stack.data.splits["test"].images[0])
        ok = httpx.post(url + "/api/search", files={"file": ("q.png", png, "image/png")}, timeout=30)
        assert ok.status_code == 200  # the one place is free again: not 503
    finally:
        server.should_exit = True
        thread.join(10)
