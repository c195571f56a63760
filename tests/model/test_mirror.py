"""The feature averaged over an image and its left-right mirror (model/mirror.py), against two
separate float64 forward passes, and as embed, the whitening fit and `infomax whiten` use it."""

import numpy as np
import pytest
import torch

from infomax.model.config import ModelConfig
from infomax.model.encoder import Encoder
from infomax.model.mirror import mirror_average, mirror_images


def _encoder(seed: int = 0) -> Encoder:
    torch.manual_seed(seed)
    enc = Encoder(ModelConfig(image_size=16, in_channels=3, channels=16, z_dim=8)).double()
    enc.train()
    enc(torch.randn(32, 3, 16, 16, dtype=torch.float64))  # running statistics away from their init
    return enc.eval()


def test_mirror_images_reverses_each_row():
    x = torch.arange(2 * 1 * 2 * 3).reshape(2, 1, 2, 3)
    assert mirror_images(x)[1, 0].tolist() == [[8, 7, 6], [11, 10, 9]]


def test_the_average_is_half_the_image_plus_half_its_mirror():
    enc, x = _encoder(), torch.randn(5, 3, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        got = mirror_average(enc, x)
        a, b = enc(x), enc(x.flip(-1))  # two passes, the mirror built independently
    for name in ("mu", "logvar", "pooled"):
        want = (getattr(a, name) + getattr(b, name)) / 2
        torch.testing.assert_close(getattr(got, name), want, rtol=1e-12, atol=1e-12)
    # the local map of the mirror is flipped back: position (i, j) of both halves looks at the same pixels
    torch.testing.assert_close(got.local, (a.local + b.local.flip(-1)) / 2, rtol=1e-12, atol=1e-12)
    assert float((a.mu - b.mu).abs().max()) > 1e-3  # the encoder is not symmetric: the average is not μ


def test_the_average_is_mirror_invariant_and_leaves_symmetric_images_alone():
    enc, x = _encoder(1), torch.randn(4, 3, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        flipped, plain = mirror_average(enc, x.flip(-1)).mu, mirror_average(enc, x).mu
        torch.testing.assert_close(flipped, plain, rtol=1e-12, atol=1e-12)
        symmetric = (x + x.flip(-1)) / 2  # its own mirror: averaging changes nothing
        torch.testing.assert_close(mirror_average(enc, symmetric).mu, enc(symmetric).mu, rtol=1e-12, atol=1e-12)


def test_embed_averages_every_feature_when_the_run_says_so(tmp_path):
    from infomax.config import resolve
    from infomax.embed.embedder import Embedder
    from infomax.train.loop import train
    from tests.datasets import small_digits

    data = small_digits()
    cfg = resolve("digits", {}, {"preset": "recommended", "batch_size": 32, "max_steps": 3, "device": "cpu",
                                 "z_dim": 16, "channels": 16, "whiten": 0, "augment": "flip=0.5"})
    assert cfg.run.mirror  # recommended's
    train(cfg, tmp_path, data, progress=False)
    mirrored = Embedder.from_checkpoint(tmp_path, device="cpu")
    plain = Embedder.from_checkpoint(tmp_path, device="cpu")
    plain.mirror = False
    images = data.split(data.train_split).images[:40]
    got = mirrored.embed_features(images, ("y", "mu", "fc", "conv"))
    a = plain.embed_features(images, ("mu", "fc", "conv"))
    b = plain.embed_features(np.ascontiguousarray(images[..., ::-1]), ("mu", "fc", "conv"))
    assert mirrored.mirror and np.array_equal(got["y"], got["mu"])  # not whitened: y is the averaged μ
    for name in ("mu", "fc"):
        np.testing.assert_allclose(got[name], (a[name] + b[name]) / 2, rtol=1e-5, atol=1e-5)
    n, c, s = len(images), 16, 4  # conv: the N×channels×4×4 map, flattened; the mirror's flipped back
    back = b["conv"].reshape(n, c, s, s)[..., ::-1].reshape(n, -1)
    np.testing.assert_allclose(got["conv"], (a["conv"] + back) / 2, rtol=1e-5, atol=1e-5)
    assert float(np.abs(a["mu"] - b["mu"]).max()) > 1e-3


def test_whiten_can_turn_the_mirror_on_or_off_and_records_it(tmp_path):
    from infomax.checkpoint import load_checkpoint
    from infomax.config import resolve
    from infomax.data import load
    from infomax.embed.embedder import Embedder
    from infomax.errors import InfomaxError
    from infomax.train.loop import train
    from infomax.train.whiten import whiten_checkpoint
    from tests.datasets import small_digits

    data = small_digits()
    over = {"batch_size": 32, "max_steps": 3, "device": "cpu", "z_dim": 16, "channels": 16, "whiten": 0}
    train(resolve("digits", {}, {**over, "preset": "seed", "augment": "flip=0.5"}), tmp_path / "run", data,
          progress=False)
    done = whiten_checkpoint(tmp_path / "run", out=tmp_path / "on", data="digits,size=16", mirror=True)
    assert (done["mirror"], done["power"]) == (True, 0.25)  # the seed's power, the mirror asked for
    run = load_checkpoint(done["path"]).config["train"]["run"]
    assert (run["mirror"], run["whiten"], run["whiten_power"]) == (True, done["images"], 0.25)
    on = Embedder.from_checkpoint(done["path"], device="cpu")
    train_images = load("digits,size=16", progress=False).splits["train"].images
    mu = on.embed_features(train_images, ("mu",))["mu"].astype(np.float64)  # every train image is in the fit
    np.testing.assert_allclose(on.whitening.mean.numpy(), mu.mean(0), rtol=1e-4, atol=1e-4)
    off = whiten_checkpoint(done["path"], out=tmp_path / "off", data="digits,size=16", mirror=False)
    assert not off["mirror"] and not Embedder.from_checkpoint(off["path"], device="cpu").mirror
    train(resolve("digits", {}, {**over, "preset": "seed"}), tmp_path / "plain", data, progress=False)
    with pytest.raises(InfomaxError, match="never flips, so the encoder did not learn to treat the two alike"):
        whiten_checkpoint(tmp_path / "plain", out=tmp_path / "bad", data="digits,size=16", mirror=True)
