"""Checkpoints: weights (safetensors), training state and the full run config, written atomically.

RUN_DIR/checkpoints/
  step-00001000/            one complete checkpoint
    model.safetensors       weights and BatchNorm buffers of the whole model (encoder + critics)
    state.pt                optimizer, step, epoch, position in the epoch, RNG states
    manifest.json           step, epoch, the resolved run config, sha256 of both files
  latest.json               {"dir": "step-00001000"}: replaced atomically after a checkpoint is complete

A checkpoint is written into a temporary folder and renamed into place, then `latest.json` is
swapped; a crash at any moment leaves the last complete checkpoint in force.

Training writes checkpoints; `embed`, `eval`, `serve` and resuming read them (this module needs
only torch and safetensors, so reading one never imports the trainer).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from infomax.atomic import atomic_write
from infomax.errors import InfomaxError

WEIGHTS, STATE, MANIFEST, LATEST = "model.safetensors", "state.pt", "manifest.json", "latest.json"
KEEP = 2  # complete checkpoints kept on disk


@dataclass
class Checkpoint:
    path: Path  # the step folder
    config: dict  # resolved run config: {"train": ..., "model": ..., "data": ...}
    weights: dict[str, torch.Tensor]
    step: int
    epoch: int
    state_path: Path

    def training_state(self) -> dict:
        """Optimizer, position and RNG states (only needed to resume)."""
        return torch.load(self.state_path, map_location="cpu", weights_only=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_checkpoint(run_dir: str | Path, *, config: dict, model: torch.nn.Module, state: dict, step: int, epoch: int) -> Path:
    """Write one complete checkpoint and make it the latest; prune older ones."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:08d}"
    tmp = root / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    weights = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(tmp / WEIGHTS), metadata={"config": json.dumps(config)})
    torch.save(state, tmp / STATE)
    manifest = {
        "format": 1,
        "step": step,
        "epoch": epoch,
        "config": config,
        "sha256": {WEIGHTS: _sha256(tmp / WEIGHTS), STATE: _sha256(tmp / STATE)},
    }
    atomic_write(tmp / MANIFEST, json.dumps(manifest, indent=2))
    final = root / name
    if final.exists():  # the same step written again (e.g. the end of a resumed run):
        atomic_write(root / LATEST, json.dumps({"dir": tmp.name}))  # the new copy is in force while
        shutil.rmtree(final)  # the old one goes, so a crash here leaves a complete latest checkpoint
    os.replace(tmp, final)
    atomic_write(root / LATEST, json.dumps({"dir": name}))
    _prune(root, keep=name)
    return final


def _prune(root: Path, keep: str) -> None:
    steps = sorted(p for p in root.glob("step-*") if p.is_dir())
    for old in steps[:-KEEP]:
        if old.name != keep:
            shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob(".tmp-*"):  # left by a crash mid-write
        shutil.rmtree(stale, ignore_errors=True)


def find_checkpoint(path: str | Path) -> Path:
    """A run folder (its latest checkpoint) or a step folder -> the step folder."""
    p = Path(path)
    if (p / MANIFEST).is_file():
        return p
    latest = p / "checkpoints" / LATEST
    if not p.exists():
        raise InfomaxError(f"checkpoint {p} does not exist; pass a run folder written by `infomax train`")
    if not latest.is_file():
        raise InfomaxError(f"{p} holds no checkpoint (no checkpoints/{LATEST}); train first with `infomax train --out {p}`")
    try:
        name = json.loads(latest.read_text())["dir"]
    except (ValueError, KeyError) as exc:
        raise InfomaxError(f"{latest} is damaged; pass a step folder from {p / 'checkpoints'} instead") from exc
    return p / "checkpoints" / name


def weights_sha256(path: str | Path) -> str | None:
    """sha256 of the weights a checkpoint's manifest records (identifies the exact weights), or None."""
    try:
        manifest = json.loads((find_checkpoint(path) / MANIFEST).read_text())
    except (OSError, ValueError, InfomaxError):
        return None
    return manifest.get("sha256", {}).get(WEIGHTS)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load and verify a checkpoint; a damaged one is refused, never loaded silently."""
    step_dir = find_checkpoint(path)
    others = sorted(q.name for q in step_dir.parent.glob("step-*") if q != step_dir)
    hint = f" Older checkpoints in {step_dir.parent}: {', '.join(others)}." if others else ""
    try:
        manifest = json.loads((step_dir / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise InfomaxError(f"checkpoint {step_dir} is corrupt: unreadable {MANIFEST} ({exc}).{hint}") from exc
    for name, expected in manifest.get("sha256", {}).items():
        f = step_dir / name
        if not f.is_file() or _sha256(f) != expected:
            raise InfomaxError(f"checkpoint {step_dir} is corrupt: {name} is missing or fails its sha256 check.{hint}")
    weights = load_file(str(step_dir / WEIGHTS))
    return Checkpoint(
        path=step_dir,
        config=manifest["config"],
        weights=weights,
        step=int(manifest["step"]),
        epoch=int(manifest["epoch"]),
        state_path=step_dir / STATE,
    )


def config_difference(old: dict, new: dict) -> list[str]:
    """Lines 'key: old -> new' for every setting that differs (flattened one level)."""
    lines = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            lines.append(f"{key}: {old.get(key)!r} -> {new.get(key)!r}")
    return lines
