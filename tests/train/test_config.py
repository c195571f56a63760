import pytest

from infomax.errors import InfomaxError
from infomax.train.config import TrainConfig, read_config_file, resolve


def test_precedence_defaults_preset_file_flags():
    cfg = resolve("cifar10")
    assert (cfg.alpha, cfg.beta, cfg.gamma, cfg.batch_size, cfg.epochs, cfg.lr) == (0.5, 1.5, 0.01, 64, 50, 1e-3)
    cfg = resolve("tiny-imagenet")
    assert (cfg.batch_size, cfg.epochs) == (100, 100)
    cfg = resolve("tiny-imagenet", {"batch_size": 32, "lr": 5e-4}, {"batch_size": 16, "lr": None})
    assert cfg.batch_size == 16 and cfg.lr == 5e-4 and cfg.epochs == 100


@pytest.mark.parametrize("values, words", [
    ({"alpha": -1.0}, "--alpha must be"),
    ({"alpha": 0.0, "beta": 0.0}, "nothing left to learn"),
    ({"z_dim": 0}, "--z-dim"),
    ({"batch_size": 1}, "--batch-size"),
    ({"precision": "fp16"}, "--precision"),
    ({"max_steps": 0}, "--max-steps"),
    ({"negatives": "all"}, "needs critic = dot"),
    ({"estimator": "mine"}, "estimator must be one of jsd, infonce, dv, hellinger"),
    ({"views": 3}, "views must be 1 or 2"),
    ({"views": 2}, "views = 2 needs augment"),
    ({"augment": "crop=spiral"}, "crop"),
    ({"lr_schedule": "step"}, "lr_schedule must be one of constant, cosine"),
    ({"prior": "flow"}, "prior must be one of kl, adversarial, none"),
])
def test_invalid_settings_are_refused(values, words):
    with pytest.raises(InfomaxError, match=words):
        resolve("cifar10", {}, values)


def test_unknown_keys_and_presets(tmp_path):
    with pytest.raises(InfomaxError, match="unknown settings"):
        resolve("cifar10", {"alhpa": 1.0})
    with pytest.raises(InfomaxError, match="unknown preset"):
        resolve("cifar10", {}, {"preset": "nope"})


def test_config_files_toml_and_yaml(tmp_path):
    (tmp_path / "a.toml").write_text('batch-size = 32\ngamma = 0.0\ndata = "digits"\n')
    (tmp_path / "a.yaml").write_text("batch_size: 48\nprecision: bf16\n")
    assert read_config_file(tmp_path / "a.toml") == {"batch_size": 32, "gamma": 0.0, "data": "digits"}
    assert resolve("x", read_config_file(tmp_path / "a.yaml")).precision == "bf16"
    (tmp_path / "bad.toml").write_text("batch_size = = 3")
    with pytest.raises(InfomaxError, match="could not be parsed"):
        read_config_file(tmp_path / "bad.toml")
    with pytest.raises(InfomaxError, match="does not exist"):
        read_config_file(tmp_path / "missing.yaml")


def test_defaults_are_the_reference_settings():
    cfg = TrainConfig()
    assert cfg.adam_eps == 1e-7 and cfg.bn_momentum == 0.01 and cfg.bn_eps == 1e-3 and cfg.init == "keras"
    assert (cfg.estimator, cfg.critic, cfg.negatives, cfg.augment, cfg.views) == ("jsd", "concat", "derangement", "none", 1)
