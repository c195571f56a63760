"""The search service over an on-disk ivfpq index of millions of vectors: its resident memory and
its latency over HTTP.

Needs the gallery and index that `bench_index_disk.py --keep` leaves in WORKDIR (emb/, index/).
A child process runs the service (the app of `infomax serve` under uvicorn, on 127.0.0.1) with
the encoder of --checkpoint for uploads. The grown gallery has no images of its own: row r is a
noisy copy of real image r mod G (G seeds, the train split of the checkpoint's data), so that is
its picture. The parent sends --queries searches one at a time (row queries, and every
--upload-every-th an uploaded PNG of a test image), and reads the child's /proc/PID/status
after each thousand: the RSS must stay flat, not grow with the queries or the gallery.

    .venv/bin/python benchmarks/bench_serve_disk.py --workdir /work/bench-data/disk10m --checkpoint RUN
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_index import machine  # noqa: E402
from bench_index_disk import rss  # noqa: E402


class SeedRows:
    """Gallery row -> data row: r mod G, without an array of n entries."""

    def __init__(self, n: int, seeds: int):
        self.n, self.seeds = n, seeds

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, row):
        return np.asarray(row) % self.seeds


def serve(args) -> None:
    """The child: the service over WORKDIR/index until it is killed."""
    import uvicorn

    from infomax.data import load
    from infomax.data.pictures import Pictures
    from infomax.embed.embedder import Embedder
    from infomax.index.sharded import open_index
    from infomax.serve.app import create_app
    from infomax.serve.gallery import Gallery
    from infomax.serve.service import SearchService, default_threads

    index = open_index(Path(args.workdir) / "index")
    embedder = Embedder.from_checkpoint(args.checkpoint)
    data = load(embedder.config["data"]["spec"], progress=False)
    pictures = Pictures.for_dataset(data, cache_dir=None)
    seeds = len(data.split(data.train_split))
    gallery = Gallery(pictures.parts, SeedRows(len(index), seeds), index.metadata, pictures)
    service = SearchService(embedder, index, gallery, threads=default_threads())
    uvicorn.run(create_app(service), host="127.0.0.1", port=args.port, log_level="warning")


def post(url: str, body: bytes, content_type: str) -> dict:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    with urllib.request.urlopen(request, timeout=60) as reply:
        return json.loads(reply.read())


def upload_body(image: np.ndarray) -> tuple[bytes, str]:
    """A multipart/form-data body with one PNG (uint8 C×H×W) in the field "file"."""
    from PIL import Image

    png = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0).squeeze())).save(png, format="PNG")
    boundary = "benchboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"q.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + png.getvalue() + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", default="/work/bench-data/disk10m", help="folder kept by bench_index_disk.py --keep")
    p.add_argument("--checkpoint", required=True, help="the run whose encoder embeds uploads (its μ size = the index's)")
    p.add_argument("--queries", type=int, default=5000, help="searches to send")
    p.add_argument("--upload-every", type=int, default=10, help="every N-th search is an upload (0: none)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        serve(args)
        return 0
    from infomax.data import load
    from infomax.embed.embedder import Embedder

    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {machine()}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    child = subprocess.Popen([sys.executable, __file__, "--child", "--port", str(port), "--workdir", args.workdir,
                              "--checkpoint", args.checkpoint])
    base = f"http://127.0.0.1:{port}"
    try:
        start = time.perf_counter()
        while True:
            if child.poll() is not None:
                raise SystemExit(f"the service exited ({child.returncode}) before it was ready")
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=5) as reply:
                    size = json.loads(reply.read())["gallery"]
                break
            except OSError:
                time.sleep(1)
        print(f"service ready in {time.perf_counter() - start:.1f} s: {size:,} gallery rows; RSS {rss(child.pid)} GiB")
        data = load(Embedder.from_checkpoint(args.checkpoint).config["data"]["spec"], progress=False)
        tests = data.split(data.heldout_split).images
        rng = np.random.default_rng(0)
        walls, took = {"row": [], "upload": []}, {"row": [], "upload": []}  # client's wall; the service's own
        for i in range(1, args.queries + 1):
            upload = args.upload_every and i % args.upload_every == 0
            if upload:
                body, kind = upload_body(np.asarray(tests[rng.integers(len(tests))]))
            else:
                body, kind = json.dumps({"id": int(rng.integers(size)), "k": args.k}).encode(), "application/json"
            t = time.perf_counter()
            answer = post(base + "/api/search", body, kind)
            walls["upload" if upload else "row"].append(time.perf_counter() - t)
            took["upload" if upload else "row"].append(answer["took_ms"])
            assert len(answer["results"]) == args.k, answer
            if i % 1000 == 0:
                print(f"after {i:,} searches: RSS {rss(child.pid)} GiB", flush=True)
        for kind, w in walls.items():
            if w:
                ms = 1e3 * np.asarray(w)
                own = np.asarray(took[kind])
                print(f"{kind} searches over HTTP: {len(w):,}, p50 {np.median(ms):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms "
                      f"(a new connection each, urllib); inside the service (took_ms): p50 {np.median(own):.2f} ms, "
                      f"p99 {np.percentile(own, 99):.2f} ms")
        final = rss(child.pid)
        print(f"service RSS at the end: {final['VmRSS']} GiB ({final['VmRSS'] * 2**30 / 1e9:.2f} GB; anonymous "
              f"{final['RssAnon']}, mapped files {final['RssFile']}); peak {final['VmHWM']} GiB")
    finally:
        child.terminate()
        child.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
