"""The Python API: load_data on arrays, fit with an encoder of the user's own, load, Model.embed,
build_index(...).search against numpy."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

import infomax
from infomax.data.dataset import NORMALIZATIONS
from infomax.model.config import ModelConfig
from infomax.model.dim import DIM
from infomax.objective.config import ObjectiveConfig
from infomax.checkpoint import load_checkpoint
from tests.datasets import small_digits

SETTINGS = {"z_dim": 16, "critic_hidden": 64, "batch_size": 64, "lr": 5e-3, "device": "cpu", "log_every": 5}


def tiny_backbone() -> nn.Module:
    """16×16 grey images -> a 32×4×4 local map: what a user might bring."""
    torch.manual_seed(5)
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))


def dim_of(backbone, weights=None):
    """The DIM that fit builds for the backbone (seed preset, SETTINGS), with its initial weights or `weights`."""
    torch.manual_seed(0)  # run.seed: train seeds torch before building the model
    model = DIM(ModelConfig(encoder="custom", image_size=16, in_channels=1, z_dim=16),
                ObjectiveConfig(critic_hidden=64), encoder=copy.deepcopy(backbone))
    if weights is not None:
        model.load_state_dict(weights)
    return model


@pytest.fixture(scope="module")
def custom_run(tmp_path_factory):
    images = small_digits().splits["train"].images  # 256×1×16×16 uint8
    backbone = tiny_backbone()
    run = infomax.fit(images.transpose(0, 2, 3, 1), preset="seed", steps=20, encoder=copy.deepcopy(backbone),
                      out=tmp_path_factory.mktemp("custom"), progress=False, **SETTINGS)
    return run, backbone, images


def probe_objective(model, images):
    """The objective on a fixed batch with fixed draws (the training's normalization)."""
    scale, offset = NORMALIZATIONS["center"]
    x = torch.from_numpy(images[:128]).float() * scale + offset
    with torch.no_grad():
        _, terms = model.loss(x, generator=torch.Generator().manual_seed(1))
    return sum(w * terms[k].item() for k, w in model.objective.cfg.weights.items()), terms


def test_a_custom_encoder_trains_and_its_loss_falls(custom_run):
    run, backbone, images = custom_run
    assert run.steps == 20 and run.stopped_by == "max_steps"
    assert run.config.model.z_dim == 16 and run.config.preset == "seed"
    ckpt = load_checkpoint(run.path)
    assert ckpt.config["model"]["encoder"] == "custom" and ckpt.step == 20
    before, start = probe_objective(dim_of(backbone), images)
    after, end = probe_objective(dim_of(backbone, ckpt.weights), images)
    assert after < before - 0.05 * abs(before), (before, after)
    assert end["global"] < start["global"]
    # the model's embeddings are the trained encoder's μ, one image at a time (eval mode)
    scale, offset = NORMALIZATIONS["center"]
    trained = dim_of(backbone, ckpt.weights).eval()
    with torch.no_grad():
        mu = trained.encoder(torch.from_numpy(images[:10]).float() * scale + offset).mu.numpy()
    np.testing.assert_allclose(run.model.embed(images[:10]), mu, rtol=1e-4, atol=1e-5)


def test_load_with_the_encoder_gives_the_same_embeddings(custom_run):
    run, backbone, images = custom_run
    template = copy.deepcopy(backbone)
    model = infomax.load(run.path, encoder=template, device="cpu")
    np.testing.assert_allclose(model.embed(images[:40]), run.model.embed(images[:40]), rtol=1e-6, atol=1e-7)
    assert all(torch.equal(a, b) for a, b in zip(template.parameters(), backbone.parameters()))  # not loaded into
    assert model.dim == 16
    with pytest.raises(infomax.InfomaxError, match="encoder module of your own"):
        infomax.load(run.path, device="cpu")


def test_embed_takes_pil_images_and_arrays_alike(custom_run):
    from PIL import Image

    run, _, images = custom_run
    pil = [Image.fromarray(im[0]) for im in images[:6]]  # mode L, 16×16
    want = run.model.embed(images[:6])
    np.testing.assert_allclose(run.model.embed(pil), want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(run.model.embed(images[:6].transpose(0, 2, 3, 1)), want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(run.model.embed(pil[2]), want[2:3], rtol=1e-6, atol=1e-7)
    with pytest.raises(infomax.InfomaxError, match=r"model reads \(1, 16, 16\)"):
        run.model.embed(np.zeros((2, 1, 32, 32), np.uint8))


def test_load_data_reads_nhwc_nchw_grey_and_pil_alike():
    rng = np.random.default_rng(0)
    nhwc = rng.integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    nchw = np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))
    a, b = infomax.load_data(nhwc), infomax.load_data(nchw)
    np.testing.assert_array_equal(a.splits["train"].images, nchw)
    np.testing.assert_array_equal(b.splits["train"].images, nchw)
    assert a.image_shape == (3, 16, 16) and a.splits["train"].ids == ["0", "1", "2", "3", "4"]
    grey = rng.integers(0, 256, (4, 16, 16), dtype=np.uint8)
    np.testing.assert_array_equal(infomax.load_data(grey).splits["train"].images, grey[:, None])
    from PIL import Image

    pil = infomax.load_data([Image.fromarray(im) for im in nhwc], labels=[1, 0, 1, 2, 2])
    np.testing.assert_array_equal(pil.splits["train"].images, nchw)
    assert pil.splits["train"].labels.tolist() == [1, 0, 1, 2, 2]
    with pytest.raises(infomax.InfomaxError, match="must be uint8"):
        infomax.load_data(nhwc.astype(np.float32) / 255)


def test_build_index_search_returns_the_exact_cosine_neighbours():
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((40, 8)).astype(np.float32)
    queries = rng.standard_normal((5, 8)).astype(np.float32)
    index = infomax.build_index(vectors)
    assert len(index) == 40
    scores, rows = index.search(queries, k=6)
    v, q = vectors.astype(np.float64), queries.astype(np.float64)
    cosine = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (v / np.linalg.norm(v, axis=1, keepdims=True)).T
    want = np.argsort(-cosine, axis=1)[:, :6]
    np.testing.assert_array_equal(rows, want)
    np.testing.assert_allclose(scores, np.take_along_axis(cosine, want, axis=1), rtol=1e-5, atol=1e-5)
    # a vector's nearest neighbour is itself
    _, self_rows = index.search(vectors[:3], k=1)
    assert self_rows[:, 0].tolist() == [0, 1, 2]


@pytest.mark.parametrize("size", [96, 224])
def test_large_images_train_and_embed(tmp_path, size):
    """96 px (a 3×3 map C after 5 blocks) and 224 px (4×4 after 6): fit, then embed equals μ of the
    trained encoder on the normalized pixels (x / 255 − 0.5), in float64."""
    rng = np.random.default_rng(size)
    images = rng.integers(0, 256, (8, size, size, 3), dtype=np.uint8)
    run = infomax.fit(images, "seed", steps=2, out=tmp_path / "run", batch_size=4, channels=32, z_dim=8,
                      progress=False)
    z = run.model.embed(images)
    encoder = run.model.encoder.double().eval()
    x = torch.from_numpy(images).permute(0, 3, 1, 2).double() / 255 - 0.5
    with torch.no_grad():
        out = encoder(x)
    assert out.local.shape[-1] == (3 if size == 96 else 4)
    np.testing.assert_allclose(z, out.mu.numpy(), rtol=1e-4, atol=1e-5)
