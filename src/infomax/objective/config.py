"""ObjectiveConfig: every choice of the DIM objective, with the reference's settings as defaults."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from infomax.choices import at_least, known_keys, one_of, require
from infomax.objective.estimators import ESTIMATORS
from infomax.objective.kl import REDUCTIONS
from infomax.objective.negatives import NEGATIVES

CRITICS = ("concat", "dot")  # "concat": MLP on a concatenated pair; "dot": embed each side, dot product
GLOBAL_PAIRINGS = ("zz", "xz")  # what the global critic pairs with z: z itself, or the pooled feature
PRIORS = ("kl", "adversarial", "none")  # how p(z|x) is pulled toward N(0, I)


@dataclass
class ObjectiveConfig:
    """Loss = α·global + β·local (+ δ·local_local) + γ·prior. Defaults: the reference."""

    estimator: str = "jsd"  # jsd (reference) | infonce | dv | hellinger
    critic: str = "concat"  # concat (reference: MLP on [a, b]) | dot (embed each side, dot product)
    negatives: str = "shuffle"  # shuffle (reference) | derangement (never itself) | all (every other image; dot)
    global_pairing: str = "zz"  # zz (reference: [z, z] vs [z, z']) | xz (the paper's T(x, z))
    temperature: float = 0.0  # dot critics: 0 scores φ·ψ/√d; τ > 0 scores cos(φ, ψ)/τ
    critic_hidden: int = 256  # width of the critics' layers
    multiscale: bool = False  # the local term also on the map one block before C
    prior: str = "kl"  # kl (reference) | adversarial (DIM's discriminator on z) | none
    kl_reduction: str = "mean"  # mean over dims (reference) | batchmean (summed over dims)
    alpha: float = 0.5  # global MI weight
    beta: float = 1.5  # local MI weight
    gamma: float = 0.01  # prior term weight (KL, or the encoder's side of adversarial matching)
    delta: float = 0.0  # local–local MI weight (0: the term is off)
    queue: int = 0  # past codes kept as more negatives of the global term (MoCo; 0: none)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> ObjectiveConfig:
        one_of("objective.estimator", self.estimator, ESTIMATORS)
        one_of("objective.critic", self.critic, CRITICS)
        one_of("objective.negatives", self.negatives, NEGATIVES + ("all",))
        one_of("objective.global_pairing", self.global_pairing, GLOBAL_PAIRINGS)
        one_of("objective.prior", self.prior, PRIORS)
        one_of("objective.kl_reduction", self.kl_reduction, REDUCTIONS)
        for key in ("alpha", "beta", "gamma", "delta", "temperature"):
            at_least(f"objective.{key}", getattr(self, key), 0)
        at_least("objective.critic_hidden", self.critic_hidden, 1)
        at_least("objective.queue", self.queue, 0)
        require(self.queue == 0 or (self.critic == "dot" and self.negatives == "all" and self.estimator == "infonce"),
                f"objective.queue = {self.queue} adds negatives to InfoNCE over all pairs of dot critics; set "
                "estimator = 'infonce', critic = 'dot' and negatives = 'all' (preset recommended), or queue = 0")
        require(self.alpha > 0 or self.beta > 0,
                "objective.alpha and objective.beta are both 0: nothing left to learn; set one above 0")
        require(self.negatives != "all" or self.critic == "dot",
                "objective.negatives = 'all' scores every pair of the batch and needs objective.critic = 'dot' "
                f"(got critic = {self.critic!r}); or choose negatives from: {', '.join(NEGATIVES)}")
        require(self.temperature == 0 or self.critic == "dot",
                f"objective.temperature = {self.temperature} applies to the dot critic only; "
                "set objective.critic = 'dot' or objective.temperature = 0")
        return self

    @property
    def weights(self) -> dict[str, float]:
        """The weighted terms: α·global + β·local (+ δ·local_local) + γ·(the prior's term)."""
        weights = {"global": self.alpha, "local": self.beta}
        if self.delta > 0:
            weights["local_local"] = self.delta
        if self.prior != "none":
            weights["kl" if self.prior == "kl" else "prior"] = self.gamma
        return weights

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ObjectiveConfig:
        known_keys("objective", values, [f.name for f in dataclasses.fields(cls)])
        return cls(**values)

    @classmethod
    def of_run(cls, config: dict) -> ObjectiveConfig:
        """The objective of a saved run config; older ones kept its keys in "model" and "train"."""
        if "objective" in config:
            return cls.from_dict(config["objective"])
        names = {f.name for f in dataclasses.fields(cls)}
        legacy = {**config.get("train", {}), **config.get("model", {})}
        values = {k: v for k, v in legacy.items() if k in names}
        return cls(**values)
