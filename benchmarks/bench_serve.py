"""Load test of `infomax serve`: concurrent clients on loopback, searching by gallery row and by upload.

    python benchmarks/bench_serve.py --index IDX --checkpoint RUN [--data SPEC]
    python benchmarks/bench_serve.py            # first builds a quick CIFAR-10 checkpoint and index in --work

The server runs in its own process (`python -m infomax serve`, one uvicorn worker, on 127.0.0.1);
this process is the load generator: `--clients` asyncio tasks sharing one httpx.AsyncClient, each
sending its next request as soon as the last one is answered, for `--duration` seconds or
`--max-requests` requests per phase. Every request goes to 127.0.0.1 only. It reports requests/s,
p50/p90/p99 latency, errors, the CPU time each process used, and checks the targets.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

# the shared data folder beside the repository (see ../shared/data/README.md)
CIFAR = f"folder:{Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'cifar10-jpg.zip'}"
TARGETS = {"id": (300.0, 100.0), "upload": (100.0, 300.0)}  # requests/s at least, p99 ms at most


def infomax(*args: str) -> None:
    cmd = [sys.executable, "-m", "infomax", *args]
    print("$ infomax " + " ".join(args), flush=True)
    subprocess.run(cmd, check=True)


def prepare(args) -> tuple[str, str | None, str | None]:
    """The index, checkpoint and data spec to serve: given, or built once in --work."""
    if args.index:
        return args.index, args.checkpoint, args.data
    if args.work:
        work = Path(args.work)
    else:
        from infomax.data import cache_home

        work = cache_home() / "bench-serve"
    run, emb, index = work / "run", work / "embeddings", work / "index"
    data = args.data or CIFAR
    if not (run / "checkpoints" / "latest.json").is_file():
        infomax("train", "--data", data, "--out", str(run), "--max-steps", str(args.train_steps), "--no-progress")
    if not (emb / "embeddings.npy").is_file():  # an older single-file folder is used as it is
        infomax("embed", "--checkpoint", str(run), "--data", data, "--out", str(emb), "--no-progress")
    if not index.is_dir():
        infomax("index", "--embeddings", str(emb), "--out", str(index))
    return str(index), str(run), data


def start_server(index: str, checkpoint: str | None, data: str | None, threads: int | None = None,
                 timeout: float = 900, extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen, str]:
    """`infomax serve` on 127.0.0.1 and a free port (`extra`: more of its options); returns once it prints its address."""
    cmd = [sys.executable, "-m", "infomax", "serve", "--index", index, "--host", "127.0.0.1", "--port", "0",
           "--device", "cpu"] + (["--checkpoint", checkpoint] if checkpoint else []) + (["--data", data] if data else [])
    cmd += (["--threads", str(threads)] if threads else []) + list(extra)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    deadline, url = time.monotonic() + timeout, None
    for line in proc.stdout:
        print("  server: " + line.rstrip(), flush=True)
        found = re.search(r"open (http://127\.0\.0\.1:\d+/)", line)
        if found:
            url = found.group(1).rstrip("/")
            break
        if time.monotonic() > deadline:
            break
    if url is None:
        proc.kill()
        sys.exit(f"the server did not start (exit code {proc.poll()})")
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # keep its pipe drained
    return proc, url


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def jpeg_queries(url: str, rows: list[int]) -> list[bytes]:
    """Gallery images re-encoded as JPEG, to upload as queries."""
    import httpx
    from PIL import Image

    out = []
    with httpx.Client(base_url=url) as http:
        for row in rows:
            picture = Image.open(io.BytesIO(http.get(f"/api/images/{row}").content)).convert("RGB")
            buf = io.BytesIO()
            picture.save(buf, format="JPEG", quality=90)
            out.append(buf.getvalue())
    return out


def http_library(name: str) -> str:
    """aiohttp when installed (it costs the load generator less CPU per request), else httpx."""
    if name != "auto":
        return name
    try:
        import aiohttp  # noqa: F401

        return "aiohttp"
    except ImportError:
        return "httpx"


@contextlib.asynccontextmanager
async def sender(url: str, clients: int, library: str):
    """An async `send(json=..., upload=..., k=...) -> (status, body)` on a pool of `clients` connections."""
    if library == "aiohttp":
        import aiohttp

        connector = aiohttp.TCPConnector(limit=clients)
        async with aiohttp.ClientSession(url, connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as http:
            async def send(json=None, upload=None, k=10):
                if upload is None:
                    request = http.post("/api/search", json=json)
                else:
                    form = aiohttp.FormData()
                    form.add_field("file", upload, filename="q.jpg", content_type="image/jpeg")
                    form.add_field("k", str(k))
                    request = http.post("/api/search", data=form)
                async with request as reply:
                    return reply.status, await reply.json()

            yield send
    else:
        import httpx

        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:
            async def send(json=None, upload=None, k=10):
                if upload is None:
                    reply = await http.post("/api/search", json=json)
                else:
                    reply = await http.post("/api/search", files={"file": ("q.jpg", upload, "image/jpeg")},
                                            data={"k": str(k)})
                return reply.status_code, reply.json()

            yield send


async def phase(url: str, mode: str, clients: int, duration: float, max_requests: int, gallery: int,
                uploads: list[bytes], k: int, library: str = "auto") -> dict:
    """`clients` tasks in a closed loop for `duration` s or `max_requests` requests in all."""
    library = http_library(library)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    sent = 0
    rng = random.Random(0)
    expected = min(k, gallery - (mode == "id"))

    async def one(send) -> None:
        started = time.perf_counter()
        try:
            if mode == "id":
                status, body = await send(json={"id": rng.randrange(gallery), "k": k})
            else:
                status, body = await send(upload=uploads[rng.randrange(len(uploads))], k=k)
            problem = None if status == 200 and len(body["results"]) == expected else f"HTTP {status}"
        except Exception as exc:  # noqa: BLE001 - every failure counts as an error
            problem = type(exc).__name__
        latencies.append(time.perf_counter() - started)
        if problem:
            errors[problem] = errors.get(problem, 0) + 1

    async with sender(url, clients, library) as send:
        await asyncio.gather(*(one(send) for _ in range(clients)))  # open the connections, not counted
        latencies.clear()
        errors.clear()
        start = time.perf_counter()
        deadline = start + duration

        async def client() -> None:
            nonlocal sent
            while time.perf_counter() < deadline and sent < max_requests:
                sent += 1
                await one(send)

        await asyncio.gather(*(client() for _ in range(clients)))
        seconds = time.perf_counter() - start
    ms = np.asarray(latencies) * 1000
    return {
        "mode": mode, "clients": clients, "client_library": library, "seconds": round(seconds, 2),
        "requests": len(latencies), "errors": sum(errors.values()), "error_kinds": errors,
        "requests_per_s": round(len(latencies) / seconds, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2), "p90_ms": round(float(np.percentile(ms, 90)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2), "max_ms": round(float(ms.max()), 2),
    }


def verdict(result: dict) -> str:
    rate, p99 = TARGETS[result["mode"]]
    ok = result["errors"] == 0 and result["requests_per_s"] >= rate and result["p99_ms"] <= p99
    return f"{'met' if ok else 'MISSED'} (target: 0 errors, ≥ {rate:.0f} requests/s, p99 ≤ {p99:.0f} ms)"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", help="index folder (default: build one in --work)")
    p.add_argument("--checkpoint", help="run folder that embeds uploads (default: the one the index records)")
    p.add_argument("--data", help=f"data spec of the gallery (default: the index's; when building: {CIFAR})")
    p.add_argument("--work", help="where a quick checkpoint and index are built (default: INFOMAX_HOME/bench-serve)")
    p.add_argument("--train-steps", type=int, default=200, help="training steps of the quick checkpoint")
    p.add_argument("--threads", type=int, help="the server's --threads (default: its own default)")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--duration", type=float, default=60.0, help="seconds per phase")
    p.add_argument("--max-requests", type=int, default=200_000, help="requests per phase at most")
    p.add_argument("--modes", default="id,upload", help="phases to run: id, upload")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--client", default="auto", choices=["auto", "aiohttp", "httpx"], help="HTTP library of the load generator")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)

    index, checkpoint, data = prepare(args)
    proc, url = start_server(index, checkpoint, data, args.threads)
    try:
        import httpx

        info = httpx.get(url + "/api/info").json()
        rng = random.Random(1)
        uploads = jpeg_queries(url, [rng.randrange(info["gallery"]) for _ in range(64)])
        print(f"server {url}: {info['gallery']} images; {args.clients} clients, {args.duration:.0f} s per phase; "
              f"uploads are {info['image_shape'][1]}×{info['image_shape'][2]} JPEGs of "
              f"{np.mean([len(u) for u in uploads]):.0f} bytes on average", flush=True)
        results = []
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            server_cpu, own_cpu = cpu_seconds(proc.pid), time.process_time()
            before = httpx.get(url + "/healthz").json()
            result = asyncio.run(phase(url, mode, args.clients, args.duration, args.max_requests,
                                       info["gallery"], uploads, args.k, args.client))
            after = httpx.get(url + "/healthz").json()
            if server_cpu is not None:
                result["server_cpu_s"] = round(cpu_seconds(proc.pid) - server_cpu, 1)
            result["loadgen_cpu_s"] = round(time.process_time() - own_cpu, 1)
            searches = after.get("searches", 0) - before.get("searches", 0)
            batches = after.get("batches", 0) - before.get("batches", 0)
            result["mean_batch"] = round(searches / batches, 1) if batches else None
            results.append(result)
            print(json.dumps(result), flush=True)
            print(f"by {mode}: {result['requests_per_s']:.0f} requests/s, p50 {result['p50_ms']:.1f} ms, "
                  f"p99 {result['p99_ms']:.1f} ms, {result['errors']} errors: {verdict(result)}", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
        return 0 if all(verdict(r).startswith("met") for r in results) else 1
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    raise SystemExit(main())
