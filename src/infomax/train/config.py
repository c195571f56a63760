"""The run config: defaults < preset < config file (TOML/YAML) < command-line flags.

The resolved config is saved in the run folder and inside every checkpoint, so `embed`,
`eval` and `resume` need nothing else.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from infomax.errors import InfomaxError
from infomax.model.config import PRIORS
from infomax.objective.estimators import ESTIMATORS
from infomax.train.augment import parse_augment
from infomax.train.schedule import SCHEDULES


@dataclass
class TrainConfig:
    data: str = "digits"  # data spec, KIND:PATH[,key=value...]
    preset: str = "seed"
    epochs: int = 50
    max_steps: int | None = None  # stops at this global step (overrides epochs)
    time_budget: float | None = None  # minutes of training (start-up and data loading excluded)
    batch_size: int = 64
    lr: float = 1e-3
    lr_schedule: str = "constant"  # "constant" (reference) | "cosine" (decay to 0 over the run, see train/schedule.py)
    adam_eps: float = 1e-7  # Keras' Adam epsilon
    alpha: float = 0.5  # global MI weight
    beta: float = 1.5  # local MI weight
    gamma: float = 0.01  # prior term weight (the KL term, or the encoder's side of adversarial matching)
    prior: str = "kl"  # "kl" (reference: KL to N(0, I)) | "adversarial" (DIM's discriminator) | "none"
    delta: float = 0.0  # local–local MI weight (0: the term is off)
    multiscale: bool = False  # local MI also on the map one block before C
    attention: bool = False  # a self-attention block on the map one block before C
    negatives: str = "derangement"  # "derangement" (no image paired with itself) | "shuffle" | "all" (dot critic)
    estimator: str = "jsd"  # "jsd" (reference) | "infonce" | "dv" | "hellinger"
    augment: str = "none"  # "none" (reference) | "default" | "crop=pad,pad=4,flip=0.5,..." (see train/augment.py)
    views: int = 1  # 1 (reference) | 2: two augmented views, each scored against the other
    precision: str = "fp32"  # "fp32" | "bf16" (autocast)
    bn_recalibrate: int = 0  # after training, BatchNorm statistics from this many plain train images (0: off)
    seed: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N" | "mps"
    checkpoint_every: int = 1000  # steps
    log_every: int = 20  # steps
    deterministic: bool = False  # torch.use_deterministic_algorithms
    # model (the image size and channels come from the data)
    z_dim: int = 256
    channels: int = 256  # encoder width: channels of C and the head (earlier blocks halve it)
    head_convs: int = 2  # encoder depth after C: 3×3 convolutions before the global max-pool
    global_pairing: str = "zz"  # "zz" (reference: [z, z] vs [z, z']) | "xz" (paper: T(x, z))
    critic: str = "concat"  # "concat" (reference: MLP on [a, b]) | "dot" (embed each side, dot product)
    temperature: float = 0.0  # dot critic: 0 scores φ·ψ/√d, τ > 0 scores cos(φ, ψ)/τ
    init: str = "keras"  # "keras" (Glorot-uniform, zero bias) | "torch"
    bn_momentum: float = 0.01  # PyTorch convention; Keras' 0.99
    bn_eps: float = 1e-3
    kl_reduction: str = "mean"  # "mean" over dimensions (reference) | "sum" over dimensions

    def validate(self) -> None:
        problems = []
        for name in ("alpha", "beta", "gamma", "delta"):
            if getattr(self, name) < 0:
                problems.append(f"--{name} must be ≥ 0 (got {getattr(self, name)})")
        if self.alpha == 0 and self.beta == 0:
            problems.append("--alpha and --beta are both 0: nothing left to learn; set one above 0")
        if self.batch_size < 2:
            problems.append(f"--batch-size must be ≥ 2 for in-batch negatives (got {self.batch_size})")
        if self.epochs < 1 and self.max_steps is None and self.time_budget is None:
            problems.append(f"--epochs must be ≥ 1 (got {self.epochs})")
        if self.max_steps is not None and self.max_steps < 1:
            problems.append(f"--max-steps must be ≥ 1 (got {self.max_steps})")
        if self.time_budget is not None and self.time_budget <= 0:
            problems.append(f"--time-budget must be > 0 minutes (got {self.time_budget})")
        if self.lr <= 0:
            problems.append(f"--lr must be > 0 (got {self.lr})")
        if self.lr_schedule not in SCHEDULES:
            problems.append(f"lr_schedule must be one of {', '.join(SCHEDULES)} (got {self.lr_schedule!r})")
        if self.z_dim < 1:
            problems.append(f"--z-dim must be ≥ 1 (got {self.z_dim})")
        if self.precision not in ("fp32", "bf16"):
            problems.append(f"--precision must be fp32 or bf16 (got {self.precision!r})")
        if self.negatives not in ("derangement", "shuffle", "all"):
            problems.append(f"negatives must be derangement, shuffle or all (got {self.negatives!r})")
        elif self.negatives == "all" and self.critic != "dot":
            problems.append("negatives = all scores every pair of the batch and needs critic = dot")
        if self.estimator not in ESTIMATORS:
            problems.append(f"estimator must be one of {', '.join(ESTIMATORS)} (got {self.estimator!r})")
        if self.prior not in PRIORS:
            problems.append(f"prior must be one of {', '.join(PRIORS)} (got {self.prior!r})")
        if self.views not in (1, 2):
            problems.append(f"views must be 1 or 2 (got {self.views})")
        elif self.views == 2 and self.augment == "none":
            problems.append("views = 2 needs augment (two identical views add nothing): set augment = default")
        try:
            parse_augment(self.augment)
        except InfomaxError as exc:
            problems.append(str(exc))
        if self.bn_recalibrate < 0:
            problems.append(f"--bn-recalibrate must be ≥ 0 images (0: off; got {self.bn_recalibrate})")
        if self.checkpoint_every < 1 or self.log_every < 1:
            problems.append("checkpoint_every and log_every must be ≥ 1")
        if problems:
            raise InfomaxError("invalid settings: " + "; ".join(problems))


# Presets: the settings a preset changes from the defaults above, per data kind where they differ.
PRESETS: dict[str, dict[str, dict]] = {
    # The reference's settings: CIFAR-10 batch 64 for 50 epochs, Tiny ImageNet batch 100 for 100.
    "seed": {
        "*": {},
        "tiny-imagenet": {"batch_size": 100, "epochs": 100},
    },
    # Better features for the same compute (docs/better.md): two augmented views scored against
    # each other with InfoNCE over every pair of the batch, through dot-product critics, by an
    # encoder half as wide (2.3× the steps in the same time), BatchNorm statistics re-estimated
    # on plain images at the end.
    "recommended": {
        "*": {"estimator": "infonce", "critic": "dot", "negatives": "all", "augment": "default", "views": 2,
              "channels": 128, "bn_recalibrate": 10240},
        "tiny-imagenet": {"batch_size": 100, "epochs": 100},
    },
}


def preset_values(preset: str, data_kind: str) -> dict:
    if preset not in PRESETS:
        raise InfomaxError(f"unknown preset '{preset}'; choose one of: {', '.join(PRESETS)}")
    table = PRESETS[preset]
    return {**table.get("*", {}), **table.get(data_kind, {})}


def read_config_file(path: str | Path) -> dict:
    """A flat TOML or YAML mapping of TrainConfig fields (dashes or underscores)."""
    p = Path(path)
    if not p.is_file():
        raise InfomaxError(f"config file {p} does not exist")
    text = p.read_text()
    try:
        if p.suffix.lower() == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover
                import tomli as tomllib
            values = tomllib.loads(text)
        elif p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            values = yaml.safe_load(text) or {}
        else:
            raise InfomaxError(f"config file {p} must end in .toml, .yaml or .yml")
    except InfomaxError:
        raise
    except Exception as exc:
        raise InfomaxError(f"config file {p} could not be parsed: {exc}") from exc
    if not isinstance(values, dict):
        raise InfomaxError(f"config file {p} must hold a mapping of settings")
    return {k.replace("-", "_"): v for k, v in values.items()}


def _check_keys(values: dict, where: str) -> None:
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InfomaxError(f"{where}: unknown settings {unknown}; valid ones: {', '.join(sorted(known))}")


def resolve(data_kind: str, file_values: dict | None = None, flag_values: dict | None = None) -> TrainConfig:
    """Merge defaults < preset < file < flags into a validated TrainConfig."""
    file_values = dict(file_values or {})
    flag_values = {k: v for k, v in (flag_values or {}).items() if v is not None}
    _check_keys(file_values, "config file")
    _check_keys(flag_values, "flags")
    preset = flag_values.get("preset", file_values.get("preset", TrainConfig.preset))
    merged = {**preset_values(preset, data_kind), **file_values, **flag_values}
    cfg = TrainConfig(**merged)
    cfg.validate()
    return cfg


def to_dict(cfg: TrainConfig) -> dict:
    return asdict(cfg)


def from_dict(values: dict) -> TrainConfig:
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in values.items() if k in known})


def describe(cfg: TrainConfig) -> str:
    return json.dumps(to_dict(cfg), indent=2)

