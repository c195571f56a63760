"""Small crops (train/multicrop.py): their geometry against the affine map written out in float64,
their order, their seeding, and how a training run uses them."""

import pytest
import torch

from infomax.config import Config
from infomax.errors import InfomaxError
from infomax.train.augment import Augment
from infomax.train.batches import pixel_views
from infomax.train.multicrop import SMALL_AREA, MultiCrop, small_crops, small_side

PLAIN = Augment(crop="none", flip=0.0, jitter=0.0, grayscale=0.0)


def test_a_crop_of_a_ramp_is_the_ramp_over_a_box_of_the_allowed_area():
    # I(r, c) = c / (W − 1) and, transposed, r / (H − 1): bilinear sampling of a linear image is
    # exact, so each crop's columns (rows) are the box's sample points mapped into the image.
    n, h, side, m = 5, 32, 16, 3
    ramp = (torch.arange(h, dtype=torch.float64) / (h - 1)).expand(n, h, h)
    x = torch.stack([ramp, ramp.transpose(1, 2), torch.full_like(ramp, 0.5)], 1)  # N×3×H×W
    crops = small_crops(x, m, side, PLAIN, torch.Generator().manual_seed(0))
    assert crops.shape == (m * n, 3, side, side) and crops.dtype == torch.float64
    u = (2 * torch.arange(side, dtype=torch.float64) + 1) / side - 1  # output pixel centres in [-1, 1]
    for k in range(m * n):
        cols, rows = crops[k, 0, 0], crops[k, 1, :, 0]  # the x ramp along a row, the y ramp down a column
        assert torch.allclose(crops[k, 0], cols.expand(side, side), atol=1e-12)  # constant down each column
        # pixel = ((b·u + c + 1)·W − 1) / 2 with box half-width b and centre c: solve from the ends
        width = (cols[-1] - cols[0]) * (h - 1) / ((u[-1] - u[0]) * h / 2)
        height = (rows[-1] - rows[0]) * (h - 1) / ((u[-1] - u[0]) * h / 2)
        centre = (cols[0] * (h - 1) * 2 + 1) / h - 1 - width * u[0]
        want = ((width * u + centre + 1) * h - 1) / 2 / (h - 1)
        torch.testing.assert_close(cols, want, rtol=0, atol=1e-6)
        area = float(width * height)  # b is the box's side as a fraction of the image's
        assert SMALL_AREA[0] - 1e-4 <= area <= SMALL_AREA[1] + 1e-4
        assert 3 / 4 - 1e-4 <= float(width / height) <= 4 / 3 + 1e-4
        torch.testing.assert_close(crops[k, 2], torch.full_like(crops[k, 2], 0.5))  # a constant stays


def test_crops_are_crop_major_and_seeded():
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    a = small_crops(x, 2, 16, PLAIN, torch.Generator().manual_seed(2))
    b = small_crops(x, 2, 16, PLAIN, torch.Generator().manual_seed(2))
    assert torch.equal(a, b)
    # crop-major: rows m·N + i are crops of image i; a constant image per row shows whose crop it is
    flat = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 3, 32, 32) / 3
    c = small_crops(flat, 2, 16, PLAIN, torch.Generator().manual_seed(2))
    torch.testing.assert_close(c.mean((1, 2, 3)), torch.tensor([0, 1, 2, 3] * 2, dtype=torch.float32) / 3)


def test_crops_take_the_recipes_flip_and_grayscale():
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    plain = small_crops(x, 2, 16, PLAIN, torch.Generator().manual_seed(4))
    flipped = small_crops(x, 2, 16, Augment(crop="none", flip=1.0, jitter=0.0, grayscale=0.0),
                          torch.Generator().manual_seed(4))
    assert torch.equal(flipped, plain.flip(-1))
    gray = small_crops(x, 2, 16, Augment(crop="none", flip=0.0, jitter=0.0, grayscale=1.0),
                       torch.Generator().manual_seed(4))
    luma = 0.299 * plain[:, 0] + 0.587 * plain[:, 1] + 0.114 * plain[:, 2]
    torch.testing.assert_close(gray, luma[:, None].expand_as(plain))


def test_pixel_views_append_the_crops_after_the_views_and_leave_the_views_alone():
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(5))
    aug = Augment()
    views = pixel_views(x, 2, torch.Generator().manual_seed(6), aug, "center", torch.contiguous_format)
    more = pixel_views(x, 2, torch.Generator().manual_seed(6), aug, "center", torch.contiguous_format,
                       MultiCrop(3, 16))
    assert len(more) == 3 and all(torch.equal(a, b) for a, b in zip(views, more))
    assert more[2].shape == (12, 3, 16, 16)


def test_the_small_side_is_half_the_image_unless_given_and_must_be_smaller():
    assert small_side(32) == 16 and small_side(64) == 32 and small_side(16) == 8 and small_side(32, 24) == 24
    with pytest.raises(InfomaxError, match="choose a small crop size from 8 to 31"):
        small_side(32, 32)
    assert small_side(12) == 8  # half would be 6: never under 8 pixels
    with pytest.raises(InfomaxError, match="small crop size"):
        small_side(8)  # 8-px images have no smaller crop of at least 8
    assert MultiCrop.of(0, 0, 32) is None and MultiCrop.of(4, 0, 32) == MultiCrop(4, 16)


def test_small_crops_need_an_augmentation_recipe():
    with pytest.raises(InfomaxError, match="small_crops needs data.augment"):
        Config.build("seed", small_crops=2)
    assert Config.build("recommended", small_crops=2).data.small_crops == 2
