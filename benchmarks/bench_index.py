"""Search speed and recall of the gallery index on real features made larger with noisy copies.

Features: trained embeddings (--embeddings EMB_DIR), or PCA to 256 dims of the real pixels of a
data set (--data SPEC, default the CIFAR-10 zip beside the repository). The gallery is the train
split's vectors, each repeated with Gaussian noise until it holds --size vectors (copy 0 is the
original; copy c > 0 adds noise of --noise × the per-dimension std); the queries are held-out
vectors, untouched. Reported: build time, single-query latency (median, p90) and recall@10 of the
approximate index against exact search, and single-query latency of exact search over 50,000.

    .venv/bin/python benchmarks/bench_index.py                      # 1,000,000 × 256, HNSW
    .venv/bin/python benchmarks/bench_index.py --embeddings runs/emb --kind ivf
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from infomax.device import cpu_model

DEFAULT_DATA = f"folder:{Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'cifar10-jpg.zip'},size=32"


def machine() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", load average %.1f %.1f %.1f" % os.getloadavg() if hasattr(os, "getloadavg") else ""
    return f"{cores} cores available ({os.cpu_count()} online), {cpu_model()}, Python {platform.python_version()}{load}"


def base_features(args) -> tuple[np.ndarray, np.ndarray, str]:
    """(gallery seeds G×D, queries Q×D, description) from embeddings or from PCA of real pixels."""
    if args.embeddings:
        from infomax.embed.files import load_embeddings

        emb = load_embeddings(args.embeddings)
        gallery = "train" if "train" in emb.splits else emb.splits[0]
        held = next((s for s in ("test", "val") if s in emb.splits and s != gallery), None)
        g = np.asarray(emb.vectors[emb.rows(gallery)], dtype=np.float32)
        q = np.asarray(emb.vectors[emb.rows(held)], dtype=np.float32) if held else g[-args.queries :]
        if not held:
            g = g[: -args.queries]
        return g, q, f"embeddings {args.embeddings} ({g.shape[1]} dims)"
    from sklearn.decomposition import PCA

    from infomax.data import load
    from infomax.eval.baselines import pixel_features

    data = load(args.data, progress=False)
    train = pixel_features(data.split(data.train_split).images, data.normalization)
    test = pixel_features(data.split(data.heldout_split).images, data.normalization)
    pca = PCA(n_components=args.dim, svd_solver="randomized", random_state=0).fit(train)
    return pca.transform(train).astype(np.float32), pca.transform(test).astype(np.float32), f"PCA-{args.dim} of the pixels of {args.data}"


def enlarge(seeds: np.ndarray, size: int, noise: float, seed: int = 0) -> np.ndarray:
    """size×D: the seeds, then noisy copies of them (noise × per-dim std × N(0, 1))."""
    rng = np.random.default_rng(seed)
    std = seeds.std(0).astype(np.float32)
    out = np.empty((size, seeds.shape[1]), dtype=np.float32)
    for start in range(0, size, len(seeds)):
        block = seeds[: min(len(seeds), size - start)]
        out[start : start + len(block)] = block
        if start:
            out[start : start + len(block)] += noise * std * rng.standard_normal(block.shape, dtype=np.float32)
    return out


def single_query_times(index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-query wall seconds, per-query CPU seconds of this thread, and the found positions (Q×k).

    One query per call. On a machine busy with other work the CPU time is the better estimate
    of the latency on idle cores: it leaves out the time the thread waited for a core.
    """
    wall, cpu = np.empty(len(queries)), np.empty(len(queries))
    found = np.empty((len(queries), k), dtype=np.int64)
    for i in range(len(queries)):
        start, start_cpu = time.perf_counter(), time.thread_time()
        _, pos = index.search(queries[i : i + 1], k)
        wall[i], cpu[i] = time.perf_counter() - start, time.thread_time() - start_cpu
        found[i] = pos[0]
    return wall, cpu, found


def latency(wall: np.ndarray, cpu: np.ndarray) -> str:
    return (f"median {1e3 * np.median(wall):.3f} ms, p90 {1e3 * np.percentile(wall, 90):.3f} ms "
            f"(CPU median {1e3 * np.median(cpu):.3f} ms)")


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(f[:k]) & set(t)) / k for f, t in zip(found, truth)]))


def in_memory_index(unit: np.ndarray, kind: str, params: dict, threads: int):
    from infomax.index.build import build_faiss, flat_index
    from infomax.index.store import GalleryIndex

    start, cpu = time.perf_counter(), time.process_time()
    index, order = build_faiss(unit, kind, params, threads=threads) if kind != "flat" else (flat_index(unit), None)
    order = np.arange(len(unit)) if order is None else order
    unit = unit[order]  # as `infomax index` stores them: position i holds input row order[i]
    seconds = (time.perf_counter() - start, time.process_time() - cpu)  # wall, CPU
    meta = pd.DataFrame({"id": order.astype(str), "label_name": ""})
    info = {"kind": kind, "params": params}
    return GalleryIndex(Path("."), info, unit, order, meta, index), seconds


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--embeddings", help="trained embeddings folder (default: PCA of real pixels)")
    p.add_argument("--data", default=DEFAULT_DATA, help="data spec for the PCA features")
    p.add_argument("--dim", type=int, default=256, help="PCA dims (default 256)")
    p.add_argument("--size", type=int, default=1_000_000, help="gallery size after enlarging")
    p.add_argument("--noise", type=float, default=0.5, help="noise of the copies, in per-dim stds")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--kind", choices=("hnsw", "ivf", "flat"), default="hnsw")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="override an index setting")
    p.add_argument("--sweep", metavar="KEY=V1,V2", help="also time searches with other values of a search setting")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="build threads")
    p.add_argument("--exact-size", type=int, default=50_000, help="gallery of the exact-search timing")
    args = p.parse_args(argv)

    import faiss

    from infomax.index.build import default_params, normalize

    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {machine()}; faiss {faiss.__version__}")
    seeds, queries, what = base_features(args)
    queries = normalize(queries[: args.queries])
    unit = normalize(enlarge(seeds, args.size, args.noise))
    print(f"features: {what}; gallery {len(unit):,} × {unit.shape[1]} ({len(seeds):,} real + noisy copies, "
          f"noise {args.noise} std), {len(queries)} held-out queries")

    faiss.omp_set_num_threads(os.cpu_count())
    exact = faiss.IndexFlatIP(unit.shape[1])
    exact.add(unit)
    _, truth = exact.search(queries, args.k)  # Q×k exact neighbours
    del exact

    params = {**default_params(args.kind, len(unit))}
    for item in args.param:
        key, value = item.split("=", 1)
        params[key] = type(params.get(key, 0))(value)
    index, (wall, cpu) = in_memory_index(unit, args.kind, params, args.threads)
    print(f"{args.kind} {params}: build {wall:.1f} s wall ({cpu:.1f} s CPU) on {args.threads} threads")
    key, values = (args.sweep.split("=", 1) + [""])[:2] if args.sweep else (None, "")
    for value in [None] + [v for v in values.split(",") if v]:
        if value is not None:
            index.params[key] = type(params.get(key, 0))(value)
        wall, cpu, found = single_query_times(index, queries, args.k)
        found = np.where(found >= 0, index.embedding_rows[np.maximum(found, 0)], -1)  # input rows
        setting = "" if value is None else f"{key}={value}: "
        print(f"  {setting}single query top-{args.k}: {latency(wall, cpu)}; "
              f"recall@{args.k} {recall_at_k(found, truth):.4f}", flush=True)

    small, _ = in_memory_index(unit[: args.exact_size], "flat", {}, args.threads)
    wall, cpu, _ = single_query_times(small, queries, args.k)
    print(f"exact (flat) over {len(small):,}: single query {latency(wall, cpu)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
