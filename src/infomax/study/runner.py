"""Train, embed and evaluate a set of variants under one budget, and tabulate them.

Each variant is a list of `infomax train` flags; every run gets the same data, the same
wall-clock training budget and the same seeds. A run whose checkpoint and report already
exist is reused, so an interrupted study resumes where it stopped. A run whose loss diverges
is a result too: its message is kept in RUN/failed.txt, listed under the table, and the
study goes on (delete the run's folder to try it again).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from infomax.cli import build_parser
from infomax.errors import InfomaxError, TrainingDiverged
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


def run_command(argv: list[str]) -> None:
    """Run one `infomax` command in this process; its InfomaxError propagates with its message."""
    print(f"$ infomax {' '.join(argv)}", flush=True)
    args = build_parser().parse_args(argv)
    if args.func(args):
        raise InfomaxError(f"`infomax {' '.join(argv)}` failed; see the message above")


def budget_flags(minutes: float | None, steps: int | None) -> list[str]:
    """Equal wall-clock minutes, or equal optimizer steps (fair on a machine shared with other work)."""
    if steps is not None:
        return ["--max-steps", str(steps)]
    return ["--epochs", "100000", "--time-budget", str(minutes)]


def run_variant(name: str, flags: list[str], *, data: str, out: Path, budget: list[str], seed: int,
                precision: str, grid_seed: int = 0) -> None:
    """One variant and seed: train (on the budget), embed, eval, grid; nothing more once its
    training has diverged (now or in an earlier call)."""
    run = out / name / f"seed{seed}"
    emb = run / "embeddings"
    if (run / "failed.txt").is_file():
        return
    if not (run / "checkpoints" / "latest.json").is_file():
        try:
            run_command(["train", "--data", data, "--out", str(run), *budget, "--seed", str(seed),
                         "--precision", precision, "--no-progress", "--log-every", "100", *flags])
        except TrainingDiverged as exc:
            atomic_write(run / "failed.txt", f"{exc}\n")
            print(f"{name} seed {seed}: {exc}", flush=True)
            return
    if not (emb / "eval.json").is_file():
        run_command(["embed", "--checkpoint", str(run), "--out", str(emb), "--no-progress"])
        run_command(["eval", "--embeddings", str(emb), "--features", "y"])
    if not (run / "grid.png").is_file():
        run_command(["grid", "--embeddings", str(emb), "--seed", str(grid_seed), "--queries", "10",
                     "--out", str(run / "grid.png")])


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


def run_study(variants: dict[str, tuple[str, list[str]]], *, data: str, out: Path, minutes: float | None,
              steps: int | None, seeds: list[int], precision: str, title: str, run: list[str] | None = None) -> Path:
    """Runs the variants named in `run` (default: all) × seeds, then tabulates every variant of
    the study finished in OUT, with all of its seeds there (so a study can be run in parts):
    writes OUT/table.md, OUT/results.json and OUT/grids.png."""
    out.mkdir(parents=True, exist_ok=True)
    budget = budget_flags(minutes, steps)
    for name in run or list(variants):
        for s in seeds:
            run_variant(name, variants[name][1], data=data, out=out, budget=budget, seed=s, precision=precision)
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
