"""ModelConfig: every architectural choice of the encoder, with the reference's settings as defaults."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from infomax.choices import at_least, known_keys, one_of, require
from infomax.errors import InfomaxError

# Smallest image the encoder takes: 9 px pools to 5 and then 3 (two blocks).
MIN_IMAGE_SIZE = 9
FEATURE_SIZE = 4  # the largest side of the local feature map C (3 or 4)

INITS = ("keras", "torch")
ENCODERS = ("cnn", "resnet18")  # the registry's names (model/encoders.py); a module passed in is "custom"

# The objective's keys that older run configs kept in the model group (read by from_dict).
LEGACY_OBJECTIVE_KEYS = ("critic", "temperature", "global_pairing", "multiscale", "local_local", "prior",
                         "kl_reduction", "critic_hidden")


def num_blocks_for(image_size: int) -> int | None:
    """The fewest n >= 2 halvings (2×2 max-pool, ceil_mode) that bring image_size to a side of at
    most 4: exactly 4 for sizes 3·2^n+1 … 4·2^n (the reference's 32 -> 4×4), 3 for the sizes
    between (96 -> 3×3); None below MIN_IMAGE_SIZE."""
    if image_size < MIN_IMAGE_SIZE:
        return None
    n = 2
    while -(-image_size // 2**n) > FEATURE_SIZE:
        n += 1
    return n


@dataclass
class ModelConfig:
    """The encoder's architecture. Defaults reproduce the reference (preset "seed"); the critics
    belong to the objective (objective/config.py).

    bn_momentum follows PyTorch's convention (weight of the new batch): 0.01 is Keras'
    momentum 0.99. `channels` is the width of the last downsampling block, of C, and of the
    head convolutions (the reference ties it to z_dim; both are 256).
    """

    encoder: str = "cnn"  # cnn (the reference's) | resnet18 (CIFAR-style ResNet-18)
    image_size: int = 32  # from the data: the side of the images the encoder embeds
    train_size: int = 0  # cnn: the side of the training views, 0: image_size (the blocks are counted for it)
    in_channels: int = 3  # from the data
    z_dim: int = 256
    channels: int = 256  # cnn: width of C and the head (earlier blocks halve it); resnet18 has its own (64 to 512)
    head_convs: int = 2  # cnn: 3×3 convolutions after C, before the global max-pool
    attention: bool = False  # cnn: a self-attention block on the map one block before C (8×8 for 32 px)
    init: str = "keras"  # keras (Glorot-uniform, zero bias) | torch (PyTorch's defaults)
    bn_momentum: float = 0.01  # PyTorch convention: Keras' 0.99
    bn_eps: float = 1e-3
    leaky_slope: float = 0.2

    @property
    def train_side(self) -> int:
        """The side of the images the encoder trains on: train_size, or image_size (0)."""
        return self.train_size or self.image_size

    @property
    def num_blocks(self) -> int:
        n = num_blocks_for(self.train_side)
        if n is None:
            what = "training size" if self.train_size else "image size"
            raise InfomaxError(
                f"{what} {self.train_side} is too small for the encoder: it needs at least "
                f"{MIN_IMAGE_SIZE} pixels (load the data with size=N, N ≥ {MIN_IMAGE_SIZE})"
            )
        return n

    @property
    def widths(self) -> tuple[int, ...]:
        """Output channels of the downsampling blocks: ending at `channels`, halving going back."""
        n = self.num_blocks
        return tuple(self.channels >> (n - 1 - i) for i in range(n))

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> ModelConfig:
        one_of("model.encoder", self.encoder, ENCODERS + ("custom",))
        at_least("model.in_channels", self.in_channels, 1)
        at_least("model.z_dim", self.z_dim, 1)
        at_least("model.channels", self.channels, 1)
        at_least("model.head_convs", self.head_convs, 0)
        at_least("model.train_size", self.train_size, 0, why="pixels; 0 trains at the images' own side")
        require(self.train_size == 0 or self.encoder == "cnn",
                f"model.train_size = {self.train_size} needs the cnn encoder (its global max-pool reads any "
                f"size; {self.encoder!r} reads only the size it was built for): set train_size = 0")
        one_of("model.init", self.init, INITS)
        require(0.0 < self.bn_momentum <= 1.0, f"model.bn_momentum = {self.bn_momentum} must be in (0, 1]")
        at_least("model.bn_eps", self.bn_eps, 0.0, strict=True)
        # >= 0 keeps the activation non-decreasing, so the encoder may pool before it.
        at_least("model.leaky_slope", self.leaky_slope, 0.0)
        if self.encoder == "cnn":
            self.num_blocks  # raises with the list of valid sizes
            require(self.channels >> (self.num_blocks - 1) >= 1,
                    f"model.channels = {self.channels} is too narrow for {self.num_blocks} halving blocks")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        """From a saved dict; keys of older configs that now belong to the objective are dropped
        (objective_from_legacy reads them)."""
        d = {k: v for k, v in d.items() if k not in LEGACY_OBJECTIVE_KEYS}
        known_keys("model", d, [f.name for f in dataclasses.fields(cls)])
        return cls(**d).validate()
