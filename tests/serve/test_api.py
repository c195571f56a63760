"""The JSON API: searches by upload and by row, gallery images, and every kind of bad input."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from tests.serve.conftest import encode


def test_health_and_schema(client, service):
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["gallery"] == service.size and health["batches"] <= health["searches"]
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/api/search"]["post"]["requestBody"]["content"]
    assert set(body) == {"multipart/form-data", "application/json"}
    assert "/api/images/{row}" in schema["paths"]
    info = client.get("/api/info").json()
    assert info["gallery"] == service.size and info["class_names"] == [str(i) for i in range(10)]
    assert info["image_shape"] == [1, 16, 16] and info["max_k"] == 100 and info["gallery"] == 1437


def test_upload_finds_the_image_itself_first(client, stack):
    pixels = stack.data.splits["train"].images[7]  # gallery row 7
    reply = client.post("/api/search", files={"file": ("seven.png", encode(pixels), "image/png")}, data={"k": "5"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["k"] == 5 and len(body["results"]) == 5
    assert body["query"] == {"type": "upload", "filename": "seven.png", "bytes": len(encode(pixels))}
    first = body["results"][0]
    assert first["row"] == 7 and first["id"] == stack.data.splits["train"].ids[7]
    assert first["score"] == pytest.approx(1.0, abs=1e-4)
    assert first["label"] == int(stack.data.splits["train"].labels[7])
    assert first["label_name"] == str(stack.data.splits["train"].labels[7]) and first["image_url"] == "/api/images/7"
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)


def test_upload_default_k_and_jpeg(client, stack):
    pixels = stack.data.splits["train"].images[3]
    reply = client.post("/api/search", files={"file": ("a.jpg", encode(pixels, "JPEG", quality=95), "image/jpeg")})
    assert reply.status_code == 200 and len(reply.json()["results"]) == 10


def _infomax_search(stack, tmp_path, *args) -> list[dict]:
    """The neighbours `infomax search` prints (as JSON) for one query."""
    from infomax.cli import main

    out = tmp_path / "search.json"
    assert main(["search", *args, "--index", str(stack.index), "--json", str(out)]) == 0
    return json.loads(out.read_text())["results"][0]["neighbours"]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_upload_equals_infomax_search(client, stack, tmp_path, fmt):
    """The API answers what `infomax search` answers for the same file."""
    query = tmp_path / f"query.{fmt.lower()}"
    query.write_bytes(encode(stack.data.splits["test"].images[11], fmt))  # a test image: not in the gallery
    with open(query, "rb") as f:
        reply = client.post("/api/search", files={"file": (query.name, f, f"image/{fmt.lower()}")}, data={"k": "8"}).json()
    expected = _infomax_search(stack, tmp_path, str(query), "--checkpoint", str(stack.run), "--k", "8")
    assert [(r["row"], r["id"], r["label_name"]) for r in reply["results"]] == \
           [(n["row"], n["id"], n["label_name"]) for n in expected]
    np.testing.assert_allclose([r["score"] for r in reply["results"]], [n["score"] for n in expected], atol=2e-6)


def test_search_by_row_equals_infomax_search_by_row(client, stack, tmp_path):
    reply = client.post("/api/search", json={"id": 5, "k": 4})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["query"]["type"] == "row" and body["query"]["row"] == 5 and body["query"]["image_url"] == "/api/images/5"
    rows = [r["row"] for r in body["results"]]
    assert len(rows) == 4 and 5 not in rows  # the query itself is left out
    expected = _infomax_search(stack, tmp_path, "--row", "5", "--k", "4")
    assert rows == [n["row"] for n in expected]
    np.testing.assert_allclose([r["score"] for r in body["results"]], [n["score"] for n in expected], atol=2e-6)
    by_id = client.post("/api/search", json={"id": stack.data.splits["train"].ids[5], "k": 4}).json()
    assert [r["row"] for r in by_id["results"]] == rows
    assert len(client.post("/api/search", json={"id": 0}).json()["results"]) == 10


def test_gallery_image_is_the_data_set_image(client, stack):
    reply = client.get("/api/images/3")
    assert reply.status_code == 200 and reply.headers["content-type"] == "image/png"
    pixels = np.asarray(Image.open(io.BytesIO(reply.content)))  # digits have no source files: their pixels,
    gray = stack.data.splits["train"].images[3][0]  # 16×16, enlarged 16 times by repetition
    np.testing.assert_array_equal(pixels, np.repeat(gray.repeat(16, 0).repeat(16, 1)[:, :, None], 3, axis=2))
    assert client.get("/api/info").json()["pictures"] == "pixels"


@pytest.mark.parametrize("path,status", [
    ("/api/images/-1", 404), ("/api/images/100000", 404), ("/api/images/abc", 422),
    ("/api/images/..%2F..%2Fetc%2Fpasswd", 404), ("/api/images/%2Fetc%2Fpasswd", 404),
])
def test_gallery_images_only_by_row(client, path, status):
    reply = client.get(path)
    assert reply.status_code == status and "error" in reply.json()


def _upload(client, data: bytes, ctype: str = "image/png", name: str = "x.png", **form):
    return client.post("/api/search", files={"file": (name, data, ctype)}, data=form)


def _bomb() -> bytes:
    """A small PNG that decodes to 52 megapixels."""
    out = io.BytesIO()
    Image.new("1", (8000, 6500)).save(out, format="PNG")
    return out.getvalue()


def _bad_requests(stack):
    png = encode(stack.data.splits["test"].images[0])
    return [
        ("not an image", lambda c: _upload(c, b"hello, this is text" * 10), 400, "not an image"),
        ("truncated", lambda c: _upload(c, png[: len(png) // 2]), 400, "truncated"),
        ("empty", lambda c: _upload(c, b""), 400, "empty"),
        ("over 10 MB", lambda c: _upload(c, png + b"\0" * (10 * 1024 * 1024)), 413, "10 MB"),
        ("bomb", lambda c: _upload(c, _bomb()), 400, "megapixels"),
        ("wrong request type", lambda c: c.post("/api/search", content=png, headers={"content-type": "image/png"}), 415, "multipart"),
        ("no content type", lambda c: c.post("/api/search", content=b"id=3"), 415, "multipart"),
        ("upload declared as text", lambda c: _upload(c, png, "text/plain", "x.txt"), 415, "text/plain"),
        ("no file field", lambda c: c.post("/api/search", files={"image": ("x.png", png, "image/png")}), 422, '"file"'),
        ("k = 0 (upload)", lambda c: _upload(c, png, k="0"), 422, "k must be"),
        ("k = 101 (upload)", lambda c: _upload(c, png, k="101"), 422, "k must be"),
        ("k not a number", lambda c: _upload(c, png, k="ten"), 422, "k must be"),
        ("k = 101 (json)", lambda c: c.post("/api/search", json={"id": 1, "k": 101}), 422, "k must be"),
        ("k = 2.5 (json)", lambda c: c.post("/api/search", json={"id": 1, "k": 2.5}), 422, "k must be"),
        ("unknown row", lambda c: c.post("/api/search", json={"id": 10**6}), 404, "no gallery row"),
        ("negative row", lambda c: c.post("/api/search", json={"id": -1}), 404, "no gallery row"),
        ("unknown id", lambda c: c.post("/api/search", json={"id": "nope.png"}), 404, "unknown id"),
        ("id outside the gallery", lambda c: c.post("/api/search", json={"id": stack.data.splits["test"].ids[0]}), 404, "unknown id"),
        ("id of a wrong type", lambda c: c.post("/api/search", json={"id": [1]}), 422, '"id" must be'),
        ("no id", lambda c: c.post("/api/search", json={"k": 3}), 422, '"id"'),
        ("broken JSON", lambda c: c.post("/api/search", content=b"{id: 3", headers={"content-type": "application/json"}), 400, "not valid JSON"),
    ]


def test_every_bad_input_gets_a_clear_4xx_and_the_server_keeps_answering(client, stack):
    for name, send, status, words in _bad_requests(stack):
        reply = send(client)
        assert reply.status_code == status, f"{name}: {reply.status_code} {reply.text}"
        error = reply.json()["error"]
        assert words in error, f"{name}: {error!r} does not mention {words!r}"
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.post("/api/search", json={"id": 2, "k": 3}).status_code == 200


def test_oversized_body_is_refused_before_it_is_read(client):
    declared = client.post("/api/search", content=b"x" * 100,
                           headers={"content-type": "multipart/form-data; boundary=b", "content-length": str(50 * 1024 * 1024)})
    assert declared.status_code == 413 and "10 MB" in declared.json()["error"]

    def chunks():  # no Content-Length: the body is counted as it streams in
        for _ in range(12):
            yield b"x" * (1024 * 1024)

    streamed = client.post("/api/search", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"})
    assert streamed.status_code == 413 and "10 MB" in streamed.json()["error"]
