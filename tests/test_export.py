"""The ONNX export (uint8 images -> μ): onnxruntime against PyTorch and a float64 forward pass.

Tolerance: μ goes through five 3×3 convolutions (sums of ≤ 2,304 products) and a linear layer in
float32, whose unit roundoff is 6e-8; PyTorch (oneDNN) and onnxruntime (MLAS) sum in different
orders, so they differ by rounding alone, about 1e-7 here for |μ| ≲ 1 (both printed with -s).
1e-4 leaves a wide margin for that, while a normalization off by a single grey level (1/255)
moves μ by more than 1e-3 (checked below), so a graph that reads pixels wrongly cannot pass.
"""

import copy
import json
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
onnx = pytest.importorskip("onnx")

from infomax.cli import main  # noqa: E402
from infomax.data import load  # noqa: E402
from infomax.data.dataset import pixel_scale  # noqa: E402
from infomax.embed.embedder import Embedder  # noqa: E402
from infomax.errors import InfomaxError  # noqa: E402
from infomax.export import export_onnx, max_abs_difference, run_onnx  # noqa: E402
from infomax.config import resolve  # noqa: E402
from infomax.train.loop import train  # noqa: E402

TOL = 1e-4
SPEC = "digits,size=16"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A model trained 3 steps on the real digits (16×16, one channel; flipped left-right half the
    time, so that its feature may average each image with its mirror), exported once."""
    root = tmp_path_factory.mktemp("export")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INFOMAX_HOME", str(root / "home"))
        data = load(SPEC, progress=False)
        cfg = resolve("digits", {}, {"preset": "seed", "batch_size": 32, "max_steps": 3, "device": "cpu", "z_dim": 16,
                                       "augment": "flip=0.5"})
        train(cfg, root / "run", data, progress=False)
        info = export_onnx(root / "run", root / "out" / "enc.onnx")
        yield root, data.splits["test"].images, info


def float64_mu(embedder: Embedder, images: np.ndarray) -> np.ndarray:
    """The same encoder and normalization in float64: uint8 N×C×H×W -> N×z."""
    encoder = copy.deepcopy(embedder.encoder).double().to(memory_format=torch.contiguous_format)
    with torch.no_grad():
        scale, offset = pixel_scale(embedder.normalization)
        x = torch.from_numpy(np.array(images)).double() * scale + offset
        return encoder(x).mu.numpy()


def test_onnx_matches_pytorch_on_real_images(exported):
    root, images, info = exported
    images = images[:64]
    embedder = Embedder.from_checkpoint(root / "run", device="cpu")
    ort, torch32, exact = run_onnx(info["path"], images), embedder.embed(images), float64_mu(embedder, images)
    vs_torch, vs_exact, torch_vs_exact = (float(np.abs(a - b).max()) for a, b in ((ort, torch32), (ort, exact), (torch32, exact)))
    print(f"\nmax |μ|={np.abs(exact).max():.3f}; max abs difference onnxruntime−PyTorch {vs_torch:.2e}, "
          f"onnxruntime−float64 {vs_exact:.2e}, PyTorch−float64 {torch_vs_exact:.2e}")
    assert ort.dtype == np.float32 and ort.shape == (64, 16)
    assert vs_torch <= TOL and vs_exact <= TOL
    assert max_abs_difference(info["path"], embedder, images) == pytest.approx(vs_torch, abs=1e-9)
    assert float(np.abs(exact).max()) > 1e-2  # the features are not all ~0, so the comparison means something


def test_a_whitened_mirrored_checkpoint_exports_both(exported, tmp_path):
    from infomax.model.whitening import whiten
    from infomax.train.whiten import whiten_checkpoint

    root, images, _ = exported
    images = images[:64]
    enc = whiten_checkpoint(root / "run", out=tmp_path / "whitened", data=SPEC, images=100000, mirror=True)["path"]
    info = export_onnx(enc, tmp_path / "w.onnx")
    embedder = Embedder.from_checkpoint(enc, device="cpu")
    w = embedder.whitening
    plain, mirrored = float64_mu(embedder, images), float64_mu(embedder, images[..., ::-1])
    exact = ((plain + mirrored) / 2 - w.mean.double().numpy()) @ w.matrix.double().numpy()  # y in float64
    ort = run_onnx(info["path"], images)
    assert float(np.abs(ort - exact).max()) <= TOL * max(1.0, float(np.abs(exact).max()))
    assert float(np.abs((plain - mirrored)).max()) > 1e-2  # the mirror's μ differs: the average means something
    assert float(np.abs(exact - plain).max()) > 1e-2  # y is not μ
    np.testing.assert_allclose(embedder.embed(images), whiten(torch.from_numpy(embedder.embed_features(
        images, ("mu",))["mu"]), w.mean, w.matrix).numpy(), rtol=1e-5, atol=1e-5)


def test_batch_is_dynamic_and_rows_independent(exported):
    root, images, info = exported
    graph = onnx.load(info["path"]).graph
    (inp,), (out,) = graph.input, graph.output
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["N", 1, 16, 16]
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["N", 16]
    embedder = Embedder.from_checkpoint(root / "run", device="cpu")
    one, seven = run_onnx(info["path"], images[3:4]), run_onnx(info["path"], images[3:10])
    assert one.shape == (1, 16) and seven.shape == (7, 16)
    np.testing.assert_allclose(one, embedder.embed(images[3:4]), rtol=0, atol=TOL)
    np.testing.assert_allclose(seven, embedder.embed(images[3:10]), rtol=0, atol=TOL)
    np.testing.assert_allclose(seven[:1], one, rtol=0, atol=1e-6)  # eval mode: a row does not see its batch


def test_normalization_is_baked_in_from_the_embedder(exported, tmp_path):
    root, images, info = exported
    embedder = Embedder.from_checkpoint(root / "run", device="cpu")
    assert embedder.normalization == "center" and info["normalization"]["offset"] == -0.5  # x/255 − 0.5
    base = run_onnx(info["path"], images[:16])
    embedder.normalization = "symmetric"  # x/127.5 − 1: the export follows the embedder's
    moved = export_onnx(embedder, tmp_path / "moved.onnx", source="test")
    assert (moved["normalization"]["scale"], moved["normalization"]["offset"]) == (1 / 127.5, -1.0)
    shifted = run_onnx(moved["path"], images[:16])
    np.testing.assert_allclose(shifted, embedder.embed(images[:16]), rtol=0, atol=TOL)
    assert np.abs(shifted - base).max() > 1e-3


def test_sidecar_describes_the_input_and_nothing_else_is_left(exported):
    root, _, info = exported
    out = root / "out"
    assert sorted(p.name for p in out.iterdir()) == ["enc.json", "enc.onnx"]  # no temporary files
    side = json.loads((out / "enc.json").read_text())
    assert side == info
    assert side["input"] == {"name": "images", "shape": ["N", 1, 16, 16], "dtype": "uint8", "layout": "NCHW", "mode": "L"}
    assert side["output"] == {"name": "mu", "shape": ["N", 16], "dtype": "float32"}
    assert (side["normalization"]["scale"], side["normalization"]["offset"]) == (1 / 255, -0.5)
    assert side["z_dim"] == 16 and side["opset"] == 18 and side["checkpoint"] == str((root / "run").resolve())


def test_static_batch_takes_one_image(exported, tmp_path):
    root, images, _ = exported
    info = export_onnx(root / "run", tmp_path / "one.onnx", dynamic_batch=False, opset=17)
    assert info["input"]["shape"] == [1, 1, 16, 16] and info["opset"] == 17
    embedder = Embedder.from_checkpoint(root / "run", device="cpu")
    np.testing.assert_allclose(run_onnx(info["path"], images[:1]), embedder.embed(images[:1]), rtol=0, atol=TOL)
    with pytest.raises(Exception, match="invalid dimensions"):
        run_onnx(info["path"], images[:2])


def test_cli_writes_and_checks_the_file(exported, tmp_path, capsys, monkeypatch):
    root, images, _ = exported
    monkeypatch.setenv("INFOMAX_HOME", str(root / "home"))
    out = tmp_path / "cli.onnx"
    assert main(["export", "--checkpoint", str(root / "run"), "--onnx", str(out), "--check", "5"]) == 0
    printed = capsys.readouterr().out
    assert "images uint8 N×1×16×16 -> mu float32 N×16" in printed
    assert f"on 5 images of {SPEC} (test): max abs difference" in printed
    side = json.loads(out.with_suffix(".json").read_text())
    mine = max_abs_difference(out, Embedder.from_checkpoint(root / "run", device="cpu"), images[:5])
    assert side["check"] == {"images": 5, "max_abs_diff": pytest.approx(mine, abs=1e-9)} and mine <= TOL
    assert f"max abs difference {mine:.3g}" in printed
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed: written, not checked
    assert main(["export", "--checkpoint", str(root / "run"), "--onnx", str(out), "--static-batch"]) == 0
    printed = capsys.readouterr().out
    assert "onnxruntime is not installed: the file is not checked (pip install 'infomax[export]')" in printed
    assert "images uint8 1×1×16×16" in printed and "max abs difference" not in printed
    assert "check" not in json.loads(out.with_suffix(".json").read_text())


def test_bad_input_gives_one_clear_error(exported, tmp_path, capsys, monkeypatch):
    root, _, _ = exported
    assert main(["export", "--checkpoint", str(tmp_path / "missing"), "--onnx", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "missing does not exist" in err and "infomax train" in err
    with pytest.raises(InfomaxError, match=r"should end in \.onnx"):
        export_onnx(root / "run", tmp_path / "x.json")
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if the extra were not installed
    with pytest.raises(InfomaxError, match=r"pip install 'infomax\[export\]'"):
        export_onnx(root / "run", tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
