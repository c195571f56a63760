import csv
import math
import json

import numpy as np
import pytest
import torch

from infomax.errors import InfomaxError, TrainingDiverged
from infomax.checkpoint import load_checkpoint
from infomax.config import resolve
from infomax.objective.loss import DIMLoss
from infomax.train.loop import train


def _cfg(**over):
    base = {"preset": "seed", "batch_size": 32, "max_steps": 6, "checkpoint_every": 3, "log_every": 1, "device": "cpu",
            "z_dim": 32, "deterministic": True}
    return resolve("digits", {}, {**base, **over})


# the reference's objective; two augmented views with InfoNCE over all in-batch pairs; the
# options with state of their own (the prior's discriminator, attention, a drawn input size); small crops;
# a queue of past codes (64 keys a step into 96 slots: it wraps before the resume)
OBJECTIVES = [{}, {"estimator": "infonce", "critic": "dot", "negatives": "all", "views": 2, "augment": "default",
                  "bn_recalibrate": 64},
              {"prior": "adversarial", "attention": True, "augment": "crop=pad,rescale=13", "views": 2},
              {"estimator": "infonce", "critic": "dot", "negatives": "all", "views": 2, "augment": "default",
               "small_crops": 2},
              {"estimator": "infonce", "critic": "dot", "negatives": "all", "views": 2, "augment": "default",
               "queue": 96}]


@pytest.mark.parametrize("objective", OBJECTIVES, ids=["seed", "two-view-infonce", "adversarial-attention-rescale",
                                                       "multi-crop", "queue"])
def test_resume_equals_straight_run(tmp_path, digits16, objective):
    straight = train(_cfg(max_steps=8, **objective), tmp_path / "a", digits16, progress=False)
    train(_cfg(max_steps=4, **objective), tmp_path / "b", digits16, progress=False)
    resumed = train(_cfg(max_steps=8, **objective), tmp_path / "b", digits16, resume=True, progress=False)
    assert straight.step == resumed.step == 8
    wa, wb = load_checkpoint(tmp_path / "a").weights, load_checkpoint(tmp_path / "b").weights
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    with open(tmp_path / "b" / "log.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == list(range(1, 9))


def test_run_folder_holds_config_logs_and_curve(tmp_path, digits16):
    result = train(_cfg(), tmp_path, digits16, progress=False)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["train"]["optim"]["batch_size"] == 32 and saved["model"]["image_size"] == 16
    assert saved["train"]["preset"] == "seed" and saved["objective"] == saved["train"]["objective"]
    assert saved["objective"]["negatives"] == "shuffle" and saved["data"]["spec"] == digits16.spec
    assert saved["data"]["normalization"] == "center"
    assert (tmp_path / "loss.png").is_file() and (tmp_path / "tensorboard").is_dir()
    assert load_checkpoint(tmp_path).config == saved
    assert result.epoch == 6 // (256 // 32)


def test_resume_refuses_changed_model(tmp_path, digits16):
    train(_cfg(max_steps=2), tmp_path, digits16, progress=False)
    with pytest.raises(InfomaxError, match="z_dim: 32 -> 64"):
        train(_cfg(max_steps=4, z_dim=64), tmp_path, digits16, resume=True, progress=False)
    with pytest.raises(InfomaxError, match="already holds a run"):
        train(_cfg(max_steps=4), tmp_path, digits16, progress=False)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, digits16, monkeypatch):
    real = DIMLoss.forward
    calls = {"n": 0}

    def poisoned(self, *args, **kwargs):
        loss, terms = real(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 5:
            terms["local"] = terms["local"] * float("nan")
            loss = self.total(terms)
        return loss, terms

    monkeypatch.setattr(DIMLoss, "forward", poisoned)
    with pytest.raises(TrainingDiverged, match="step 5 .*local"):
        train(_cfg(), tmp_path, digits16, progress=False)
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.step == 3
    assert all(torch.isfinite(v.float()).all() for v in ckpt.weights.values())


def test_rescale_too_small_for_the_encoder_is_refused(tmp_path, digits16):
    with pytest.raises(InfomaxError, match="use rescale=9 to 16"):  # 16-pixel digits pool 16 -> 8 -> 4
        train(_cfg(augment="rescale=8"), tmp_path, digits16, progress=False)


@pytest.mark.parametrize("prior,weighted,logged", [("kl", "kl", ()), ("none", None, ("kl",)),
                                                   ("adversarial", "prior", ("kl", "prior_critic"))])
def test_prior_choice_sets_the_weighted_term_and_the_log(tmp_path, digits16, prior, weighted, logged):
    train(_cfg(prior=prior, gamma=0.1), tmp_path, digits16, progress=False)
    with open(tmp_path / "log.csv") as f:
        rows = list(csv.DictReader(f))
    for key in ("kl", "prior", "prior_critic"):
        assert (rows[0][key] != "") == (key == weighted or key in logged), key
    losses = {k: float(rows[-1][k]) for k in ("global", "local", "kl", "prior") if rows[-1][k]}
    want = 0.5 * losses["global"] + 1.5 * losses["local"] + (0.1 * losses[weighted] if weighted else 0.0)
    if prior == "adversarial":  # the minimized loss includes the discriminator's own, unweighted
        want += float(rows[-1]["prior_critic"])
    assert float(rows[-1]["loss"]) == pytest.approx(want, rel=1e-5)


def test_data_smaller_than_a_batch_is_refused(tmp_path, digits16):
    with pytest.raises(InfomaxError, match="fewer than one batch"):
        train(_cfg(batch_size=512), tmp_path, digits16, progress=False)


def test_time_budget_stops_cleanly(tmp_path, digits16):
    result = train(_cfg(max_steps=10_000, time_budget=0.002), tmp_path, digits16, progress=False)
    assert result.stopped_by == "time_budget" and 1 <= result.step < 10_000
    assert load_checkpoint(tmp_path).step == result.step


def test_time_budget_counts_resumed_time(tmp_path, digits16):
    first = train(_cfg(max_steps=10_000, time_budget=0.002), tmp_path, digits16, progress=False)
    spent = load_checkpoint(tmp_path).training_state()["train_seconds"]
    assert spent >= 0.12
    # the budget is spent already: a resumed call runs one step, not another 0.12 s of them
    again = train(_cfg(max_steps=10_000, time_budget=0.002), tmp_path, digits16, resume=True, progress=False)
    assert again.stopped_by == "time_budget" and again.step == first.step + 1


def test_cosine_schedule_sets_each_steps_lr(tmp_path, digits16):
    train(_cfg(max_steps=8, lr=2e-3, lr_schedule="cosine"), tmp_path, digits16, progress=False)
    with open(tmp_path / "log.csv") as f:
        lrs = [float(r["lr"]) for r in csv.DictReader(f)]
    # the row of step s (1-based) logs the lr of its update, taken at run fraction (s - 1) / 8
    expected = [2e-3 * 0.5 * (1 + math.cos(math.pi * (s - 1) / 8)) for s in range(1, 9)]
    assert lrs == pytest.approx(expected, rel=1e-12)


def test_wsd_schedule_holds_the_rate_then_halves_it_at_step_ten_of_ten(tmp_path, digits16):
    train(_cfg(max_steps=10, lr=2e-3, lr_schedule="wsd"), tmp_path, digits16, progress=False)
    with open(tmp_path / "log.csv") as f:
        lrs = [float(r["lr"]) for r in csv.DictReader(f)]
    # step s takes run fraction (s - 1) / 10: the base rate through p = 0.8, half of it at p = 0.9
    assert lrs == pytest.approx([2e-3] * 9 + [1e-3], rel=1e-12)


def test_resume_follows_the_cosine_schedule(tmp_path, digits16, monkeypatch):
    cfg = _cfg(lr_schedule="cosine", max_steps=6, checkpoint_every=3)
    train(cfg, tmp_path / "a", digits16, progress=False)
    real, calls = DIMLoss.forward, {"n": 0}

    def killed_at_step_5(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(DIMLoss, "forward", killed_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "b", digits16, progress=False)
    monkeypatch.setattr(DIMLoss, "forward", real)
    assert load_checkpoint(tmp_path / "b").step == 3
    train(cfg, tmp_path / "b", digits16, resume=True, progress=False)
    wa, wb = load_checkpoint(tmp_path / "a").weights, load_checkpoint(tmp_path / "b").weights
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_default_crops_down_to_a_fifth_on_views_at_half_the_side(digits16):
    # `default` reads the images' side and the views': 10-pixel views of 16-pixel images keep 12
    # of the image's pixels a side ((12/16)², not the whole view's), and 64-pixel images on
    # 32-pixel views get crops down to a fifth; 33-pixel views and the images' own side Augment()'s 0.3
    from infomax.data.dataset import Dataset, Split
    from infomax.train.distributed import current
    from infomax.train.feed import feed_for

    big = Dataset("x", "", {"train": Split(np.zeros((40, 3, 64, 64), np.uint8), None, [str(i) for i in range(40)])})
    for data, train_size, scale in ((digits16, 10, 0.5625), (digits16, 0, 0.5625), (big, 32, 0.2), (big, 33, 0.3),
                                    (big, 0, 0.3)):
        cfg = _cfg(train_size=train_size, augment="default", views=2)
        feed = feed_for(data, cfg, current(), torch.device("cpu"), channels_last=False)
        assert feed.source.augment.crop_scale == scale


def test_a_training_side_trains_on_smaller_views_and_embeds_the_images_at_their_own(tmp_path, digits16):
    # model.train_size = 10 on 16-pixel digits: the steps see 10-pixel views, the BatchNorm
    # re-estimate and the whitening plain 16-pixel images, and the checkpoint embeds 16-pixel ones
    from infomax.embed.embedder import Embedder
    from infomax.data.pixels import normalize_pixels
    from infomax.model.encoder import Encoder

    sides = []
    hook = torch.nn.modules.module.register_module_forward_pre_hook(
        lambda module, args: sides.append(args[0].shape[-1]) if isinstance(module, Encoder) else None)
    try:
        train(_cfg(train_size=10, augment="default", views=2, bn_recalibrate=64, whiten=64, max_steps=3), tmp_path,
              digits16, progress=False)
    finally:
        hook.remove()
    assert set(sides[:3]) == {10} and sides[3:] and set(sides[3:]) == {16}
    ckpt = load_checkpoint(tmp_path)
    assert (ckpt.config["model"]["image_size"], ckpt.config["model"]["train_size"]) == (16, 10)
    embedder = Embedder.from_checkpoint(tmp_path, device="cpu")
    images = digits16.splits["test"].images[:8]
    encoder = Encoder(embedder.model_config).eval()
    encoder.load_state_dict({k[len("encoder."):]: v for k, v in ckpt.weights.items() if k.startswith("encoder.")})
    with torch.no_grad():
        mu = encoder.double()(normalize_pixels(torch.from_numpy(images), "center").double()).mu
    got = embedder.embed_features(images, features=("mu",))["mu"]
    torch.testing.assert_close(torch.from_numpy(got).double(), mu, atol=1e-4, rtol=1e-4)
    with pytest.raises(InfomaxError, match="model.train_size = 17 is larger than the 16-pixel images"):
        train(_cfg(train_size=17), tmp_path / "big", digits16, progress=False)
