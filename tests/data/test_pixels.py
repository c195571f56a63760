"""normalize_pixels against the float64 formulas x/255 − 0.5 and x/127.5 − 1."""

import numpy as np
import pytest
import torch

from infomax.data.pixels import normalize_pixels
from infomax.errors import InfomaxError

# three float32 roundings (of the scale, the product ≤ 2 and the sum) of 2^-23 each at most
TOL = 3 * 2.0**-23
FORMULAS = {"center": lambda x: x / 255.0 - 0.5, "symmetric": lambda x: x / 127.5 - 1.0}


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_uint8_pixels_match_the_float64_formula(name):
    x = torch.arange(256, dtype=torch.uint8).reshape(4, 1, 8, 8)  # every pixel value once
    before = x.clone()
    y = normalize_pixels(x, name)
    assert y.dtype == torch.float32 and y.shape == x.shape
    expected = FORMULAS[name](x.numpy().astype(np.float64))
    np.testing.assert_allclose(y.numpy(), expected, rtol=0, atol=TOL)
    assert y.flatten()[0].item() == FORMULAS[name](0.0)  # exact at 0
    assert torch.equal(x, before)  # the input is untouched


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_unit_floats_match_the_float64_formula(name):
    x = torch.linspace(0, 1, 101, dtype=torch.float32)  # pixels / 255, e.g. an augmented view
    before = x.clone()
    y = normalize_pixels(x, name, unit=True)
    expected = FORMULAS[name](x.numpy().astype(np.float64) * 255.0)
    np.testing.assert_allclose(y.numpy(), expected, rtol=0, atol=TOL)
    assert torch.equal(x, before) and y.data_ptr() != x.data_ptr()


def test_bad_input_names_the_fix():
    with pytest.raises(InfomaxError, match="unknown pixel normalization 'imagenet'; use one of center, symmetric"):
        normalize_pixels(torch.zeros(2, dtype=torch.uint8), "imagenet")
    with pytest.raises(InfomaxError, match="pass unit=True"):
        normalize_pixels(torch.zeros(2), "center")
    with pytest.raises(InfomaxError, match="floats in \\[0, 1\\]"):
        normalize_pixels(torch.zeros(2, dtype=torch.uint8), "center", unit=True)


def test_pixel_baseline_is_the_same_normalization():
    from infomax.eval.baselines import pixel_features

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 3, 4, 4), dtype=np.uint8)
    for name, formula in FORMULAS.items():
        out = pixel_features(images, name, chunk=2)
        assert out.dtype == np.float32 and out.shape == (5, 48)
        np.testing.assert_allclose(out, formula(images.reshape(5, -1).astype(np.float64)), rtol=0, atol=TOL)
