"""A real tiny search stack for the service tests: digits at 16×16, a 3-step checkpoint, its index.

The index holds the train split (1,437 images), as `infomax index` does by default: gallery row p
is train image p.
"""

import io
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

SPEC = "digits,size=16"


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """Run folder, embeddings, index and the decoded data, built once per test session."""
    from infomax.data import load
    from infomax.embed.embedder import Embedder
    from infomax.embed.files import save_embeddings
    from infomax.embed.run import embed_dataset
    from infomax.index.store import build_gallery
    from infomax.config import resolve
    from infomax.train.loop import train

    root = tmp_path_factory.mktemp("serve")
    cache = root / "cache"
    data = load(SPEC, cache_dir=str(cache), progress=False)
    cfg = resolve("digits", {}, {"preset": "seed", "batch_size": 32, "max_steps": 3, "device": "cpu", "z_dim": 16})
    train(cfg, root / "run", data, progress=False)
    embedder = Embedder.from_checkpoint(root / "run", device="cpu")
    emb = embed_dataset(embedder, data, spec=SPEC, checkpoint=str(root / "run"))
    save_embeddings(root / "emb", emb)
    build_gallery(root / "emb", root / "index", split="train")
    return SimpleNamespace(root=root, cache=cache, run=root / "run", emb=root / "emb", index=root / "index",
                           data=data, embedder=embedder, spec=SPEC)


@pytest.fixture(scope="session")
def service(stack):
    from infomax.index.store import GalleryIndex
    from infomax.serve.gallery import Gallery
    from infomax.serve.service import SearchService

    index = GalleryIndex.load(stack.index)
    svc = SearchService(stack.embedder, index, Gallery.for_index(stack.data, index, stack.spec))
    yield svc
    svc.close()


@pytest.fixture(scope="session")
def client(service):
    from fastapi.testclient import TestClient

    from infomax.serve.app import create_app

    with TestClient(create_app(service)) as c:
        yield c


def encode(pixels: np.ndarray, fmt: str = "PNG", **kw) -> bytes:
    """uint8 C×H×W -> image file bytes."""
    image = Image.fromarray(pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0))
    out = io.BytesIO()
    image.save(out, format=fmt, **kw)
    return out.getvalue()


@pytest.fixture(scope="session")
def live_url(service):
    """The app served by a real uvicorn on 127.0.0.1, on a free port, in a thread."""
    import threading

    import uvicorn

    from infomax.serve.app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(service), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        thread.join(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
