"""The evaluation report: every protocol on every feature set, written as eval.json and eval.md.

Gallery = the train split, queries = the held-out (test or val) split; labels are used only here,
to score the frozen features, never to train them.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from infomax.atomic import atomic_write
from infomax.eval.knn import knn_accuracies, topk_neighbours
from infomax.eval.prior import prior_lines
from infomax.eval.probe import BATCH_SIZE, DROPOUT, HIDDEN, LINEAR_EPOCHS, MIN_STEPS, MLP_EPOCHS, probe_accuracy
from infomax.eval.retrieval import retrieval_metrics

WEIGHTED_K, TEMPERATURE, MAJORITY_KS, PRECISION_K, MAP_K = 200, 0.1, (1, 10, 20), 10, 100

TIE_RULE = "ties go to the tied class whose best-ranked neighbour is nearest"
PROTOCOLS = {
    f"knn_weighted_k{WEIGHTED_K}": (
        f"weighted kNN top-1 (InstDisc): cosine similarity, k = {WEIGHTED_K}, each neighbour weighs "
        f"exp(sim / {TEMPERATURE}), a class scores the sum of its neighbours' weights (ties: lowest class index)"
    ),
    **{f"knn_majority_k{k}": f"majority-vote kNN top-1, cosine similarity, k = {k}; {TIE_RULE}" for k in MAJORITY_KS},
    "linear_probe": (
        f"linear probe top-1: multinomial logistic regression on standardized features, Adam, batch {BATCH_SIZE}, "
        f"cosine decay, {LINEAR_EPOCHS} epochs (at least {MIN_STEPS} steps), seed 0"
    ),
    "mlp_probe": (
        f"DIM probe top-1: one hidden layer of {HIDDEN} ReLU units, dropout {DROPOUT}, on standardized features, "
        f"Adam, batch {BATCH_SIZE}, cosine decay, {MLP_EPOCHS} epochs (at least {MIN_STEPS} steps), seed 0"
    ),
    f"precision@{PRECISION_K}": f"precision@{PRECISION_K}: fraction of same-class items among the {PRECISION_K} cosine-nearest gallery items",
    f"map@{MAP_K}": (
        f"mAP@{MAP_K}: mean over queries of AP@{MAP_K} = (1 / min({MAP_K}, R)) · Σ_i P@i · rel_i over the first "
        f"{MAP_K} neighbours, R = number of gallery items of the query's class"
    ),
}
HEADERS = {
    f"knn_weighted_k{WEIGHTED_K}": f"kNN w{WEIGHTED_K}",
    **{f"knn_majority_k{k}": f"kNN {k}" for k in MAJORITY_KS},
    "linear_probe": "linear",
    "mlp_probe": "DIM MLP",
    f"precision@{PRECISION_K}": f"P@{PRECISION_K}",
    f"map@{MAP_K}": f"mAP@{MAP_K}",
}


def title(key: str, kind: str = "learned") -> str:
    """Table name of a feature set: 'y (μ)', 'fc', 'baseline: pixels', ..."""
    if kind == "baseline":
        return f"baseline: {key.replace('_', ' ')}"
    return {"y": "y (μ)", "mu": "mu (μ, not whitened)"}.get(key, key)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def evaluate_features(
    features: np.ndarray,
    labels: np.ndarray,
    gallery_rows: np.ndarray,
    query_rows: np.ndarray,
    num_classes: int,
    neighbours: bool = True,
    probes: bool = True,
    probe_epochs: int | None = None,
    seed: int = 0,
) -> dict:
    """All protocols on one feature set (features N×D, labels int N); the keys of PROTOCOLS plus 'dims' and 'seconds'."""
    start = time.perf_counter()
    out: dict = {"dims": int(features.shape[1])}
    if neighbours:
        k = min(max(WEIGHTED_K, MAP_K), len(gallery_rows))
        scores, pos = topk_neighbours(features[query_rows], features[gallery_rows], k)  # Q×k
        neighbour_labels = labels[gallery_rows][pos]  # Q×k
        query_labels = labels[query_rows]
        out.update(knn_accuracies(scores, neighbour_labels, query_labels, num_classes, WEIGHTED_K, TEMPERATURE, MAJORITY_KS))
        if k >= MAP_K:
            out.update(retrieval_metrics(neighbour_labels, query_labels, labels[gallery_rows], PRECISION_K, MAP_K))
    if probes:
        for kind in ("linear", "mlp"):
            out[f"{kind}_probe"] = probe_accuracy(
                kind, features[gallery_rows], labels[gallery_rows], features[query_rows], labels[query_rows],
                num_classes, epochs=probe_epochs, seed=seed,
            )
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out


def choose_splits(emb) -> tuple[str, str | None]:
    """(gallery split, query split): train (else the first) and test or val (None when absent)."""
    splits = emb.splits
    gallery = "train" if "train" in splits else splits[0]
    query = next((s for s in ("test", "val") if s in splits and s != gallery), None)
    return gallery, query


def skip_reason(emb, gallery: str, query: str | None) -> str | None:
    """Why the labelled protocols cannot run, or None when they can."""
    if query is None:
        return (f"the embeddings have no held-out split (only {', '.join(emb.splits)}), so kNN, probes and "
                "retrieval were skipped: they train on the train split and score on test/val")
    labels = emb.metadata["label"]
    missing = int(labels.isna().sum())
    if missing:
        return (f"{missing} of {len(labels)} images have no label, so kNN, probes and retrieval were skipped "
                "(they need a label for every image); the prior check, grids (`infomax grid`) and the map "
                "(`infomax plot`) work without labels")
    return None


def margins(results: dict) -> dict[str, dict[str, float]]:
    """Per learned feature set, its score minus the best baseline's, per protocol both were scored
    on: {"y": {"knn_majority_k1": 0.011, ...}} (fractions; positive: the learned features win).
    Empty when there is no baseline."""
    base = {name: r for name, r in results.items() if r.get("kind") == "baseline"}
    out: dict[str, dict[str, float]] = {}
    for name, r in results.items():
        if r.get("kind") == "baseline" or not base:
            continue
        scored = {k: r[k] - max(b[k] for b in base.values() if k in b)
                  for k in HEADERS if k in r and any(k in b for b in base.values())}
        if scored:
            out[name] = scored
    return out


def margin_row(name: str, margin: dict[str, float], used: list[str]) -> str:
    """The table row 'learned − best baseline' of one feature set, in points (signed)."""
    cells = [f"{100 * margin[k]:+.2f}" if k in margin else "—" for k in used]
    return f"| {title(name)} − best baseline | | " + " | ".join(cells) + " |"


def markdown(report: dict) -> str:
    """eval.md: the results table, the protocols used, the prior check and the notes."""
    lines = [f"# Evaluation of `{report['embeddings']}`", ""]
    if report.get("gallery"):
        g, q = report["gallery"], report["queries"]
        lines += [f"Gallery: {g['split']} ({g['size']} images); queries: {q['split']} ({q['size']} images); "
                  f"{report.get('num_classes', '?')} classes. Top-1 accuracies and retrieval scores, in %.", ""]
    results = report.get("results", {})
    if results:
        used = [key for key in HEADERS if any(key in r for r in results.values())]
        lines.append("| features | dims | " + " | ".join(HEADERS[k] for k in used) + " |")
        lines.append("|---|---:|" + "---:|" * len(used))
        for name, r in results.items():
            cells = [f"{100 * r[k]:.2f}" if k in r else "—" for k in used]
            lines.append(f"| {title(name, r.get('kind', 'learned'))} | {r['dims']} | " + " | ".join(cells) + " |")
        lines += [margin_row(name, m, used) for name, m in margins(results).items()]
        lines += ["", "Protocols:", ""] + [f"- **{HEADERS[k]}**: {PROTOCOLS[k]}" for k in used] + [""]
    if report.get("prior"):
        lines += ["## Prior check", ""] + [f"- {line}" for line in prior_lines(report["prior"])]
        if report.get("prior_plot"):
            lines += ["", f"![μ against N(0, 1)]({report['prior_plot']})"]
        lines.append("")
    if report.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in report["notes"]] + [""]
    return "\n".join(lines)


def write_report(report: dict, out_dir: str | Path) -> tuple[Path, Path]:
    """Write eval.json and eval.md into out_dir atomically; returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in (("eval.json", json.dumps(report, indent=2)), ("eval.md", markdown(report))):
        paths.append(atomic_write(out / name, text))
    return paths[0], paths[1]
