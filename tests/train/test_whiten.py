import numpy as np
import pytest
import torch

from infomax.checkpoint import load_checkpoint
from infomax.config import resolve
from infomax.embed.embedder import Embedder
from infomax.model.dim import DIM
from infomax.train.loop import train
from infomax.train.whiten import fit_whitening
from tests.datasets import small_digits


def _reference(mu: np.ndarray, power: float = 0.25):
    """m and W = V diag(λ^-p) Vᵀ over the eigenvalues above 1e-6·max, in float64 with numpy."""
    m = mu.mean(0)
    lam, v = np.linalg.eigh(np.cov(mu.T, bias=True))
    keep = lam > 1e-6 * lam.max()
    return m, (v[:, keep] * lam[keep] ** -power) @ v[:, keep].T


def test_fit_whitening_uses_the_codes_of_the_encoder_in_eval_mode():
    from infomax.model.config import ModelConfig

    model = DIM(ModelConfig(image_size=16, in_channels=1, channels=16, z_dim=8))
    x = torch.randn(40, 1, 16, 16)
    model.train()
    model.encoder(x)  # running statistics differ from the batch's: eval mode must be used
    n, lam = fit_whitening(model.encoder, model.whitening, [x[:25], x[25:]])
    assert n == 40 and model.encoder.training  # the mode is given back
    with torch.no_grad():
        mu = model.encoder.eval()(x).mu.double().numpy()
    m, w = _reference(mu)
    np.testing.assert_allclose(lam.numpy(), np.linalg.eigvalsh(np.cov(mu.T, bias=True))[::-1], rtol=1e-4,
                               atol=1e-9 * float(lam[0]))
    np.testing.assert_allclose(model.whitening.mean.numpy(), m, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.whitening.matrix.numpy(), w, rtol=1e-3, atol=1e-3 * np.abs(w).max())


def test_a_whitened_run_embeds_y_as_the_whitened_mu_of_its_train_images(tmp_path):
    data = small_digits()
    n_train = len(data.split(data.train_split))
    cfg = resolve("digits", {}, {"preset": "recommended", "batch_size": 32, "max_steps": 3, "device": "cpu",
                                 "z_dim": 16, "channels": 16, "bn_recalibrate": 0, "whiten": 10 * n_train})
    train(cfg, tmp_path, data, progress=False)
    ckpt = load_checkpoint(tmp_path)
    assert float(ckpt.weights["whitening.power"]) == pytest.approx(0.3)  # recommended's power
    embedder = Embedder.from_checkpoint(tmp_path, device="cpu")
    assert embedder.whitening_power == pytest.approx(0.3) and embedder.mirror
    train_images = data.split(data.train_split).images
    out = embedder.embed_features(train_images, ("y", "mu"))
    m, w = _reference(out["mu"].astype(np.float64), 0.3)  # every train image, as the fit saw them
    np.testing.assert_allclose(ckpt.weights["whitening.mean"].numpy(), m, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ckpt.weights["whitening.matrix"].numpy(), w, rtol=1e-3, atol=1e-3 * np.abs(w).max())
    np.testing.assert_allclose(out["y"], (out["mu"] - m) @ w, rtol=1e-3, atol=1e-3 * np.abs(out["y"]).max())
    unwhitened = resolve("digits", {}, {"preset": "recommended", "batch_size": 32, "max_steps": 3, "device": "cpu",
                                        "z_dim": 16, "channels": 16, "whiten": 0})
    train(unwhitened, tmp_path / "plain", data, progress=False)
    plain = Embedder.from_checkpoint(tmp_path / "plain", device="cpu")
    assert plain.whitening_power is None
    out = plain.embed_features(train_images[:8], ("y", "mu"))
    assert np.array_equal(out["y"], out["mu"])


def _plain_run(path, data):
    cfg = resolve("digits", {}, {"preset": "recommended", "batch_size": 32, "max_steps": 3, "device": "cpu",
                                 "z_dim": 16, "channels": 16, "whiten": 0})
    train(cfg, path, data, progress=False)
    return path


def test_training_on_from_a_whitened_run_drops_the_stale_whitening(tmp_path):
    data = small_digits()
    over = {"preset": "recommended", "batch_size": 32, "device": "cpu", "z_dim": 16, "channels": 16}
    train(resolve("digits", {}, {**over, "max_steps": 3, "whiten": 100}), tmp_path, data, progress=False)
    assert float(load_checkpoint(tmp_path).weights["whitening.power"]) == pytest.approx(0.3)
    train(resolve("digits", {}, {**over, "max_steps": 5, "whiten": 0}), tmp_path, data, resume=True, progress=False)
    after = load_checkpoint(tmp_path)
    assert after.step == 5 and float(after.weights["whitening.power"]) == 0  # fitted to weights it no longer has
    assert Embedder.from_checkpoint(tmp_path, device="cpu").whitening_power is None


def test_whitening_a_finished_run_keeps_its_step_and_training_state(tmp_path):
    from infomax.cli import main
    from infomax.data import load

    run = _plain_run(tmp_path / "run", small_digits())
    before = load_checkpoint(run)
    assert main(["whiten", str(run), "--data", "digits,size=16", "--images", "100000"]) == 0
    after = load_checkpoint(run)
    assert after.step == before.step and after.config["train"]["run"]["whiten"] == 1437  # every train image of the spec
    for k in before.weights:  # only the whitening changed
        assert torch.equal(after.weights[k], before.weights[k]) != k.startswith("whitening.")
    state_before, state_after = before.training_state(), after.training_state()
    assert torch.equal(state_before["generator"], state_after["generator"])
    train_images = load("digits,size=16", progress=False).splits["train"].images
    out = Embedder.from_checkpoint(run, device="cpu").embed_features(train_images, ("y", "mu"))
    m, w = _reference(out["mu"].astype(np.float64), 0.3)
    np.testing.assert_allclose(after.weights["whitening.mean"].numpy(), m, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out["y"], (out["mu"] - m) @ w, rtol=1e-3, atol=1e-3 * np.abs(out["y"]).max())


def test_whiten_writes_encoder_only_copies_and_refuses_to_overwrite_what_it_should_not(tmp_path):
    from infomax.errors import InfomaxError
    from infomax.train.whiten import whiten_checkpoint

    run = _plain_run(tmp_path / "run", small_digits())
    from infomax.data import load

    done = whiten_checkpoint(run, out=tmp_path / "enc", data="digits,size=16", images=100000, power=0.5)
    assert done["images"] == 1437 and 8 <= done["directions"] <= 16 and done["largest"] > done["mean"] > 0
    enc = done["path"]
    slim = load_checkpoint(enc)
    assert float(slim.weights["whitening.power"]) == 0.5 and not any(k.startswith("objective.") for k in slim.weights)
    assert float(load_checkpoint(run).weights["whitening.power"]) == 0  # the run itself is left as it was
    y = Embedder.from_checkpoint(enc, device="cpu").embed(load("digits,size=16", progress=False).splits["train"].images)
    lam = np.linalg.eigvalsh(np.cov(y.astype(np.float64).T, bias=True))  # PCA whitening: 1 on the span, 0 off it
    assert np.all(np.minimum(np.abs(lam), np.abs(lam - 1)) < 1e-3) and (lam > 0.5).sum() >= 8
    with pytest.raises(InfomaxError, match="part of the package: give --out"):
        whiten_checkpoint("pretrained:cifar10", data="digits,size=16")
    with pytest.raises(InfomaxError, match="at least 2"):
        whiten_checkpoint(run, images=1)
    with pytest.raises(InfomaxError, match=r"--power = 0.0 must be in \(0, 1\]"):
        whiten_checkpoint(run, power=0.0)
    with pytest.raises(InfomaxError, match=r"run.whiten_power = 1.5 must be in \(0, 1\]"):
        resolve("digits", {}, {"preset": "recommended", "whiten_power": 1.5})
