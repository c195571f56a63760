import pytest

from infomax.errors import InfomaxError
from infomax.model.config import ADAM_EPS, ModelConfig, num_blocks_for


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


@pytest.mark.parametrize("size", [1, 8, 12, 17, 20, 24, 33, 48, 65, 96])
def test_refused_sizes_name_the_valid_ones(size):
    with pytest.raises(InfomaxError, match=r"13–16, 25–32, 49–64"):
        ModelConfig(image_size=size).validate()


def test_num_blocks_for_matches_brute_force():
    for size in range(1, 300):
        expected = [n for n in range(2, 10) if -(-size // 2**n) == 4]
        assert num_blocks_for(size) == (expected[0] if expected else None), size


def test_defaults_are_the_reference_settings():
    cfg = ModelConfig()
    assert (cfg.image_size, cfg.in_channels, cfg.z_dim, cfg.channels) == (32, 3, 256, 256)
    assert (cfg.head_convs, cfg.critic_hidden, cfg.global_pairing) == (2, 256, "zz")
    assert (cfg.init, cfg.bn_momentum, cfg.bn_eps, cfg.leaky_slope) == ("keras", 0.01, 1e-3, 0.2)
    assert cfg.kl_reduction == "mean"
    assert cfg.adam_eps == ADAM_EPS["keras"] == 1e-7
    assert ModelConfig.preset("seed") == cfg


def test_torch_preset():
    cfg = ModelConfig.preset("torch", image_size=64)
    assert (cfg.init, cfg.bn_momentum, cfg.bn_eps, cfg.image_size) == ("torch", 0.1, 1e-5, 64)
    assert cfg.adam_eps == 1e-8
    with pytest.raises(InfomaxError, match="unknown model preset"):
        ModelConfig.preset("nope")


def test_dict_round_trip():
    cfg = ModelConfig(image_size=64, in_channels=1, global_pairing="xz", init="torch", kl_reduction="batchmean")
    d = cfg.to_dict()
    assert d["image_size"] == 64 and d["global_pairing"] == "xz"
    assert ModelConfig.from_dict(d) == cfg
    with pytest.raises(InfomaxError, match="unknown field"):
        ModelConfig.from_dict({**d, "depth": 3})


@pytest.mark.parametrize(
    "field, value",
    [
        ("global_pairing", "zx"),
        ("init", "he"),
        ("kl_reduction", "sum"),
        ("critic", "bilinear"),
        ("z_dim", 0),
        ("in_channels", 0),
        ("head_convs", -1),
        ("bn_momentum", 0.0),
        ("bn_eps", 0.0),
        ("leaky_slope", -0.2),
        ("channels", 2),
        ("temperature", -0.1),
        ("temperature", 0.1),  # with the concat critic
    ],
)
def test_validate_refuses_bad_values(field, value):
    with pytest.raises(InfomaxError, match=field):
        ModelConfig(**{field: value}).validate()
