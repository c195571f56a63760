"""Checkpoints: weights (safetensors), training state and the full run config, written atomically.

RUN_DIR/checkpoints/
  step-00001000/            one complete checkpoint
    model.safetensors       weights and BatchNorm buffers of the whole model (encoder + critics)
    state.pt                optimizer, step, epoch, position in the epoch, RNG states
    manifest.json           step, epoch, the resolved run config, sha256 of both files
  latest.json               {"dir": "step-00001000"}: replaced atomically after a checkpoint is complete

A checkpoint is written into a temporary folder and renamed into place, then `latest.json` is
swapped; a crash at any moment leaves the last complete checkpoint in force.

`save_encoder` writes an encoder-only step folder (model.safetensors with the encoder's weights
and the whitening of its feature,
manifest.json; no critics, no training state): what `embed`, `search`, `serve` and
`infomax.load` read, at a fraction of the size. The package ships such folders under
infomax/pretrained/NAME, named `pretrained:NAME` wherever a checkpoint is asked for.

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
PRETRAINED = Path(__file__).parent / "pretrained"  # encoder-only checkpoints shipped in the package
PREFIX = "pretrained:"


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
        if not self.state_path.is_file():
            raise InfomaxError(f"{self.path} holds only an encoder (no training state): it embeds, but a run "
                               "cannot resume from it; resume from the run folder that `infomax train` wrote")
        return torch.load(self.state_path, map_location="cpu", weights_only=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_checkpoint(run_dir: str | Path, *, config: dict, model: torch.nn.Module, state: dict, step: int, epoch: int,
                    weights: dict[str, torch.Tensor] | None = None) -> Path:
    """Write one complete checkpoint and make it the latest; prune older ones. `weights`: the
    tensors to save instead of the model's state dict (the averaged weights, train/average.py)."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:08d}"
    tmp = root / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    weights = {k: v.detach().to("cpu").contiguous() for k, v in (model.state_dict() if weights is None else weights).items()}
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


def pretrained_names() -> list[str]:
    """The encoders shipped in the package, as NAME in `pretrained:NAME`."""
    return sorted(p.name for p in PRETRAINED.glob("[!.]*") if (p / MANIFEST).is_file())


def checkpoint_ref(path: str | Path) -> str:
    """How a checkpoint is recorded (in embed.json, index.json): `pretrained:NAME` as it is, which
    holds on every machine; a folder as its absolute path."""
    text = str(path)
    return text if text.startswith(PREFIX) else str(Path(text).expanduser().resolve())


def find_checkpoint(path: str | Path) -> Path:
    """A run folder (its latest checkpoint), a step folder or `pretrained:NAME` -> the step folder."""
    text = str(path)
    if text.startswith(PREFIX):
        name, names = text[len(PREFIX):], pretrained_names()
        if name not in names:
            raise InfomaxError(f"no pretrained encoder named '{name}'; the package ships "
                               f"{', '.join(PREFIX + n for n in names) or 'none'}")
        return PRETRAINED / name
    p = Path(text).expanduser()
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


def save_encoder(checkpoint: str | Path, out: str | Path, *, about: dict | None = None,
                 weights: dict[str, torch.Tensor] | None = None, config: dict | None = None) -> Path:
    """Write the encoder of `checkpoint` (and the whitening of its feature) as an encoder-only step
    folder at `out`, atomically: an existing folder is set aside, replaced, then removed, so a
    crash leaves one of the two complete. `about` (e.g. the training command and its eval
    figures; default: the one `checkpoint` keeps) goes into the manifest; `weights` and `config`
    replace the checkpoint's. Returns `out`."""
    ckpt = load_checkpoint(checkpoint)
    if about is None:
        about = json.loads((ckpt.path / MANIFEST).read_text()).get("about", {})
    weights, config = ckpt.weights if weights is None else weights, config or ckpt.config
    out = Path(out)
    tmp = out.parent / f".tmp-{out.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    weights = {k: v for k, v in weights.items() if k.startswith(("encoder.", "whitening."))}
    save_file(weights, str(tmp / WEIGHTS), metadata={"config": json.dumps(config)})
    manifest = {"format": 1, "step": ckpt.step, "epoch": ckpt.epoch, "config": config, "encoder_only": True,
                "about": about, "sha256": {WEIGHTS: _sha256(tmp / WEIGHTS)}}
    atomic_write(tmp / MANIFEST, json.dumps(manifest, indent=2))
    old = out.parent / f".old-{out.name}-{os.getpid()}"
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)
    return out


def config_difference(old: dict, new: dict) -> list[str]:
    """Lines 'key: old -> new' for every setting that differs (flattened one level)."""
    lines = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            lines.append(f"{key}: {old.get(key)!r} -> {new.get(key)!r}")
    return lines
