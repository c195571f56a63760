"""Training logs: a CSV of every logged step, TensorBoard scalars, and a loss-curve PNG.

The CSV is always written. TensorBoard needs the '[tensorboard]' extra and the PNG matplotlib
(the '[eval]' extra); without them training runs the same and says once what is off.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from infomax.extras import missing_message

_said: set[str] = set()  # notes already printed by this process

# local_local and local_local_acc stay empty unless the local–local term is on, prior and
# prior_critic unless the prior is matched adversarially
COLUMNS = ["step", "epoch", "loss", "global", "local", "kl", "local_local", "prior", "prior_critic", "global_acc",
           "local_acc", "local_local_acc", "lr", "images_per_s", "elapsed_s"]


class RunLog:
    def __init__(self, run_dir: Path, resume_step: int | None = None, tensorboard: bool = True):
        self.path = run_dir / "log.csv"
        self.run_dir = run_dir
        if resume_step is not None and self.path.is_file():
            # keep the rows up to the checkpoint we resume from; later ones are replayed
            with open(self.path) as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        else:
            rows = []
        self.file = open(self.path, "w", newline="")
        self.writer = csv.DictWriter(self.file, fieldnames=COLUMNS)
        self.writer.writeheader()
        self.writer.writerows(rows)
        self.file.flush()
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                _note_once("tensorboard", missing_message("tensorboard", "tensorboard", "TensorBoard logging")
                           + f"; it is off, the log is in {self.path}")
            else:
                self.tb = SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=resume_step)

    def write(self, row: dict) -> None:
        self.writer.writerow({k: row.get(k, "") for k in COLUMNS})
        self.file.flush()
        if self.tb is not None:
            for key in COLUMNS[2:-1]:
                if key in row:
                    self.tb.add_scalar(f"train/{key}", row[key], row["step"])

    def close(self) -> Path | None:
        self.file.close()
        if self.tb is not None:
            self.tb.close()
        return plot_losses(self.path, self.run_dir / "loss.png")


def plot_losses(csv_path: Path, png_path: Path) -> Path | None:
    """Each loss term against the step, one panel per term."""
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return None
    try:
        import matplotlib
    except ImportError:  # the curves are optional; log.csv holds the numbers
        _note_once("matplotlib", missing_message("matplotlib", "eval", f"the loss-curve plot {png_path.name}") + "; skipped")
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [int(r["step"]) for r in rows]
    keys = [k for k in ("loss", "global", "local", "kl", "local_local", "prior", "prior_critic") if rows[0].get(k)]
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3))
    for ax, key in zip(axes, keys):
        ax.plot(steps, [float(r[key]) for r in rows])
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path


def _note_once(key: str, text: str) -> None:
    """Print a note on stderr the first time `key` comes up in this process."""
    if key not in _said:
        _said.add(key)
        print(f"train: note: {text}", file=sys.stderr, flush=True)
