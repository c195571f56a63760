"""Soak of `infomax serve`: concurrent clients mixing good and hostile requests, on loopback.

    python benchmarks/soak_serve.py                        # builds a small digits run and index first
    python benchmarks/soak_serve.py --index IDX --checkpoint RUN --clients 32 --seconds 60

The server runs in its own process (`python -m infomax serve`, 127.0.0.1, a free port). `--clients`
asyncio clients (one aiohttp session) each send their next request as soon as the last is answered,
for `--seconds` or `--max-requests`, picking by weight among (benchmarks/soak_payloads.py):
searches by row and by image id, valid uploads (JPEG and PNG pictures), malformed uploads (random
bytes, truncated files, a non-image content type, EPS and PDF, broken multipart, bad fields),
40 MP PNG bombs, bodies over the upload limit (declared and chunked) and uploads abandoned
mid-body (the connection closed).

It checks: no 5xx but 503, and every 503 an upload with Retry-After; every request gets a status
expected for it; every 4xx has a JSON body {"error": message}; every 200 the k results asked for;
no request fails at the transport (a hang shows as a timeout); afterwards the server still answers
and holds no upload. It samples the server's VmRSS from /proc/PID/status during the run and reads
its VmHWM (peak RSS) at the end, against --max-rss. Prints counts per kind and status, p50/p99
latency per kind, the RSS figures, the machine and the command; exits 1 on FAIL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serve import start_server  # noqa: E402
from soak_kill import machine  # noqa: E402
from soak_payloads import KINDS, WEIGHTS, chooser, variants  # noqa: E402

SPEC = "digits,size=32"
# Default bound on the server's peak RSS. Loaded (digits index, model): ~370 MB. The service holds at
# most 4 + 32 uploads at once, each <= 10 MB: ~360 MB more, and this traffic decodes nothing big, so
# ~730 MB is its ceiling; runs of 60-180 s peaked at 647-684 MB. 1024 MB leaves ~300 MB for the
# allocator and a bigger model, and fails a service that keeps what it was sent.
MAX_RSS_MB = 1024


def build(work: Path, steps: int) -> tuple[str, str]:
    """A small digits run, its embeddings and its index in `work` (reused when present)."""
    from infomax.config import resolve
    from infomax.data import load
    from infomax.embed.embedder import Embedder
    from infomax.embed.files import save_embeddings
    from infomax.embed.run import embed_dataset
    from infomax.index.store import build_gallery
    from infomax.train.loop import train

    run, emb, index = work / "run", work / "emb", work / "index"
    if not index.is_dir():
        data = load(SPEC, progress=False)
        cfg = resolve("digits", {}, {"preset": "seed", "batch_size": 64, "max_steps": steps, "device": "cpu",
                                     "z_dim": 64})
        print(f"building: {steps} training steps on {SPEC}, embed, index in {work}", flush=True)
        train(cfg, run, data, progress=False)
        embedder = Embedder.from_checkpoint(run, device="cpu")
        save_embeddings(emb, embed_dataset(embedder, data, spec=SPEC, checkpoint=str(run)))
        build_gallery(emb, index, split="train")
    return str(index), str(run)


class RssSampler(threading.Thread):
    """VmRSS of a process every `every` seconds, as (seconds since start, MB)."""

    def __init__(self, pid: int, every: float = 0.2):
        super().__init__(daemon=True)
        self.pid, self.every, self.samples, self.done = pid, every, [], threading.Event()

    def run(self):
        start = time.monotonic()
        while not self.done.wait(self.every):
            rss = status_mb(self.pid, "VmRSS")
            if rss is not None:
                self.samples.append((time.monotonic() - start, rss))


def status_mb(pid: int, field: str) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB -> MB
    except OSError:
        return None
    return None


def check(v, status: int, headers, raw: bytes) -> str | None:
    """What is wrong with this answer to variant v, or None."""
    if status >= 500 and status != 503:
        return f"HTTP {status}"
    if status == 503 and headers.get("Retry-After") is None:
        return "503 without Retry-After"
    if status not in v.expect:
        return f"HTTP {status}, expected {sorted(v.expect)}"
    try:
        body = json.loads(raw)
    except ValueError:
        return f"HTTP {status} without a JSON body"
    if status >= 400:
        ok = isinstance(body, dict) and isinstance(body.get("error"), str) and len(body["error"]) > 10
        return None if ok else f"HTTP {status} without an error message"
    if status == 200 and v.k is not None and len(body.get("results", ())) != v.k:
        return f"200 with {len(body.get('results', ()))} results, expected {v.k}"
    return None


async def soak(url: str, all_variants, clients: int, seconds: float, max_requests: int, seed: int) -> dict:
    import aiohttp

    pick = chooser(all_variants, seed)
    address = url.split("//", 1)[1].rsplit(":", 1)
    records: list[tuple[str, str, int | str, float]] = []  # kind, variant, status or exception, seconds
    problems: Counter = Counter()

    async def chunks(data: bytes):
        for i in range(0, len(data), 1 << 20):
            yield data[i:i + (1 << 20)]

    async def one(http) -> None:
        v = pick()
        body = v.body() if callable(v.body) else chunks(v.body) if v.chunked else v.body
        started = time.perf_counter()
        try:
            if v.raw:  # a client that goes away mid-body: nothing to check but the server afterwards
                _, writer = await asyncio.open_connection(*address)
                writer.write(v.body)
                await writer.drain()
                writer.close()
                await writer.wait_closed()
                records.append((v.kind, v.name, "closed", time.perf_counter() - started))
                return
            async with http.post("/api/search", data=body, headers=v.headers) as reply:
                raw = await reply.read()
                status, problem = reply.status, check(v, reply.status, reply.headers, raw)
        except Exception as exc:  # noqa: BLE001 - a refused or dropped connection, a timeout: all count
            status, problem = type(exc).__name__, f"transport: {type(exc).__name__}"
        records.append((v.kind, v.name, status, time.perf_counter() - started))
        if problem:
            problems[(v.kind, v.name, problem)] += 1

    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(limit=clients), timeout=timeout) as http:
        deadline = time.perf_counter() + seconds
        start = time.perf_counter()

        async def client() -> None:
            while time.perf_counter() < deadline and len(records) < max_requests:
                await one(http)

        await asyncio.gather(*(client() for _ in range(clients)))
        took = time.perf_counter() - start
    return {"records": records, "problems": problems, "seconds": took}


def report(result: dict) -> None:
    records = result["records"]
    print(f"\n{len(records)} requests in {result['seconds']:.1f} s ({len(records) / result['seconds']:.0f}/s)")
    print(f"{'kind':<10} {'share':>5} {'requests':>8}  {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  statuses")
    for kind in KINDS:
        mine = [r for r in records if r[0] == kind]
        if not mine:
            continue
        ms = np.asarray([r[3] for r in mine]) * 1000
        statuses = Counter(r[2] for r in mine)
        shown = ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items(), key=lambda x: str(x[0])))
        print(f"{kind:<10} {WEIGHTS[kind]:>4}% {len(mine):>8}  {np.percentile(ms, 50):>8.1f} "
              f"{np.percentile(ms, 99):>8.1f} {ms.max():>8.1f}  {shown}")
    by_variant = defaultdict(Counter)
    for kind, name, status, _ in records:
        by_variant[(kind, name)][status] += 1
    print("per variant:")
    for (kind, name), statuses in sorted(by_variant.items(), key=lambda x: KINDS.index(x[0][0])):
        print(f"  {kind:<10} {name:<28} " + ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items(), key=str)))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--index", help="index folder (default: build a small digits one in --work)")
    p.add_argument("--checkpoint", help="run folder that embeds uploads (default: the one the index records)")
    p.add_argument("--data", help="data spec of the gallery (default: the index's)")
    p.add_argument("--work", help="where the small run and index are built (default: a temporary folder)")
    p.add_argument("--train-steps", type=int, default=20)
    p.add_argument("--threads", type=int, help="the server's --threads")
    p.add_argument("--max-decodes", type=int, help="the server's --max-decodes (default: its own, 4); with N, more "
                                                    "than 9×N uploads at once get 503")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--max-requests", type=int, default=100_000, help="requests in all, at most")
    p.add_argument("--max-rss", type=float, default=MAX_RSS_MB, help=f"MB, bound on the server's peak RSS (default {MAX_RSS_MB})")
    p.add_argument("--kinds", default=",".join(KINDS), help=f"request kinds to send (default: all of {','.join(KINDS)})")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    print(f"$ python benchmarks/soak_serve.py {' '.join(sys.argv[1:] if argv is None else argv)}")
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the start", flush=True)

    with tempfile.TemporaryDirectory(prefix="soak-serve-") as tmp:
        if args.index:
            index, checkpoint, data = args.index, args.checkpoint, args.data
        else:
            work = Path(args.work or tmp)
            os.environ.setdefault("INFOMAX_HOME", str(work / "home"))  # the data cache, shared with the server
            (index, checkpoint), data = build(work, args.train_steps), None
        proc, url = start_server(index, checkpoint, data, args.threads,
                                  extra=("--max-decodes", str(args.max_decodes)) if args.max_decodes else ())
        try:
            return drive(args, proc, url)
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except Exception:  # noqa: BLE001
                proc.kill()


def drive(args, proc, url: str) -> int:
    import httpx

    info = httpx.get(url + "/api/info", timeout=30).json()
    rng = random.Random(args.seed)
    rows = [rng.randrange(info["gallery"]) for _ in range(8)]
    ids = [httpx.post(url + "/api/search", json={"id": r, "k": 1}, timeout=30).json()["results"][0]["id"] for r in rows]
    pngs = [httpx.get(f"{url}/api/images/{r}", timeout=30).content for r in rows[:4]]
    kinds = {k.strip() for k in args.kinds.split(",") if k.strip()}
    all_variants = [v for v in variants(info["gallery"], ids, pngs, info["max_upload_bytes"], args.seed) if v.kind in kinds]
    rss_start = status_mb(proc.pid, "VmRSS")
    print(f"server {url} (pid {proc.pid}): {info['gallery']} images, {info['max_decodes']} decodes at once, "
          f"uploads up to {info['max_upload_bytes']:,} bytes; RSS {rss_start:.0f} MB before the soak")
    print(f"{args.clients} clients for {args.seconds:.0f} s (at most {args.max_requests:,} requests), "
          f"{len(all_variants)} request variants", flush=True)

    sampler = RssSampler(proc.pid)
    sampler.start()
    result = asyncio.run(soak(url, all_variants, args.clients, args.seconds, args.max_requests, args.seed))
    sampler.done.set()
    sampler.join()
    problems = result["problems"]
    try:  # afterwards: still answering, and every upload has left the gate
        health = httpx.get(url + "/healthz", timeout=10).json()
        after = httpx.post(url + "/api/search", json={"id": 0, "k": 3}, timeout=10).status_code
        if after != 200 or health["uploads_in_progress"] != 0:
            problems[("after", "health", f"search {after}, uploads in progress {health['uploads_in_progress']}")] += 1
    except httpx.HTTPError as exc:
        health = {}
        problems[("after", "health", f"no answer ({type(exc).__name__})")] += 1
    hwm, rss_end = status_mb(proc.pid, "VmHWM"), status_mb(proc.pid, "VmRSS")

    report(result)
    samples = sampler.samples
    print("server RSS (MB) over time, the highest sample of each 10 s: " + ", ".join(
        f"{int(t0)}s {max(m for t, m in samples if t0 <= t < t0 + 10):.0f}"
        for t0 in range(0, int(samples[-1][0]) + 1, 10) if any(t0 <= t < t0 + 10 for t, _ in samples)))
    peak_sampled = max(m for _, m in samples)
    print(f"server RSS: {rss_start:.0f} MB before, peak sampled {peak_sampled:.0f} MB, {rss_end:.0f} MB after; "
          f"VmHWM (peak) {hwm:.0f} MB; {health.get('uploads_refused_busy', '?')} uploads refused busy")
    rss_ok = hwm is not None and hwm <= args.max_rss
    print(f"peak RSS {hwm:.0f} MB <= {args.max_rss:.0f} MB: {'PASS' if rss_ok else 'FAIL'}")
    for (kind, name, what), n in sorted(problems.items()):
        print(f"PROBLEM {kind} / {name}: {what} (x{n})")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    ok = rss_ok and not problems
    print("PASS" if ok else "FAIL", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
