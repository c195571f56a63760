"""The on-disk ivfpq index at 10 million vectors: build time and memory, search memory, latency, recall.

The gallery is real features (trained embeddings with --embeddings, else PCA of pixels, as in
bench_index.py) grown with noisy copies to --n vectors, written block by block to
WORKDIR/emb (embeddings.npy + metadata.parquet, unit vectors). The build and the searches run
in child processes, so their peak RSS is their own. Recall@10 is against exact search over
the same gallery (block-wise, float32). With --autofaiss the same vectors are indexed by
autofaiss with the same memory budget and searched the same way.

    .venv/bin/python benchmarks/bench_index_disk.py --embeddings EMB_DIR --n 10000000 --autofaiss
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_index import DEFAULT_DATA, base_features, latency, machine, recall_at_k  # noqa: E402

BLOCK = 1 << 16  # rows per step of the exact search: a 1,000 × 65,536 score block is 256 MiB


def write_gallery(seeds: np.ndarray, n: int, noise: float, out: Path) -> None:
    """out/embeddings.npy (n×D unit float32) + metadata.parquet, block by block (as enlarge())."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    rng, std = np.random.default_rng(0), seeds.std(0).astype(np.float32)
    vectors = np.lib.format.open_memmap(out / "embeddings.npy", "w+", np.float32, (n, seeds.shape[1]))
    schema = pa.schema([("id", pa.string()), ("split", pa.string()), ("label", pa.int64()), ("label_name", pa.string())])
    with pq.ParquetWriter(out / "metadata.parquet", schema) as writer:
        for start in range(0, n, len(seeds)):
            block = seeds[: min(len(seeds), n - start)].copy()
            if start:
                block += noise * std * rng.standard_normal(block.shape, dtype=np.float32)
            vectors[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
            m = len(block)
            writer.write_table(pa.table({"id": [f"v{start + i}" for i in range(m)], "split": ["train"] * m,
                                         "label": pa.nulls(m, pa.int64()), "label_name": [""] * m}, schema=schema))
    vectors.flush()
    del vectors
    (out / "embed.json").write_text(json.dumps({"checkpoint": None, "data": None}))


def exact_top(emb: Path, queries: np.ndarray, k: int) -> np.ndarray:
    """Q×k exact neighbours (inner product of unit vectors), block by block over the memory map."""
    vectors = np.load(emb / "embeddings.npy", mmap_mode="r")
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, len(vectors), BLOCK):
        s = queries @ np.asarray(vectors[start : start + BLOCK]).T  # Q×B
        top = np.argpartition(-s, k - 1, axis=1)[:, :k]
        cand_s = np.concatenate([best_s, np.take_along_axis(s, top, 1)], 1)
        cand_i = np.concatenate([best_i, top + start], 1)
        keep = np.argsort(-cand_s, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(cand_s, keep, 1), np.take_along_axis(cand_i, keep, 1)
    return best_i


def child(argv: list[str], what: str) -> dict:
    """Run this script's `what` step in a fresh process; its JSON answer plus its peak RSS (GiB)."""
    out = subprocess.run([sys.executable, __file__, "--child", what, *argv], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{what} failed:\n{out.stderr[-3000:]}")
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    answer["peak_rss_gib"] = answer["rss"]["VmHWM"]  # the child's own high-water mark
    return answer


def rss(pid: int | str = "self") -> dict:
    """Resident memory of a process now (GiB; this one by default): all of it, the parts not backed
    by files and backed by files, and its high-water mark."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {k: round(int(status[k].split()[0]) / 2**20, 3) for k in ("VmRSS", "RssAnon", "RssFile", "VmHWM")}


def timed_search(search, queries: np.ndarray, truth: np.ndarray, k: int) -> dict:
    wall, cpu = np.empty(len(queries)), np.empty(len(queries))
    found = np.empty((len(queries), k), dtype=np.int64)
    for i in range(len(queries)):
        start, start_cpu = time.perf_counter(), time.thread_time()
        found[i] = search(queries[i : i + 1])
        wall[i], cpu[i] = time.perf_counter() - start, time.thread_time() - start_cpu
    return {"p50_ms": round(1e3 * np.median(wall), 3), "p99_ms": round(1e3 * np.percentile(wall, 99), 3),
            "recall": round(recall_at_k(found, truth), 4), "text": latency(wall, cpu)}


def run_child(args) -> None:
    import faiss

    w = Path(args.workdir)
    queries, truth = np.load(w / "queries.npy"), np.load(w / "truth.npy")
    if args.child == "build":
        from infomax.index.store import build_gallery

        start = time.perf_counter()
        index = build_gallery(w / "emb", w / "index", split="all", kind="ivfpq", threads=args.threads)
        print(json.dumps({"seconds": round(time.perf_counter() - start, 1), "params": index.params, "rss": rss()}))
    elif args.child == "search":
        from infomax.index.store import GalleryIndex

        index = GalleryIndex.load(w / "index")
        res = {}
        for nprobe in [int(v) for v in args.nprobe.split(",")]:
            index.params["nprobe"] = nprobe
            res[nprobe] = timed_search(lambda q: index.search(q, args.k)[1][0], queries, truth, args.k)
        index.describe(np.arange(args.k))  # a metadata lookup, as a request makes
        print(json.dumps({"nprobe": res, "rss": rss()}))
    elif args.child == "autofaiss-build":
        from autofaiss import build_index

        opq = faiss.OPQMatrix  # autofaiss 2.18 passes keywords that faiss 1.15's wrapper refuses
        faiss.OPQMatrix = lambda d=0, M=1, d2=-1: opq(d, M, d2)
        dump = json.dump  # autofaiss writes numpy float32 metrics, which json refuses under numpy 2
        json.dump = lambda obj, f, **kw: dump(obj, f, default=lambda o: o.item() if hasattr(o, "item") else str(o), **kw)
        start = time.perf_counter()
        build_index(embeddings=str(w / "emb"), index_path=str(w / "autofaiss.index"), file_format="npy",
                    index_infos_path=str(w / "autofaiss.json"), max_index_memory_usage=half(args.memory),
                    current_memory_available=args.memory, metric_type="ip", nb_cores=args.threads,
                    max_index_query_time_ms=10, verbose=30)
        info = json.loads((w / "autofaiss.json").read_text())
        print(json.dumps({"seconds": round(time.perf_counter() - start, 1), "index_key": info.get("index_key"),
                          "index_param": info.get("index_param"), "rss": rss()}))
    elif args.child == "autofaiss-search":
        faiss.omp_set_num_threads(1)
        info = json.loads((w / "autofaiss.json").read_text())
        index = faiss.read_index(str(w / "autofaiss.index"), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
        faiss.ParameterSpace().set_index_parameters(index, info["index_param"])
        res = {"default": timed_search(lambda q: index.search(q, args.k)[1][0], queries, truth, args.k)}
        print(json.dumps({"params": info["index_param"], "search": res, "rss": rss()}))


def half(size: str) -> str:
    """autofaiss refuses an index that may take all the memory it is told of: half of it for the index."""
    return f"{float(size[:-1]) / 2:g}{size[-1]}"


def size_gib(path: Path) -> float:
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    return round(sum(f.stat().st_size for f in files) / 2**30, 3)


def ivfpq_report(forward: list[str], w: Path, k: int, rebuild: bool = True) -> None:
    if rebuild or not (w / "index" / "index.json").is_file():
        built = child(forward, "build")
        print(f"ivfpq {built['params']}: build {built['seconds']} s, peak RSS {built['peak_rss_gib']} GiB, "
              f"index on disk {size_gib(w / 'index')} GiB (vectors stay in the embeddings, {size_gib(w / 'emb')} GiB)")
    else:
        print(f"ivfpq: the index of the kept run reused ({w / 'index'}, --reuse-index)")
    found = child(forward, "search")
    print(f"search process RSS {found['rss']} GiB (RssFile: mapped pages of the index file)")
    for nprobe, r in found["nprobe"].items():
        print(f"  nprobe {nprobe}: p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, recall@{k} {r['recall']} ({r['text']})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--embeddings", help="trained embeddings folder (default: PCA of real pixels)")
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--n", type=int, default=10_000_000)
    p.add_argument("--noise", type=float, default=0.5)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--nprobe", default="8,16,32,64", help="nprobe values searched")
    p.add_argument("--threads", type=int, default=2, help="build threads")
    p.add_argument("--memory", default="4G", help="autofaiss memory budget")
    p.add_argument("--autofaiss", action="store_true", help="also build and search with autofaiss")
    p.add_argument("--no-ivfpq", action="store_true", help="skip the ivfpq build and search")
    p.add_argument("--workdir", default="/work/bench-data/disk", help="where the gallery and indexes go")
    p.add_argument("--keep", action="store_true", help="keep the generated files (a later --keep run with the same "
                   "gallery settings reuses them)")
    p.add_argument("--reuse-index", action="store_true", help="with --keep: search the kept ivfpq index, no build")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        run_child(args)
        return 0

    import faiss

    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {machine()}; faiss {faiss.__version__}")
    w = Path(args.workdir)
    w.mkdir(parents=True, exist_ok=True)
    try:
        seeds, queries, what = base_features(args)
        queries = queries[: args.queries] / np.linalg.norm(queries[: args.queries], axis=1, keepdims=True)
        start = time.perf_counter()
        made = f"{what}; gallery {args.n:,} × {seeds.shape[1]} ({len(seeds):,} real + noisy copies, noise {args.noise}), " \
               f"{len(queries)} held-out queries, k {args.k}"
        if args.keep and (w / "made.txt").is_file() and (w / "made.txt").read_text() == made:
            print(f"features: {made}; reused from {w} (--keep)")
        else:
            (w / "made.txt").unlink(missing_ok=True)
            write_gallery(seeds, args.n, args.noise, w / "emb")
            np.save(w / "queries.npy", queries.astype(np.float32))
            np.save(w / "truth.npy", exact_top(w / "emb", queries.astype(np.float32), args.k))
            (w / "made.txt").write_text(made)
            print(f"features: {made}; written + exact search in {time.perf_counter() - start:.0f} s")
        forward = [a for a in sys.argv[1:] if a != "--autofaiss"] if argv is None else list(argv)
        if not args.no_ivfpq:
            ivfpq_report(forward, w, args.k, rebuild=not (args.keep and args.reuse_index))
        if args.autofaiss:
            auto = child(forward, "autofaiss-build")
            print(f"autofaiss {auto['index_key']} ({auto['index_param']}), budget {args.memory}: build "
                  f"{auto['seconds']} s, peak RSS {auto['peak_rss_gib']} GiB, on disk {size_gib(w / 'autofaiss.index')} GiB")
            found = child(forward, "autofaiss-search")
            r = found["search"]["default"]
            print(f"  autofaiss search (memory-mapped): p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
                  f"recall@{args.k} {r['recall']}; RSS {found['rss']} GiB")
    finally:
        if not args.keep:
            import shutil

            shutil.rmtree(w, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
