"""Config: presets, precedence, config files, and one clear message for each invalid setting."""

import os

import pytest

from infomax.config import Config, budget_epochs, default_workers, read_config_file, resolve
from infomax.errors import InfomaxError

# The reference's settings (Hjelm et al.'s DIM code with its KL prior), written out.
SEED = {
    "encoder": "cnn", "image_size": 32, "train_size": 0, "in_channels": 3, "z_dim": 256, "channels": 256,
    "head_convs": 2, "attention": False, "init": "keras", "bn_momentum": 0.01, "bn_eps": 1e-3, "leaky_slope": 0.2,
    "estimator": "jsd", "critic": "concat", "negatives": "shuffle", "global_pairing": "zz", "temperature": 0.0,
    "critic_hidden": 256, "multiscale": False, "prior": "kl", "kl_reduction": "mean",
    "alpha": 0.5, "beta": 1.5, "gamma": 0.01, "delta": 0.0, "queue": 0,
    "lr": 1e-3, "lr_schedule": "constant", "adam_eps": 1e-7, "batch_size": 64, "epochs": 50, "max_steps": None,
    "time_budget": None, "ema": 0.0,
    "augment": "none", "views": 1, "small_crops": 0, "small_crop_size": 0, "workers": default_workers(),
    "seed": 0, "device": "auto", "precision": "fp32", "bn_recalibrate": 0, "whiten": 0, "whiten_power": 0.25,
    "mirror": False, "checkpoint_every": 1000,
    "log_every": 20, "deterministic": False, "sync_batchnorm": True,
}
RECOMMENDED = {**SEED, "estimator": "infonce", "critic": "dot", "negatives": "all", "augment": "default", "views": 2,
               "channels": 128, "bn_recalibrate": 10240, "whiten": 10240, "whiten_power": 0.3, "mirror": True}


def test_presets_hold_their_settings():
    assert Config(preset="seed").to_flat() == SEED
    assert Config(preset="recommended").to_flat() == RECOMMENDED
    assert Config().preset == "recommended" and Config().to_flat() == RECOMMENDED
    assert Config.build("seed", "tiny-imagenet").to_flat() == {**SEED, "batch_size": 100, "epochs": 100}
    cfg = Config(preset="seed")
    assert (cfg.optim.lr, cfg.run.seed, cfg.data.views, cfg.objective.negatives) == (1e-3, 0, 1, "shuffle")
    assert cfg.objective.weights == {"global": 0.5, "local": 1.5, "kl": 0.01}


def test_stream_workers_default_to_the_cores(monkeypatch):
    # 0 (read in the training process) on 2 usable cores or fewer, 2 decoding processes above
    for cores, workers in ((1, 0), (2, 0), (3, 2), (16, 2)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid, n=cores: set(range(n)), raising=False)
        assert default_workers() == workers
        assert Config().data.workers == workers and Config(preset="seed").data.workers == workers
    assert resolve("cifar10", {}, {"workers": 1}).data.workers == 1  # a value set is kept


def test_precedence_defaults_preset_file_flags():
    cfg = resolve("cifar10")
    assert cfg.preset == "recommended" and cfg.objective.estimator == "infonce"
    assert (cfg.objective.alpha, cfg.objective.beta, cfg.objective.gamma) == (0.5, 1.5, 0.01)
    assert (cfg.optim.batch_size, cfg.optim.epochs, cfg.optim.lr) == (64, 50, 1e-3)
    cfg = resolve("tiny-imagenet", {"preset": "seed"})
    assert (cfg.optim.batch_size, cfg.optim.epochs, cfg.objective.estimator) == (100, 100, "jsd")
    cfg = resolve("tiny-imagenet", {"batch_size": 32, "lr": 5e-4}, {"batch_size": 16, "lr": None})
    assert cfg.optim.batch_size == 16 and cfg.optim.lr == 5e-4 and cfg.optim.epochs == 100
    # flat, dotted and nested keys name the same setting
    assert resolve("x", {"optim": {"lr": 2e-4}}, {"objective.beta": 3.0}).to_flat() == \
        {**RECOMMENDED, "lr": 2e-4, "beta": 3.0}


def test_a_time_budget_ends_the_run_and_widens_recommended_from_fifteen_passes():
    # no cap on epochs; width 256 once the budget buys 15 passes at 750 images/s of 32×32 training
    # views, a quarter as many at 64×64 (64-pixel images train on 32-pixel views: for_image_size)
    def passes(minutes, side, images):  # float64, by hand: images/s of side² pixels × seconds / images
        return minutes * 60.0 * 750.0 * (32.0 / side) ** 2 / images

    for minutes, size, images, channels in ((10, 32, 50_000, 128), (16.6, 32, 50_000, 128), (16.7, 32, 50_000, 256),
                                            (20, 32, 50_000, 256), (10, 64, 20_200, 256), (6.7, 64, 20_200, 128),
                                            (6.8, 64, 20_200, 256), (60, 64, 100_000, 256), (30, 64, 100_000, 128),
                                            (3, 16, 50_000, 128), (5, 16, 50_000, 256), (1, 8, 1_797, 256)):
        side = size // 2 if size >= 64 else size  # the training views'
        assert (passes(minutes, side, images) >= 15) == (channels == 256)
        cfg = resolve("x", {}, {"time_budget": minutes}, image_size=size, train_images=images)
        assert cfg.to_flat() == {**RECOMMENDED, "time_budget": minutes, "epochs": 1_000_000, "channels": channels,
                                 "train_size": side if side < size else 0}
        assert budget_epochs(minutes, side, images) == pytest.approx(passes(minutes, side, images), rel=1e-12)
    # views at the images' side cost four times the steps of half-side ones
    for minutes, train_size, channels in ((26.9, 0, 128), (27, 0, 256), (15.1, 48, 128), (15.2, 48, 256)):
        cfg = resolve("x", {}, {"time_budget": minutes, "train_size": train_size}, image_size=64, train_images=20_200)
        assert (cfg.model.train_size, cfg.model.channels) == (train_size, channels)
    # what is set wins: a file, flags; the rule is recommended's cnn's, and needs the image size
    cfg = resolve("x", {"channels": 96}, {"time_budget": 60}, image_size=32, train_images=50_000)
    assert (cfg.optim.epochs, cfg.model.channels) == (1_000_000, 96)
    # with epochs or steps the budget is only a cap: nothing changes
    cfg = resolve("x", {}, {"time_budget": 60, "epochs": 7}, image_size=32, train_images=50_000)
    assert (cfg.optim.epochs, cfg.model.channels) == (7, 128)
    cfg = resolve("x", {"max_steps": 9}, {"time_budget": 60}, image_size=32, train_images=50_000)
    assert (cfg.optim.epochs, cfg.model.channels) == (50, 128)
    assert resolve("x", {}, {"time_budget": 60, "preset": "seed"}, image_size=8, train_images=50_000).to_flat() == \
        {**SEED, "time_budget": 60, "epochs": 1_000_000}
    cfg = resolve("x", {}, {"time_budget": 60, "encoder": "resnet18"}, image_size=32, train_images=50_000)
    assert cfg.model.channels == 128
    assert resolve("x", {}, {"time_budget": 600}).model.channels == 128  # the images unknown: the width stays
    assert resolve("x", {}, {"time_budget": 600}, image_size=32).model.channels == 128  # nor the count
    assert resolve("x", {}, {}, image_size=32).to_flat() == RECOMMENDED


@pytest.mark.parametrize("values, message", [
    ({"alhpa": 1.0}, "unknown setting 'alhpa'; valid settings: preset, data.augment, data.small_crop_size, data.small_crops, data.views, data.workers, model.attention"),
    ({"critic": "mlp"}, "objective.critic = 'mlp' is not one of: concat, dot"),
    ({"negatives": "all"}, "objective.negatives = 'all' scores every pair of the batch and needs objective.critic "
                           "= 'dot' (got critic = 'concat')"),
    ({"views": 2}, "data.views = 2 needs data.augment (two identical views add nothing): set augment = 'default'"),
    ({"alpha": 0.0, "beta": 0.0}, "objective.alpha and objective.beta are both 0: nothing left to learn"),
    ({"batch_size": 1}, "optim.batch_size = 1 must be ≥ 2 (in-batch negatives need two images)"),
    ({"multiscale": True, "encoder": "resnet18"}, "objective.multiscale scores the map one block before C, which only "
                                                  "model.encoder = 'cnn' returns (got 'resnet18')"),
    ({"alpha": -1.0}, "objective.alpha = -1.0 must be ≥ 0"),
    ({"z_dim": 0}, "model.z_dim = 0 must be ≥ 1"),
    ({"precision": "fp16"}, "run.precision = 'fp16' is not one of: fp32, bf16"),
    ({"max_steps": 0}, "optim.max_steps = 0 must be ≥ 1"),
    ({"estimator": "mine"}, "objective.estimator = 'mine' is not one of: jsd, infonce, dv, hellinger"),
    ({"views": 3}, "data.views = 3 is not one of: 1, 2"),
    ({"augment": "crop=spiral"}, "crop"),
    ({"lr_schedule": "step"}, "optim.lr_schedule = 'step' is not one of: constant, cosine, wsd"),
    ({"prior": "flow"}, "objective.prior = 'flow' is not one of: kl, adversarial, none"),
    ({"optim.beta": 2.0}, "unknown setting 'optim.beta': beta belongs to objective (objective.beta)"),
    ({"preset": "nope"}, "preset = 'nope' is not one of: seed, recommended"),
    ({"mirror": True}, "run.mirror averages the feature over each image and its left-right mirror, but data.augment "
                       "('none') never flips"),
    ({"mirror": True, "augment": "crop=resized,flip=0"}, "('crop=resized,flip=0') never flips, so the encoder did "
                                                         "not learn to treat the two alike; set mirror = false"),
])
def test_each_invalid_setting_gets_its_message(values, message):
    with pytest.raises(InfomaxError) as caught:
        resolve("cifar10", {"preset": "seed"}, values)
    assert message in str(caught.value)
    with pytest.raises(InfomaxError) as built:
        Config.build(**{"preset": "seed", **values})
    assert message in str(built.value)


def test_unknown_key_lists_every_valid_key():
    with pytest.raises(InfomaxError) as caught:
        Config.build("seed", alhpa=1.0)
    for key in ("objective.alpha", "optim.lr", "model.z_dim", "run.seed", "data.views", "objective.negatives"):
        assert key in str(caught.value)


def test_the_presets_mirror_follows_the_augmentation():
    assert resolve("cifar10").run.mirror and not resolve("cifar10", {}, {"preset": "seed"}).run.mirror
    assert not resolve("cifar10", {}, {"augment": "crop=resized,flip=0"}).run.mirror  # no flips: no mirror
    assert not resolve("cifar10", {}, {"mirror": False}).run.mirror
    assert resolve("cifar10", {}, {"preset": "seed", "augment": "flip=0.5", "mirror": True}).run.mirror
    with pytest.raises(InfomaxError, match="never flips"):  # asked for, it is not dropped silently
        resolve("cifar10", {}, {"augment": "crop=resized,flip=0", "mirror": True})


def test_recommended_trains_images_of_64_px_and_more_at_half_the_side():
    for size, train_size in ((16, 0), (32, 0), (63, 0), (64, 32), (65, 32), (96, 48), (224, 112)):
        assert resolve("folder", {}, {}, image_size=size).model.train_size == train_size
    assert resolve("folder", {}, {"train_size": 0}, image_size=64).model.train_size == 0  # what is set wins
    assert resolve("folder", {"train_size": 40}, {}, image_size=64).model.train_size == 40
    assert resolve("folder", {}, {"preset": "seed"}, image_size=64).model.train_size == 0  # the reference's
    assert resolve("folder", {}, {"encoder": "resnet18"}, image_size=64).model.train_size == 0
    assert resolve("folder", {}, {}).model.train_size == 0  # the size unknown (an encoder of one's own)
    with pytest.raises(InfomaxError, match="model.train_size = 32 needs the cnn encoder"):
        resolve("folder", {}, {"encoder": "resnet18", "train_size": 32}, image_size=64)
    with pytest.raises(InfomaxError, match="model.train_size = -1 must be ≥ 0"):
        resolve("folder", {}, {"train_size": -1}, image_size=64)
    with pytest.raises(InfomaxError, match="training size 8 is too small for the encoder"):
        resolve("folder", {}, {"train_size": 8}, image_size=64)


def test_groups_are_validated_when_built_and_replaced():
    cfg = Config(preset="seed")
    assert cfg.replace(lr=1e-4).optim.lr == 1e-4 and cfg.optim.lr == 1e-3
    with pytest.raises(InfomaxError, match="needs objective.critic = 'dot'"):
        cfg.replace(negatives="all")
    assert Config.from_dict(cfg.to_dict()) == cfg
    assert Config.from_dict(Config().to_dict()) == Config()
    # an older run's flat settings (with its data spec) read with the seed preset
    old = Config.from_dict({"batch_size": 32, "lr": 5e-4, "data": "digits", "critic": "dot"})
    assert old.to_flat() == {**SEED, "batch_size": 32, "lr": 5e-4, "critic": "dot"}


def test_config_files_nested_tables_dotted_keys_and_yaml(tmp_path):
    (tmp_path / "a.toml").write_text(
        'preset = "seed"\nbatch-size = 32\nrun.seed = 3\n"data.augment" = "default"\n'
        '[optim]\nlr = 5e-4\n[objective]\nestimator = "infonce"\n')
    values = read_config_file(tmp_path / "a.toml")
    assert values == {"preset": "seed", "batch_size": 32, "seed": 3, "augment": "default", "lr": 5e-4,
                      "estimator": "infonce"}
    assert resolve("x", values).to_flat() == {**SEED, "batch_size": 32, "seed": 3, "augment": "default",
                                              "lr": 5e-4, "estimator": "infonce"}
    (tmp_path / "a.yaml").write_text("optim:\n  batch_size: 48\nrun.precision: bf16\n")
    cfg = resolve("x", read_config_file(tmp_path / "a.yaml"))
    assert (cfg.optim.batch_size, cfg.run.precision, cfg.preset) == (48, "bf16", "recommended")
    (tmp_path / "wrong.toml").write_text("[optim]\nbeta = 1.0\n")
    with pytest.raises(InfomaxError, match=r"wrong.toml: unknown setting 'optim.beta': beta belongs to objective"):
        read_config_file(tmp_path / "wrong.toml")
    (tmp_path / "bad.toml").write_text("batch_size = = 3")
    with pytest.raises(InfomaxError, match="could not be parsed"):
        read_config_file(tmp_path / "bad.toml")
    with pytest.raises(InfomaxError, match="does not exist"):
        read_config_file(tmp_path / "missing.yaml")


def test_cli_prints_the_message_and_returns_2(tmp_path, capsys):
    from infomax.cli import main

    out = tmp_path / "run"
    assert main(["train", "--data", "digits", "--out", str(out), "--critic", "mlp"]) == 2
    err = capsys.readouterr().err
    assert "infomax train: error: objective.critic = 'mlp' is not one of: concat, dot" in err
    assert not (out / "config.json").exists()


def test_train_and_fit_pass_the_image_size_and_count_to_the_time_budget_rule(tmp_path, monkeypatch, capsys):
    from infomax.api import fit
    from infomax.cli import main
    from infomax.train import loop

    class Resolved(Exception):
        pass

    def resolved(cfg, *args, **kwargs):  # stands in for training: what did the run resolve to?
        raise Resolved(cfg)

    monkeypatch.setattr(loop, "train", resolved)
    # the digits' 1,437 train images at 16×16: 15 passes at 4 · 750 images/s take 15 · 1,437 / 3,000
    # = 7.185 s, 0.11975 minutes
    with pytest.raises(Resolved) as cli:
        main(["train", "--data", "digits,size=16", "--out", str(tmp_path / "a"), "--time-budget", "0.12"])
    # it says what `default` is for these images: 16-px digits keep 12 px a side, (12/16)² of the area
    assert ("augmentation: crop=resized,crop_scale=0.5625,pad=4,flip=0.5,jitter=2.0,hue=0.0,grayscale=0.2,"
            "rescale=0,rotate=0.0; 16×16 views of 16×16 images") in capsys.readouterr().out
    with pytest.raises(Resolved) as api:
        fit("digits,size=16", minutes=0.1197, out=tmp_path / "b", progress=False)
    for got, minutes, channels in ((cli, 0.12, 256), (api, 0.1197, 128)):
        cfg = got.value.args[0]
        assert (cfg.optim.time_budget, cfg.optim.epochs, cfg.model.channels) == (minutes, 1_000_000, channels)
