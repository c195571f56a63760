"""Encoder-only checkpoints (save_encoder, `infomax export --encoder`) and the encoders the package
ships as `pretrained:NAME`: they embed exactly as the run they came from, wherever a checkpoint goes."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import infomax
from infomax import checkpoint
from infomax.checkpoint import (MANIFEST, WEIGHTS, checkpoint_ref, find_checkpoint, load_checkpoint,
                                pretrained_names, save_encoder)
from infomax.cli import main
from infomax.errors import InfomaxError
from tests.datasets import small_digits

SHARED_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpg.zip"
SHIPPED = {"cifar10": (3, 32), "tiny-imagenet": (3, 64)}  # name: (channels, image size)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    images = small_digits().splits["train"].images.transpose(0, 2, 3, 1)  # 256×16×16×1
    fit = infomax.fit(images, preset="recommended", steps=4, batch_size=32, z_dim=16, device="cpu",
                      out=tmp_path_factory.mktemp("run"), progress=False)
    return fit.path


def test_encoder_only_folder_embeds_exactly_as_its_run(run, tmp_path):
    out = save_encoder(run, tmp_path / "enc", about={"command": "infomax train ..."})
    full, slim = load_checkpoint(run), load_checkpoint(out)
    assert set(slim.weights) == {k for k in full.weights if k.startswith(("encoder.", "whitening."))}
    assert len(slim.weights) < len(full.weights)  # the critics stay behind
    assert all(torch.equal(slim.weights[k], full.weights[k]) for k in slim.weights)
    assert slim.config == full.config and slim.step == full.step == 4
    assert json.loads((out / MANIFEST).read_text())["about"] == {"command": "infomax train ..."}
    images = small_digits().splits["test"].images
    np.testing.assert_array_equal(infomax.load(out).embed(images), infomax.load(run).embed(images))
    with pytest.raises(InfomaxError, match="holds only an encoder"):
        slim.training_state()


def test_pretrained_names_resolve_and_unknown_names_are_refused(run, tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, "PRETRAINED", tmp_path)
    save_encoder(run, tmp_path / "digits16")
    (tmp_path / ".tmp-half-written").mkdir()  # a crashed write is no encoder
    assert pretrained_names() == ["digits16"]
    assert find_checkpoint("pretrained:digits16") == tmp_path / "digits16"
    assert checkpoint_ref("pretrained:digits16") == "pretrained:digits16"  # the same on every machine
    assert checkpoint_ref(run) == str(Path(run).resolve())
    images = small_digits().splits["test"].images
    np.testing.assert_array_equal(infomax.load("pretrained:digits16").embed(images), infomax.load(run).embed(images))
    with pytest.raises(InfomaxError, match="no pretrained encoder named 'digit'.*pretrained:digits16"):
        infomax.load("pretrained:digit")


def test_export_encoder_cli_then_embed_records_the_name(run, tmp_path, monkeypatch, capsys):
    assert main(["export", "--checkpoint", str(run), "--encoder", str(tmp_path / "enc")]) == 0
    assert "wrote" in capsys.readouterr().out
    monkeypatch.setattr(checkpoint, "PRETRAINED", tmp_path)
    assert main(["embed", "--checkpoint", "pretrained:enc", "--data", "digits,size=16", "--out",
                 str(tmp_path / "emb")]) == 0
    info = json.loads((tmp_path / "emb" / "embed.json").read_text())
    assert info["checkpoint"] == "pretrained:enc"
    assert main(["export", "--checkpoint", str(run), "--encoder", "a", "--onnx", "b.onnx"]) == 2
    assert "--onnx OUT.onnx or --encoder OUT" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_encoders_verify_and_say_how_they_were_made(name):
    assert name in pretrained_names()
    ckpt = load_checkpoint(f"pretrained:{name}")  # every file against its sha256
    folder = find_checkpoint(f"pretrained:{name}")
    assert sorted(p.name for p in folder.iterdir()) == [MANIFEST, WEIGHTS]
    assert (folder / WEIGHTS).stat().st_size < 8e6  # small enough to ship in the package
    about = json.loads((folder / MANIFEST).read_text())["about"]
    assert about["command"].startswith("infomax train") and about["preset"] == ckpt.config["train"]["preset"]
    assert 0 < about["knn_weighted_k200"] < 1 and 0 < about["linear_probe"] < 1
    assert float(ckpt.weights["whitening.power"]) == pytest.approx(0.3)
    # the command says how: the run's own fit at its end, or infomax whiten after a run without it
    assert "infomax whiten" in about["command"] or "--whiten 0" not in about["command"]
    model = infomax.load(f"pretrained:{name}")
    assert model.embedder.mirror and ckpt.config["train"]["run"]["mirror"]  # recommended's feature
    channels, size = SHIPPED[name]
    assert (model.embedder.in_channels, model.embedder.image_size) == (channels, size)
    rng = np.random.default_rng(0)
    features = model.embed(rng.integers(0, 256, (4, channels, size, size), dtype=np.uint8))
    assert features.shape == (4, model.embedder.z_dim) and np.isfinite(features).all()


@pytest.mark.shared
def test_pretrained_cifar10_beats_the_pixels_on_real_images():
    """On 5,000 train and 1,000 test images of CIFAR-10, weighted kNN on the shipped encoder's μ
    beats weighted kNN on the pixels by a wide margin (the full splits: docs/better.md)."""
    if not SHARED_CIFAR.is_file():
        pytest.skip(f"real data not present at {SHARED_CIFAR}")
    from infomax.eval.baselines import pixel_features
    from infomax.eval.knn import knn_accuracies, topk_neighbours

    data = infomax.load_data(f"folder:{SHARED_CIFAR}", progress=False)
    train, test = data.splits["train"], data.splits["test"]
    rows_train, rows_test = np.arange(0, 50000, 10), np.arange(0, 10000, 10)
    model = infomax.load("pretrained:cifar10", device="cpu")
    accuracy = {}
    for name, featurize in (("mu", model.embed), ("pixels", pixel_features)):
        gallery, queries = featurize(train.images[rows_train]), featurize(test.images[rows_test])
        scores, neighbours = topk_neighbours(queries, gallery, k=200)
        accuracy[name] = knn_accuracies(scores, train.labels[rows_train][neighbours], test.labels[rows_test],
                                        10)["knn_weighted_k200"]
    assert accuracy["mu"] > accuracy["pixels"] + 0.15, accuracy


def test_a_folder_without_size_is_read_at_the_encoders_side():
    from types import SimpleNamespace

    from infomax.embed.run import read_at_model_size

    encoder = SimpleNamespace(image_size=64, in_channels=3)
    assert read_at_model_size("folder:~/photos", encoder) == "folder:~/photos,size=64"
    assert read_at_model_size("folder:p.zip,mode=L", encoder) == "folder:p.zip,mode=L,size=64"
    assert read_at_model_size("folder:p.zip,size=32", encoder) == "folder:p.zip,size=32"  # as the user said
    assert read_at_model_size("cifar10:c.tar.gz", encoder) == "cifar10:c.tar.gz"  # its images have one size
