import pytest

from infomax.errors import InfomaxError
from infomax.model.config import ModelConfig, num_blocks_for
from infomax.objective.config import ObjectiveConfig


@pytest.mark.parametrize(
    "size, widths",
    [
        (13, (128, 256)),
        (16, (128, 256)),
        (28, (64, 128, 256)),
        (32, (64, 128, 256)),
        (49, (32, 64, 128, 256)),
        (64, (32, 64, 128, 256)),
        (96 + 1, (16, 32, 64, 128, 256)),
    ],
)
def test_blocks_and_widths(size, widths):
    cfg = ModelConfig(image_size=size)
    assert cfg.widths == widths
    assert cfg.num_blocks == len(widths)
    side = size
    for _ in range(cfg.num_blocks):
        side = -(-side // 2)  # ceil
    assert side == 4


@pytest.mark.parametrize("size", [1, 5, 8])
def test_refused_sizes_name_the_smallest(size):
    with pytest.raises(InfomaxError, match=r"at least 9 pixels"):
        ModelConfig(image_size=size)


def test_num_blocks_for_matches_brute_force():
    """The fewest halvings to a side of 3 or 4, by halving with ceil step by step."""
    for size in range(1, 600):
        sides = [size]
        while len(sides) < 12:
            sides.append(-(-sides[-1] // 2))
        expected = [n for n in range(2, 12) if 3 <= sides[n] <= 4]
        assert num_blocks_for(size) == (expected[0] if size >= 9 else None), size


@pytest.mark.parametrize("size,blocks,side", [(16, 2, 4), (32, 3, 4), (64, 4, 4), (96, 5, 3), (128, 5, 4),
                                              (224, 6, 4), (12, 2, 3), (48, 4, 3)])
def test_sizes_between_the_reference_ranges_pool_to_3x3(size, blocks, side):
    assert num_blocks_for(size) == blocks and -(-size // 2**blocks) == side


def test_defaults_are_the_reference_settings():
    cfg = ModelConfig()
    assert (cfg.encoder, cfg.image_size, cfg.in_channels, cfg.z_dim, cfg.channels) == ("cnn", 32, 3, 256, 256)
    assert (cfg.head_convs, cfg.attention) == (2, False)
    assert (cfg.init, cfg.bn_momentum, cfg.bn_eps, cfg.leaky_slope) == ("keras", 0.01, 1e-3, 0.2)
    objective = ObjectiveConfig()
    assert (objective.critic_hidden, objective.global_pairing, objective.kl_reduction) == (256, "zz", "mean")
    assert (objective.estimator, objective.critic, objective.negatives, objective.prior) == ("jsd", "concat", "shuffle", "kl")
    assert (objective.alpha, objective.beta, objective.gamma, objective.delta) == (0.5, 1.5, 0.01, 0.0)


def test_dict_round_trip():
    cfg = ModelConfig(image_size=64, in_channels=1, init="torch", attention=True)
    d = cfg.to_dict()
    assert d["image_size"] == 64 and d["init"] == "torch" and "critic" not in d
    assert ModelConfig.from_dict(d) == cfg
    with pytest.raises(InfomaxError, match=r"unknown key\(s\) depth; valid keys: attention, bn_eps"):
        ModelConfig.from_dict({**d, "depth": 3})
    objective = ObjectiveConfig(global_pairing="xz", kl_reduction="batchmean", critic="dot", temperature=0.1)
    assert ObjectiveConfig.from_dict(objective.to_dict()) == objective
    with pytest.raises(InfomaxError, match="unknown key"):
        ObjectiveConfig.from_dict({**objective.to_dict(), "z_dim": 3})


def test_older_run_configs_keep_the_objective_in_model_and_train():
    old = {"model": {**ModelConfig(image_size=16).to_dict(), "critic": "dot", "global_pairing": "xz",
                     "local_local": True, "critic_hidden": 64, "prior": "none"},
           "train": {"estimator": "infonce", "negatives": "all", "beta": 2.0, "delta": 1.0, "batch_size": 32}}
    assert ModelConfig.from_dict(old["model"]) == ModelConfig(image_size=16)
    objective = ObjectiveConfig.of_run(old)
    assert objective == ObjectiveConfig(critic="dot", global_pairing="xz", critic_hidden=64, prior="none",
                                        estimator="infonce", negatives="all", beta=2.0, delta=1.0)
    assert ObjectiveConfig.of_run({"objective": objective.to_dict(), "model": {}}) == objective


@pytest.mark.parametrize(
    "field, value",
    [
        ("init", "he"),
        ("encoder", "vgg"),
        ("z_dim", 0),
        ("in_channels", 0),
        ("head_convs", -1),
        ("bn_momentum", 0.0),
        ("bn_eps", 0.0),
        ("leaky_slope", -0.2),
        ("channels", 2),
    ],
)
def test_validate_refuses_bad_values(field, value):
    with pytest.raises(InfomaxError, match=f"model.{field} = "):
        ModelConfig(**{field: value})


@pytest.mark.parametrize(
    "field, value",
    [
        ("global_pairing", "zx"),
        ("kl_reduction", "sum"),
        ("critic", "bilinear"),
        ("estimator", "mine"),
        ("negatives", "random"),
        ("prior", "flow"),
        ("critic_hidden", 0),
        ("alpha", -1.0),
        ("temperature", -0.1),
        ("temperature", 0.1),  # with the concat critic
    ],
)
def test_objective_validate_refuses_bad_values(field, value):
    with pytest.raises(InfomaxError, match=f"objective.{field} = "):
        ObjectiveConfig(**{field: value})
