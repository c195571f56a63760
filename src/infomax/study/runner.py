"""Train, embed and evaluate a set of variants under one budget, and tabulate them.

Each variant is a dict of settings (any key of infomax.config, preset included); every run gets
the same data, the same wall-clock training budget and the same seeds. A run whose checkpoint and report already
exist is reused, so an interrupted study resumes where it stopped. A run whose loss diverges
is a result too: its message is kept in RUN/failed.txt, listed under the table, and the
study goes on (delete the run's folder to try it again).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from infomax.errors import TrainingDiverged
from infomax.atomic import atomic_write

# (eval.json key, column title), all on the μ features ("y")
COLUMNS = [
    ("knn_weighted_k200", "kNN w200"),
    ("knn_majority_k1", "kNN 1"),
    ("knn_majority_k20", "kNN 20"),
    ("linear_probe", "linear"),
    ("precision@10", "P@10"),
    ("map@100", "mAP@100"),
]


def budget_settings(minutes: float | None, steps: int | None) -> dict:
    """Equal wall-clock minutes, or equal optimizer steps (fair on a machine shared with other work)."""
    if steps is not None:
        return {"steps": steps}
    return {"minutes": minutes}


def run_variant(name: str, settings: dict, *, data, out: Path, budget: dict, seed: int, precision: str,
                grid_seed: int = 0, probe_epochs: int | None = None) -> None:
    """One variant and seed: train (on the budget), embed, eval, grid; nothing more once its
    training has diverged (now or in an earlier call). data: a spec, or a Dataset loaded once."""
    import infomax
    from infomax.embed.run import embed_to_folder
    from infomax.eval.run import evaluate, grid

    run = out / name / f"seed{seed}"
    emb = run / "embeddings"
    if (run / "failed.txt").is_file():
        return
    if not (run / "checkpoints" / "latest.json").is_file():
        settings = {"precision": precision, **settings, "seed": seed, "log_every": 100}
        print(f"== {name} seed {seed}: {settings}", flush=True)
        try:
            infomax.fit(data, out=run, progress=False, **budget, **settings)
        except TrainingDiverged as exc:
            atomic_write(run / "failed.txt", f"{exc}\n")
            print(f"{name} seed {seed}: {exc}", flush=True)
            return
    if not (emb / "eval.json").is_file():
        embed_to_folder(run, emb, data=getattr(data, "spec", data), progress=False, replace=True)
        evaluate(emb, features=["y"], probe_epochs=probe_epochs)
    if not (run / "grid.png").is_file():
        grid(emb, run / "grid.png", seed=grid_seed, queries=10)


def run_result(run: Path) -> dict:
    """The eval results on y of one finished run folder, with its number of steps."""
    report = json.loads((run / "embeddings" / "eval.json").read_text())
    steps = json.loads((run / "checkpoints" / "latest.json").read_text())["dir"].split("-")[1]
    return {**report["results"]["y"], "steps": int(steps)}


def _seed_runs(out: Path, name: str) -> dict[int, Path]:
    """{seed: run folder} of a variant, in seed order."""
    runs = {int(p.name[4:]): p for p in (out / name).glob("seed*") if p.name[4:].isdigit()}
    return dict(sorted(runs.items()))


def finished_seeds(out: Path, name: str) -> list[int]:
    """Seeds of a variant whose run, evaluation and grid are all in OUT."""
    return [s for s, p in _seed_runs(out, name).items()
            if (p / "embeddings" / "eval.json").is_file() and (p / "grid.png").is_file()]


def failures(out: Path, name: str) -> dict[int, str]:
    """{seed: first clause of the message} for the runs of a variant that diverged."""
    return {s: (p / "failed.txt").read_text().split(";")[0].strip()
            for s, p in _seed_runs(out, name).items() if (p / "failed.txt").is_file()}


def summarize(values: list[float]) -> str:
    """'mean ± spread' in %, spread = half the range (exact for two seeds)."""
    mean = 100 * statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.2f}"
    return f"{mean:.2f} ± {100 * (max(values) - min(values)) / 2:.2f}"


def table(results: dict[str, list[dict]], descriptions: dict[str, str]) -> str:
    """Markdown table: one row per variant, mean ± spread over seeds."""
    lines = ["| variant | what | steps | " + " | ".join(t for _, t in COLUMNS) + " |",
             "|---|---|---:|" + "---:|" * len(COLUMNS)]
    for name, runs in results.items():
        steps = "/".join(str(r["steps"]) for r in runs)
        cells = [summarize([r[k] for r in runs]) if all(k in r for r in runs) else "—" for k, _ in COLUMNS]
        lines.append(f"| {name} | {descriptions[name]} | {steps} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def side_by_side(images: dict[str, Path], path: Path, columns: int = 4) -> Path:
    """The grids of every variant next to each other, each under its variant's name, in rows
    of at most `columns` grids."""
    from PIL import Image, ImageDraw, ImageFont

    pictures = [(name, Image.open(p).convert("RGB")) for name, p in images.items()]
    rows = [pictures[i : i + columns] for i in range(0, len(pictures), columns)]
    gap, title = 16, 28
    font = ImageFont.load_default(size=20)
    width = max(sum(im.width for _, im in row) + gap * (len(row) - 1) for row in rows)
    heights = [max(im.height for _, im in row) + title for row in rows]
    canvas = Image.new("RGB", (width, sum(heights) + gap * (len(rows) - 1)), "white")
    draw = ImageDraw.Draw(canvas)
    y = 0
    for row, height in zip(rows, heights):
        x = 0
        for name, im in row:
            draw.text((x + 4, y + 4), name, fill="black", font=font)
            canvas.paste(im, (x, y + title))
            x += im.width + gap
        y += height + gap
    canvas.save(path)
    return path


def run_study(variants: dict[str, tuple[str, dict]], *, data: str, out: Path, minutes: float | None,
              steps: int | None, seeds: list[int], precision: str, title: str, run: list[str] | None = None,
              probe_epochs: int | None = None) -> Path:
    """Runs the variants named in `run` (default: all) × seeds, then tabulates every variant of
    the study finished in OUT, with all of its seeds there (so a study can be run in parts):
    writes OUT/table.md, OUT/results.json and OUT/grids.png. probe_epochs: as `infomax eval
    --probe-epochs` (default: the probes' fixed budget)."""
    import infomax

    out.mkdir(parents=True, exist_ok=True)
    budget = budget_settings(minutes, steps)
    names = run or list(variants)
    pending = [(n, s) for n in names for s in seeds if not (out / n / f"seed{s}" / "grid.png").is_file()]
    dataset = infomax.load_data(data) if pending else data  # decoded once for every run
    for name, s in pending:
        run_variant(name, variants[name][1], data=dataset, out=out, budget=budget, seed=s, precision=precision,
                    probe_epochs=probe_epochs)
    done = {name: finished_seeds(out, name) for name in variants}
    results = {name: [run_result(out / name / f"seed{s}") for s in found] for name, found in done.items() if found}
    descriptions = {name: desc for name, (desc, _) in variants.items()}
    (out / "results.json").write_text(json.dumps(results, indent=2))
    grids = out / "grids.png"
    if results:
        side_by_side({name: out / name / f"seed{done[name][0]}" / "grid.png" for name in results}, grids)
    runs = ", ".join(f"{name} {'/'.join(map(str, done[name]))}" for name in results)
    failed = [f"- {name} seed {s} ({descriptions[name]}): {msg}" for name in variants
              for s, msg in failures(out, name).items()]
    text = "\n".join([
        f"# {title}", "",
        f"Data `{data}`; each run trained for "
        f"{f'{steps} steps' if steps is not None else f'{minutes:g} minutes'} ({precision}); seeds: {runs}; "
        "scores on the μ features, gallery = train split, queries = held-out split, in % "
        "(mean ± half the range over seeds).", "",
        table(results, descriptions), "",
        *(["Runs that diverged (not in the table):", "", *failed, ""] if failed else []),
        f"![nearest neighbours of the same queries for every variant (its first seed)]({grids.name})", "",
    ])
    (out / "table.md").write_text(text)
    print(text)
    return out / "table.md"
