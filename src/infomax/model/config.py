"""ModelConfig: every architectural choice of the DIM model, with the reference's settings as defaults."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from infomax.errors import InfomaxError

# Smallest image the encoder takes: 13 px pools to 7 and then 4 (two blocks).
MIN_IMAGE_SIZE = 13
FEATURE_SIZE = 4  # side of the local feature map C

GLOBAL_PAIRINGS = ("zz", "xz")  # what the global critic pairs with z: z itself, or the pooled feature
INITS = ("keras", "torch")
KL_REDUCTIONS = ("mean", "batchmean")
CRITICS = ("concat", "dot")  # "concat": MLP on a concatenated pair; "dot": embed each side, dot product
PRIORS = ("kl", "adversarial", "none")  # how p(z|x) is pulled toward N(0, I): KL term, discriminator, not at all

# Adam's epsilon that goes with each init scheme (the optimizer belongs to the train loop).
# Keras 2 uses K.epsilon() = 1e-7, PyTorch 1e-8. See docs/model.md for how Keras applies it.
ADAM_EPS = {"keras": 1e-7, "torch": 1e-8}

# Named settings. "seed" is the reference's exact configuration (Keras 2 defaults).
PRESETS: dict[str, dict] = {
    "seed": {},
    "torch": {"init": "torch", "bn_momentum": 0.1, "bn_eps": 1e-5},
}


def num_blocks_for(image_size: int) -> int | None:
    """The n >= 2 with ceil(image_size / 2^n) == 4 (max-pool with ceil_mode), or None."""
    n = 2
    while (FEATURE_SIZE - 1) * 2**n < image_size:
        if image_size <= FEATURE_SIZE * 2**n:  # 3·2^n < size <= 4·2^n
            return n
        n += 1
    return None


def valid_sizes_text(upto: int = 256) -> str:
    """Human-readable list of accepted image sizes: '13–16, 25–32, 49–64, ...'."""
    ranges, n = [], 2
    while 3 * 2**n + 1 <= upto:
        ranges.append(f"{3 * 2**n + 1}–{4 * 2**n}")
        n += 1
    return ", ".join(ranges) + " (in general 3·2^n+1 to 4·2^n for n ≥ 2)"


@dataclass
class ModelConfig:
    """Architecture of encoder and critics. Defaults reproduce the reference (preset "seed").

    bn_momentum follows PyTorch's convention (weight of the new batch): 0.01 is Keras'
    momentum 0.99. `channels` is the width of the last downsampling block, of C, and of the
    head convolutions (the reference ties it to z_dim; both are 256).
    """

    image_size: int = 32
    in_channels: int = 3
    z_dim: int = 256
    channels: int = 256
    head_convs: int = 2
    critic_hidden: int = 256
    critic: str = "concat"
    temperature: float = 0.0  # dot critics: 0 scores φ·ψ/√d; τ > 0 scores cos(φ, ψ)/τ
    global_pairing: str = "zz"
    multiscale: bool = False  # a second local critic on the map one block before C (8×8 for 4×4)
    local_local: bool = False  # a dot critic between positions of local maps (local–local MI)
    attention: bool = False  # a self-attention block on the map one block before C (8×8 for 4×4)
    prior: str = "kl"  # "kl" (reference) | "adversarial" (DIM's discriminator on z) | "none"
    init: str = "keras"
    bn_momentum: float = 0.01
    bn_eps: float = 1e-3
    leaky_slope: float = 0.2
    kl_reduction: str = "mean"

    @classmethod
    def preset(cls, name: str, **overrides) -> ModelConfig:
        if name not in PRESETS:
            raise InfomaxError(f"unknown model preset '{name}' (known: {', '.join(PRESETS)})")
        return cls(**{**PRESETS[name], **overrides}).validate()

    @property
    def num_blocks(self) -> int:
        n = num_blocks_for(self.image_size)
        if n is None or self.image_size < MIN_IMAGE_SIZE:
            raise InfomaxError(
                f"image size {self.image_size} cannot be pooled to a 4×4 feature map; "
                f"valid sizes are {valid_sizes_text()}"
            )
        return n

    @property
    def widths(self) -> tuple[int, ...]:
        """Output channels of the downsampling blocks: ending at `channels`, halving going back."""
        n = self.num_blocks
        return tuple(self.channels >> (n - 1 - i) for i in range(n))

    @property
    def adam_eps(self) -> float:
        return ADAM_EPS[self.init]

    def validate(self) -> ModelConfig:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise InfomaxError(f"model config: {msg}")

        self.num_blocks  # raises with the list of valid sizes
        need(self.in_channels >= 1, f"in_channels must be >= 1, got {self.in_channels}")
        need(self.z_dim >= 1, f"z_dim must be >= 1, got {self.z_dim}")
        need(self.critic_hidden >= 1, f"critic_hidden must be >= 1, got {self.critic_hidden}")
        need(self.head_convs >= 0, f"head_convs must be >= 0, got {self.head_convs}")
        need(
            self.channels >> (self.num_blocks - 1) >= 1,
            f"channels={self.channels} is too narrow for {self.num_blocks} halving blocks",
        )
        need(self.critic in CRITICS, f"critic must be one of {CRITICS}, got '{self.critic}'")
        need(self.temperature >= 0.0, f"temperature must be >= 0 (0: plain dot product), got {self.temperature}")
        need(self.temperature == 0.0 or self.critic == "dot",
             f"temperature {self.temperature} applies to the dot critic only; set critic = dot or temperature = 0")
        need(
            self.global_pairing in GLOBAL_PAIRINGS,
            f"global_pairing must be one of {GLOBAL_PAIRINGS}, got '{self.global_pairing}'",
        )
        need(self.prior in PRIORS, f"prior must be one of {PRIORS}, got '{self.prior}'")
        need(self.init in INITS, f"init must be one of {INITS}, got '{self.init}'")
        need(
            self.kl_reduction in KL_REDUCTIONS,
            f"kl_reduction must be one of {KL_REDUCTIONS}, got '{self.kl_reduction}'",
        )
        need(0.0 < self.bn_momentum <= 1.0, f"bn_momentum must be in (0, 1], got {self.bn_momentum}")
        need(self.bn_eps > 0.0, f"bn_eps must be > 0, got {self.bn_eps}")
        # >= 0 keeps the activation non-decreasing, so the encoder may pool before it.
        need(self.leaky_slope >= 0.0, f"leaky_slope must be >= 0, got {self.leaky_slope}")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InfomaxError(f"model config: unknown field(s) {', '.join(unknown)}")
        return cls(**d).validate()
