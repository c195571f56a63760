"""The search service and the grids show photos from their source files, not the training pixels."""

import numpy as np
import pytest
from PIL import Image

from tests.data.photos import FILES, decoded, reference, write_photos


@pytest.fixture
def photo_stack(tmp_path, monkeypatch):
    """A folder of 300×200 photos decoded at 32 px, pixel-mean embeddings of it and their index."""
    from infomax.data import load
    from infomax.embed.files import Embeddings, save_embeddings
    from infomax.embed.sources import split_metadata
    from infomax.index.store import build_gallery

    monkeypatch.setenv("INFOMAX_HOME", str(tmp_path / "home"))
    root = tmp_path / "photos"
    files = write_photos(root)
    spec = f"folder:{root},size=32"
    ds = load(spec, progress=False)
    train = ds.splits["train"]
    vectors = train.images.reshape(len(train), 3, 4, 8, 4, 8).mean(axis=(3, 5)).reshape(len(train), -1)
    emb = Embeddings((vectors / 255.0 - 0.5).astype(np.float32), split_metadata("train", train, ds.class_names),
                     {"data": spec, "checkpoint": None})
    save_embeddings(tmp_path / "emb", emb)
    index = build_gallery(tmp_path / "emb", tmp_path / "index", split="train")
    return tmp_path, files, ds, index, spec


def test_the_service_sends_each_row_from_its_source_file(photo_stack):
    from fastapi.testclient import TestClient

    from infomax.serve.app import create_app
    from infomax.serve.gallery import Gallery
    from infomax.serve.service import SearchService

    tmp_path, files, ds, index, spec = photo_stack
    gallery = Gallery.for_index(ds, index, spec, pictures_dir=tmp_path / "pictures")
    service = SearchService(None, index, gallery)  # pictures only: no search is made
    try:
        with TestClient(create_app(service)) as client:
            info = client.get("/api/info").json()
            assert info["pictures"] == "source" and info["class_names"] == ["dog", "domestic cat"]
            for row in range(len(gallery)):
                name = gallery.describe(row)["id"]
                reply = client.get(f"/api/images/{row}")
                assert reply.status_code == 200 and reply.headers["content-type"] == "image/jpeg"
                got = decoded(reply.content)
                want = reference(files[name], 256)
                assert got.shape == want.shape and max(got.shape[:2]) == 256
                assert (got.shape[1] > got.shape[0]) == (FILES[name][0] > FILES[name][1])
                assert np.abs(got - want).mean() < 4.5
            assert gallery.pictures.decodes == len(gallery)
            assert client.get("/api/images/0").content == client.get("/api/images/0").content
            assert gallery.pictures.decodes == len(gallery)  # answered from memory
            assert client.get(f"/api/images/{len(gallery)}").status_code == 404
            assert gallery.describe(0)["label_name"] == "domestic cat"
    finally:
        service.close()


def test_a_grid_tile_is_drawn_from_the_source_file(photo_stack):
    from infomax.data.pictures import Pictures
    from infomax.embed.files import load_embeddings
    from infomax.eval.grid import PICTURE_PIXELS, select_queries
    from infomax.eval.run import grid

    tmp_path, files, ds, _, spec = photo_stack
    out = grid(tmp_path / "emb", tmp_path / "grid.png", queries=2, k=2)
    image = np.asarray(Image.open(out).convert("RGB"))
    emb = load_embeddings(tmp_path / "emb")
    query = int(select_queries(emb.rows("train"), 2, seed=0)[0])
    name = emb.metadata["id"][query]
    tile = Pictures.for_dataset(ds).display(query, PICTURE_PIXELS)  # rows are the data's rows here
    assert max(tile.shape[:2]) == PICTURE_PIXELS
    h, w = tile.shape[:2]  # made from the 256 px picture: its short side may differ from the source's by 1 px
    assert abs(w / h - FILES[name][0] / FILES[name][1]) < 0.02
    assert np.abs(tile.astype(np.float64) - reference(files[name], PICTURE_PIXELS, (w, h))).mean() < 4.5
    ys, xs = np.nonzero((image == tile[0, 0]).all(axis=2))
    hits = [(y, x) for y, x in zip(ys, xs) if np.array_equal(image[y : y + h, x : x + w], tile)]
    assert hits, "the query's tile must be its source picture, drawn unchanged"
    training = Image.fromarray(ds.splits["train"].images[query].transpose(1, 2, 0)).resize((w, h))
    assert np.abs(np.asarray(training, dtype=np.float64) - tile).mean() > 10  # not the 32 px pixels

