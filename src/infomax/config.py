"""Config: every setting of a run in five groups, validated when constructed.

    model      the encoder (model/config.py)            encoder, z_dim, channels, ...
    objective  the DIM objective (objective/config.py)  estimator, critic, negatives, α β γ δ, ...
    optim      the optimizer and the run's length       lr, batch_size, epochs, time_budget, ...
    data       how training reads its images            augment, views
    run        where and how it runs                    seed, device, precision, checkpoints, ...

Values merge as defaults < preset < config file < flags. Every key is unique across the groups,
so a flag (--lr), a flat config-file key (lr = 1e-3), a dotted key (optim.lr) and a TOML table
([optim] lr = 1e-3) all name the same setting. The data set is not a setting: it carries its own
spec, and its image size and channels fill model.image_size and model.in_channels.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path

from infomax.choices import at_least, one_of, require
from infomax.device import usable_cores
from infomax.errors import InfomaxError
from infomax.model.config import LEGACY_OBJECTIVE_KEYS, ModelConfig
from infomax.model.whitening import check_power
from infomax.objective.config import ObjectiveConfig
from infomax.train.augment import parse_augment
from infomax.train.schedule import SCHEDULES

PRECISIONS = ("fp32", "bf16")


@dataclass
class OptimConfig:
    lr: float = 1e-3
    lr_schedule: str = "constant"  # constant (reference) | cosine | wsd (to 0 over the run / its last 20 %)
    adam_eps: float = 1e-7  # Keras' Adam epsilon (the reference)
    batch_size: int = 64  # the images of one step
    epochs: int = 50
    max_steps: int | None = None  # stops at this global step (overrides epochs)
    time_budget: float | None = None  # minutes of training (start-up and data loading excluded)
    ema: float = 0.0  # weights kept: their moving average with this decay, e.g. 0.99 (0: the last; train/average.py)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        at_least("optim.lr", self.lr, 0, strict=True)
        one_of("optim.lr_schedule", self.lr_schedule, SCHEDULES)
        at_least("optim.adam_eps", self.adam_eps, 0, strict=True)
        at_least("optim.batch_size", self.batch_size, 2, why="in-batch negatives need two images")
        at_least("optim.epochs", self.epochs, 1)
        if self.max_steps is not None:
            at_least("optim.max_steps", self.max_steps, 1)
        if self.time_budget is not None:
            at_least("optim.time_budget", self.time_budget, 0, strict=True, why="minutes")
        at_least("optim.ema", self.ema, 0, why="a decay from 0 (off) to below 1")
        require(self.ema < 1, f"optim.ema must be below 1 (a decay; 0 turns it off), got {self.ema}")


def default_workers() -> int:
    """Processes decoding a webdataset stream when none is set: 0 (read in the training process)
    where this process may use 2 cores or fewer, as a reading process then takes its CPU time from
    the training step (docs/data.md: 0.97 of the in-memory speed against 0.85 with one worker,
    npy shards on 2 cores); 2 where there are cores to spare."""
    return 0 if usable_cores() <= 2 else 2


@dataclass
class DataConfig:
    augment: str = "none"  # none (reference) | default | crop=pad,pad=4,flip=0.5,... (train/augment.py)
    views: int = 1  # 1 (reference) | 2: two augmented views, each scored against the other
    small_crops: int = 0  # multi-crop: M small crops of each image besides the views (train/multicrop.py)
    small_crop_size: int = 0  # their side in pixels (0: half the image's)
    workers: int = field(default_factory=default_workers)  # stream decoding processes (0: in the training process)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        one_of("data.views", self.views, (1, 2))
        at_least("data.workers", self.workers, 0)
        at_least("data.small_crops", self.small_crops, 0)
        at_least("data.small_crop_size", self.small_crop_size, 0)
        parse_augment(self.augment)
        require(self.views == 1 or self.augment != "none",
                "data.views = 2 needs data.augment (two identical views add nothing): set augment = 'default'")
        require(self.small_crops == 0 or self.augment != "none",
                "data.small_crops needs data.augment (its flip, jitter and grayscale): set augment = 'default'")


def flips(augment: str) -> bool:
    """Whether the augmentation `augment` (data.augment) flips images left-right."""
    parsed = parse_augment(augment)  # None for "none"
    return parsed is not None and parsed.flip > 0


@dataclass
class RunConfig:
    seed: int = 0
    device: str = "auto"  # auto (cuda, else mps, else cpu) | cpu | cuda | cuda:N | mps
    precision: str = "fp32"  # fp32 | bf16 (autocast)
    bn_recalibrate: int = 0  # after training, BatchNorm statistics from this many plain train images (0: off)
    whiten: int = 0  # after that, whiten μ by its covariance over this many plain train images (0: off)
    whiten_power: float = 0.25  # the power p of y = (μ − m)·C^(−p): 0.5 whitens fully
    mirror: bool = False  # the kept feature averages μ over the image and its left-right mirror (model/mirror.py)
    checkpoint_every: int = 1000  # steps
    log_every: int = 20  # steps
    deterministic: bool = False  # torch.use_deterministic_algorithms
    sync_batchnorm: bool = True  # several processes: BatchNorm statistics over the global batch

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        one_of("run.precision", self.precision, PRECISIONS)
        at_least("run.bn_recalibrate", self.bn_recalibrate, 0, why="images; 0 turns it off")
        at_least("run.whiten", self.whiten, 0, why="images; 0 turns it off")
        check_power(self.whiten_power, "run.whiten_power")
        at_least("run.checkpoint_every", self.checkpoint_every, 1)
        at_least("run.log_every", self.log_every, 1)


GROUPS = {"model": ModelConfig, "objective": ObjectiveConfig, "optim": OptimConfig, "data": DataConfig,
          "run": RunConfig}
GROUP_OF = {f.name: group for group, cls in GROUPS.items() for f in dataclasses.fields(cls)}  # key -> group

# The one preset table: what each preset changes from the defaults, per data kind where they differ.
PRESETS: dict[str, dict[str, dict]] = {
    # The reference's settings (the defaults): CIFAR-10 batch 64 for 50 epochs, Tiny ImageNet batch 100 for 100.
    "seed": {
        "*": {},
        "tiny-imagenet": {"batch_size": 100, "epochs": 100},
    },
    # Better features for the same compute (docs/better.md): two augmented views scored against
    # each other with InfoNCE over every pair of the batch, through dot-product critics, by an
    # encoder half as wide, BatchNorm statistics re-estimated on plain images at the end, and the
    # kept feature μ averaged over each image and its mirror, then partially whitened by its
    # covariance over plain images.
    "recommended": {
        "*": {"estimator": "infonce", "critic": "dot", "negatives": "all", "augment": "default", "views": 2,
              "channels": 128, "bn_recalibrate": 10240, "whiten": 10240, "whiten_power": 0.3, "mirror": True},
        "tiny-imagenet": {"batch_size": 100, "epochs": 100},
    },
}
DEFAULT_PRESET = "recommended"

# What a time budget given without epochs or max_steps changes (docs/training.md): the budget
# alone ends the run, and `recommended` trains the seed's width once the budget buys the wider
# encoder WIDE_FROM_EPOCHS passes over the training images, counted at WIDE_IMAGES_PER_S images
# per second of 32×32 views and a quarter as many at 64×64 (docs/better.md#the-time-budget: width
# 256 tied with 128 at 9 such passes, CIFAR-10 for ten minutes, and won at 18 and 54, CIFAR-10 for
# twenty and sixty, and at 22, Tiny ImageNet (mini) for ten).
UNTIL_THE_BUDGET = 1_000_000  # epochs
WIDE_FROM_EPOCHS = 15
WIDE_IMAGES_PER_S = 750  # width 256 on 32×32 views in bf16 on 2 CPU cores


def budget_epochs(minutes: float, image_size: int, train_images: int) -> float:
    """The passes over train_images images of image_size² pixels that `minutes` buy the wider
    encoder at WIDE_IMAGES_PER_S images of 32² pixels per second (a step's cost follows the pixels)."""
    return minutes * 60 * WIDE_IMAGES_PER_S * (32 / image_size) ** 2 / max(train_images, 1)


def for_time_budget(preset: str, minutes: float | None, image_size: int | None,
                    encoder: str = ModelConfig.encoder, train_images: int | None = None) -> dict:
    """The settings a time budget of `minutes` adds to `preset` for train_images images of
    image_size² pixels (either None: unknown, the width stays): epochs without a cap, and the seed's
    channels (256) for `recommended`'s cnn encoder once the budget buys it WIDE_FROM_EPOCHS passes."""
    if minutes is None:
        return {}
    wide = (preset == "recommended" and encoder == "cnn" and image_size is not None and train_images is not None
            and budget_epochs(minutes, image_size, train_images) >= WIDE_FROM_EPOCHS)
    return {"epochs": UNTIL_THE_BUDGET, **({"channels": ModelConfig.channels} if wide else {})}  # the seed's


# `recommended` trains the cnn on views at half the side of images this large and larger, and
# embeds them at their own side (docs/better.md#smaller-training-views): on Tiny ImageNet (mini),
# 64×64, ten minutes on 2 CPU cores, 32-pixel views buy 1.7 to 2.2 times the steps, and the
# features of the 64-pixel images score 24.04 % weighted kNN against 20.83 trained at 64 (seeds 0, 1).
HALF_SIDE_FROM = 64


def for_image_size(preset: str, image_size: int | None, encoder: str = ModelConfig.encoder) -> dict:
    """The settings images of image_size² pixels add to `preset` (None: unknown, nothing):
    `recommended`'s cnn encoder trains at half the side (model.train_size) from HALF_SIDE_FROM px."""
    if preset == "recommended" and encoder == "cnn" and image_size is not None and image_size >= HALF_SIDE_FROM:
        return {"train_size": image_size // 2}
    return {}


def preset_values(preset: str, data_kind: str = "*") -> dict:
    """The flat settings a preset sets for a data kind."""
    one_of("preset", preset, PRESETS)
    table = PRESETS[preset]
    return {**table["*"], **table.get(data_kind, {})}


def flatten(values: dict) -> dict:
    """Flat keys from flat, dotted ("optim.lr") or nested ({"optim": {"lr": ...}}) ones, dashes
    read as underscores. A key in the wrong group, or in none, is an error naming the valid keys."""
    flat = {}
    for key, value in values.items():
        key = key.replace("-", "_")
        group, _, name = key.rpartition(".")
        if key == "data" and isinstance(value, str):
            raise InfomaxError(f"data = {value!r}: the data set is not a setting; pass it with --data "
                               "(infomax.load_data in Python)")
        if not group and key in GROUPS and isinstance(value, dict):
            for k, v in value.items():
                flat.update(flatten({f"{key}.{k}": v}))
            continue
        if name in LEGACY_OBJECTIVE_KEYS and name not in GROUP_OF:
            continue  # older versions kept these in the model group; ObjectiveConfig.of_run reads them
        if name == "preset" and not group:
            flat[name] = value
            continue
        if name in GROUP_OF and group and GROUP_OF[name] != group:
            raise InfomaxError(f"unknown setting '{key}': {name} belongs to {GROUP_OF[name]} ({GROUP_OF[name]}.{name})")
        if name not in GROUP_OF:
            valid = ", ".join(sorted(f"{g}.{k}" for k, g in GROUP_OF.items()))
            raise InfomaxError(f"unknown setting '{key}'; valid settings: preset, {valid}")
        flat[name] = value
    return flat


@dataclass
class Config:
    """A whole run's settings. Groups not given are filled from the preset (and `data_kind`'s
    entry of it), so Config(preset="recommended") is the recommended run."""

    preset: str = DEFAULT_PRESET
    model: ModelConfig = field(default=None)  # type: ignore[assignment]
    objective: ObjectiveConfig = field(default=None)  # type: ignore[assignment]
    optim: OptimConfig = field(default=None)  # type: ignore[assignment]
    data: DataConfig = field(default=None)  # type: ignore[assignment]
    run: RunConfig = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        values = preset_values(self.preset)
        for group, cls in GROUPS.items():
            if getattr(self, group) is None:
                setattr(self, group, cls(**{k: v for k, v in values.items() if GROUP_OF[k] == group}))
        self.validate()

    def validate(self) -> Config:
        one_of("preset", self.preset, PRESETS)
        for group in GROUPS:
            getattr(self, group).validate()
        require(not self.objective.multiscale or self.model.encoder == "cnn",
                f"objective.multiscale scores the map one block before C, which only model.encoder = 'cnn' "
                f"returns (got {self.model.encoder!r}); set multiscale = false or encoder = 'cnn'")
        require(not self.run.mirror or flips(self.data.augment),
                f"run.mirror averages the feature over each image and its left-right mirror, but data.augment "
                f"({self.data.augment!r}) never flips, so the encoder did not learn to treat the two alike; "
                f"set mirror = false (--no-mirror) or augment with flip > 0")
        return self

    @classmethod
    def build(cls, preset: str | None = None, data_kind: str = "*", **settings) -> Config:
        """defaults < preset (for the data kind) < settings (flat, dotted or nested keys)."""
        flat = flatten(settings)
        preset = preset or flat.pop("preset", None) or DEFAULT_PRESET
        flat.pop("preset", None)
        merged = {**preset_values(preset, data_kind), **flat}
        if "mirror" not in flat and merged.get("mirror") and not flips(merged.get("augment", DataConfig.augment)):
            merged["mirror"] = False  # a preset's mirror follows the augmentation: no flips, no mirror
        groups = {g: cls_(**{k: v for k, v in merged.items() if GROUP_OF[k] == g}) for g, cls_ in GROUPS.items()}
        return cls(preset=preset, **groups)

    def replace(self, **settings) -> Config:
        """A copy with some settings changed (flat, dotted or nested keys), validated."""
        flat = flatten(settings)
        return Config.build(flat.pop("preset", self.preset), **{**self.to_flat(), **flat})

    def to_flat(self) -> dict:
        return {k: v for g in GROUPS for k, v in dataclasses.asdict(getattr(self, g)).items()}

    def to_dict(self) -> dict:
        return {"preset": self.preset, **{g: dataclasses.asdict(getattr(self, g)) for g in GROUPS}}

    @classmethod
    def from_dict(cls, values: dict) -> Config:
        """From to_dict's output, or an older version's flat settings."""
        values = {k: v for k, v in values.items() if k != "data" or isinstance(v, dict)}  # old: the data spec
        flat = flatten(values)
        return cls.build(flat.pop("preset", "seed"), **flat)


def resolve(data_kind: str, file_values: dict | None = None, flag_values: dict | None = None,
            image_size: int | None = None, train_images: int | None = None) -> Config:
    """defaults < preset < what the image size sets (for_image_size) < what a time budget given
    without epochs or max_steps sets (for_time_budget, for the training views' side and the
    number of training images) < file < flags (flags that are None are not set)."""
    file_values = flatten(dict(file_values or {}))
    flag_values = flatten({k: v for k, v in (flag_values or {}).items() if v is not None})
    merged = {**file_values, **flag_values}
    preset = merged.pop("preset", None) or DEFAULT_PRESET
    encoder = merged.get("encoder", preset_values(preset, data_kind).get("encoder", ModelConfig.encoder))
    sized = for_image_size(preset, image_size, encoder)
    budget = {}
    if merged.get("epochs") is None and merged.get("max_steps") is None:  # the time budget is the length
        side = merged.get("train_size", sized.get("train_size", 0)) or image_size
        budget = for_time_budget(preset, merged.get("time_budget"), side, encoder, train_images)
    return Config.build(preset, data_kind, **{**sized, **budget, **merged})


def read_config_file(path: str | Path) -> dict:
    """The settings in a TOML or YAML file: flat keys, dotted keys or one table per group."""
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
    try:
        return flatten(values)
    except InfomaxError as exc:
        raise InfomaxError(f"config file {p}: {exc}") from exc
