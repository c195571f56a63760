import pytest
import torch
import torch.nn.functional as F

from infomax.errors import InfomaxError
from infomax.train.augment import (
    Augment,
    apply_jitter,
    color_jitter,
    crop_offsets,
    jitter_factors,
    parse_augment,
    random_crop,
    random_flip,
    random_grayscale,
    random_hue,
    random_rescale,
    random_resized_crop,
    random_rotate,
    resize,
    resized_crop_thetas,
    rotated,
    shift_hue,
    warp,
)


def _batch(n=6, c=3, h=8, w=8, seed=0, channels_last=False):
    x = torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed))
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _gen(seed=1):
    return torch.Generator().manual_seed(seed)


OPS = {
    "crop": lambda x, g: random_crop(x, 3, g),
    "resized": lambda x, g: random_resized_crop(x, 0.2, g),
    "flip": lambda x, g: random_flip(x, 0.5, g),
    "jitter": lambda x, g: color_jitter(x, 2.5, g),
    "grayscale": lambda x, g: random_grayscale(x, 0.5, g),
    "hue": lambda x, g: random_hue(x, 0.5, g),
    "augment": lambda x, g: Augment()(x, g),
    "augment_hue": lambda x, g: Augment(jitter=1.0, hue=0.1)(x, g),
    "augment_pad": lambda x, g: Augment(crop="pad")(x, g),
    "rotate": lambda x, g: Augment(rotate=20)(x, g),
    "rotate_pad": lambda x, g: Augment(crop="pad", rotate=20)(x, g),
}

IDENTITIES = {
    "crop": lambda x, g: random_crop(x, 0, g),
    "resized": lambda x, g: random_resized_crop(x, 1.0, g),
    "flip": lambda x, g: random_flip(x, 0.0, g),
    "jitter": lambda x, g: color_jitter(x, 0.0, g),
    "grayscale": lambda x, g: random_grayscale(x, 0.0, g),
    "rescale": lambda x, g: random_rescale(x, x.shape[-1], g),
    "augment": lambda x, g: Augment.none()(x, g),
    "rotate": lambda x, g: random_rotate(x, 0.0, g),
}


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize("name", OPS)
def test_keeps_shape_dtype_layout_and_range(name, c, channels_last):
    x = _batch(c=c, channels_last=channels_last)
    y = OPS[name](x, _gen())
    assert y.shape == x.shape and y.dtype == x.dtype
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    assert y.is_contiguous(memory_format=fmt)
    assert y.min() >= 0 and y.max() <= 1


@pytest.mark.parametrize("size", [8, 64])
@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize("name", IDENTITIES)
def test_identity_settings(name, c, size):
    x = _batch(c=c, h=size, w=size)
    y = IDENTITIES[name](x, _gen())
    assert torch.equal(y, x)
    assert Augment.none().is_identity and not Augment().is_identity


def test_random_crop_matches_slow_reference():
    x, pad = _batch(n=10, h=7, w=9), 3
    y = random_crop(x, pad, _gen(5))
    offsets = crop_offsets(10, pad, _gen(5))
    assert offsets.min() >= 0 and offsets.max() <= 2 * pad
    for i, (dy, dx) in enumerate(offsets.tolist()):
        padded = torch.zeros(3, 7 + 2 * pad, 9 + 2 * pad)
        padded[:, pad:pad + 7, pad:pad + 9] = x[i]
        assert torch.equal(y[i], padded[:, dy:dy + 7, dx:dx + 9])


def test_resized_crop_samples_inside_a_box():
    # A constant image stays constant; a horizontal ramp stays monotone along each row.
    x = torch.full((4, 3, 8, 8), 0.25)
    assert torch.allclose(random_resized_crop(x, 0.1, _gen()), x, atol=1e-6)
    ramp = torch.linspace(0, 1, 16).expand(4, 3, 16, 16).contiguous()
    y = random_resized_crop(ramp, 0.1, _gen())
    assert (y.diff(dim=-1) >= -1e-6).all() and not torch.allclose(y, ramp)


def test_flip_all():
    x = _batch()
    assert torch.equal(random_flip(x, 1.0, _gen()), x.flip(-1))


def test_grayscale_all_is_luma():
    x = _batch()
    y = random_grayscale(x, 1.0, _gen())
    x64 = x.double()
    luma = 0.299 * x64[:, 0] + 0.587 * x64[:, 1] + 0.114 * x64[:, 2]
    for ch in range(3):
        assert torch.equal(y[:, ch], y[:, 0])
        torch.testing.assert_close(y[:, ch].double(), luma, atol=1e-6, rtol=0)
    gray1 = _batch(c=1)
    assert random_grayscale(gray1, 1.0, _gen()) is gray1


def test_jitter_brightness_only_is_per_image_scale():
    x = _batch()
    b = torch.tensor([0.5, 0.8, 1.0, 1.2, 1.5, 2.0])
    factors = torch.stack([b, torch.ones(6), torch.ones(6)], 1)
    y = apply_jitter(x, factors)
    assert torch.equal(y, (x * b.view(6, 1, 1, 1)).clamp(0, 1))


def test_jitter_draws_its_factors_from_the_generator():
    x = _batch()
    factors = jitter_factors(6, 0.5, _gen(3), x)
    assert factors.shape == (6, 3) and (factors >= 0.8).all() and (factors <= 1.2).all()
    assert torch.equal(color_jitter(x, 0.5, _gen(3)), apply_jitter(x, factors))


@pytest.mark.parametrize("c", [1, 3])
def test_seeded(c):
    x = _batch(c=c)
    for aug in (Augment(), Augment(crop="pad")):
        a, b, other = aug(x, _gen(7)), aug(x, _gen(7)), aug(x, _gen(8))
        assert torch.equal(a, b)
        assert not torch.equal(a, other)


def test_one_channel_jitter_keeps_mean_gray():
    # Contrast blends with the image mean, so contrast alone keeps the mean (when nothing clamps).
    x = 0.25 + 0.5 * _batch(c=1)
    factors = torch.tensor([[1.0, 0.6, 1.0]]).expand(6, 3)
    y = apply_jitter(x, factors)
    torch.testing.assert_close(y.mean((1, 2, 3)), x.mean((1, 2, 3)))
    assert F.mse_loss(y, x) > 0


def test_default_fits_the_images_size():
    # images of 22 px and more get Augment()'s crops; RGB images SimCLR's CIFAR-10 colour distortion,
    # 1-channel ones its brightness and contrast 0.8 (strength 2: factors 1 ± 0.4·2)
    rgb = Augment(jitter=1.0, hue=0.1)
    assert parse_augment("default", (3, 32, 32)) == rgb == parse_augment("default", (3, 22, 22))
    assert parse_augment("default", (3, 64, 64)) == rgb
    assert parse_augment("default", (1, 28, 28)) == Augment(jitter=2.0)
    # under 22 px the smallest crop keeps 12 pixels a side: area (12 / 16)² = 0.5625 of a 16-px image
    assert parse_augment("default", (1, 16, 16)) == Augment(crop_scale=0.5625, jitter=2.0)
    assert parse_augment("default", (3, 21, 21)).crop_scale == pytest.approx(144 / 441)
    assert parse_augment("default", (3, 8, 8)) == Augment(crop_scale=1.0, jitter=1.0, hue=0.1)  # 8 px: no crop
    # views at half the images' side or less (model.train_size): crops down to a fifth of the image,
    # still never under 12 pixels a side of the image they are drawn on
    for shape, view, scale in (((3, 64, 64), 32, 0.2), ((3, 64, 64), 24, 0.2), ((3, 96, 96), 48, 0.2),
                               ((3, 64, 64), 33, 0.3), ((3, 64, 64), 40, 0.3), ((3, 64, 64), 64, 0.3),
                               ((3, 64, 64), 0, 0.3), ((1, 16, 16), 8, 0.5625), ((1, 16, 16), 10, 0.5625),
                               ((3, 24, 24), 12, 0.25)):
        assert parse_augment("default", shape, view) == Augment(crop_scale=scale, **(
            {"jitter": 1.0, "hue": 0.1} if shape[0] == 3 else {"jitter": 2.0})), (shape, view)
    assert parse_augment("crop_scale=0.5", (3, 64, 64), 32).crop_scale == 0.5  # what is named is kept
    # the boxes drawn for 16-px images cover at least 144 of their 256 pixels
    x = torch.zeros(4096, 1, 16, 16)
    theta = resized_crop_thetas(4096, parse_augment("default", (1, 16, 16)).crop_scale, _gen(), x)
    area = theta[:, 0, 0] * theta[:, 1, 1] * 256
    assert area.min() >= 144 - 1e-3 and area.max() <= 256 + 1e-3


def test_parse_augment():
    assert parse_augment("none") is None
    assert parse_augment("default") == Augment()
    a = parse_augment("crop=pad, pad=2,flip=0.5,jitter=0,grayscale=0")
    assert a == Augment(crop="pad", pad=2, jitter=0.0, grayscale=0.0)
    assert parse_augment(a.text()) == a


@pytest.mark.parametrize("text,key", [("crop=spiral", "crop"), ("flip=2", "flip"), ("pad=x", "pad"),
                                      ("jitter=-1", "jitter"), ("shear=0.1", "shear"), ("flip", "flip"),
                                      ("flip=0.1,flip=0.2", "flip")])
def test_parse_augment_rejects(text, key):
    with pytest.raises(InfomaxError, match=key):
        parse_augment(text)


def test_parse_augment_names_allowed_crops():
    with pytest.raises(InfomaxError, match="resized, pad, none"):
        parse_augment("crop=spiral")


def test_rescale_draws_every_side_in_range_and_keeps_dtype_layout_and_range():
    x = _batch(n=4, h=32, w=32, channels_last=True)
    g, sides = _gen(), set()
    for _ in range(200):
        y = random_rescale(x, 25, g)
        assert y.shape[:2] == x.shape[:2] and y.shape[2] == y.shape[3] and y.dtype == x.dtype
        assert y.is_contiguous(memory_format=torch.channels_last) and y.min() >= 0 and y.max() <= 1
        sides.add(y.shape[-1])
    assert sides == set(range(25, 33))


def test_rescale_keeps_a_constant_image_and_halves_a_checkerboard_to_gray():
    flat = torch.full((2, 3, 32, 32), 0.3)
    for _ in range(10):
        torch.testing.assert_close(random_rescale(flat, 16, _gen(_)), torch.full_like(random_rescale(flat, 16, _gen(_)), 0.3))
    board = ((torch.arange(32)[:, None] + torch.arange(32)[None, :]) % 2).float().expand(1, 1, 32, 32)
    g = _gen(0)
    while (y := random_rescale(board, 16, g)).shape[-1] != 16:  # draw until the side is 16
        pass
    # antialiased: every output pixel averages equally many black and white pixels (away from the border)
    torch.testing.assert_close(y[..., 2:-2, 2:-2], torch.full_like(y[..., 2:-2, 2:-2], 0.5), atol=1e-6, rtol=0)


def test_augment_rescale_option_is_off_by_default_and_parsed():
    assert Augment().rescale == 0 and parse_augment("rescale=25").rescale == 25
    assert not Augment(crop="none", flip=0, jitter=0, grayscale=0, rescale=25).is_identity
    with pytest.raises(InfomaxError, match="rescale"):
        parse_augment("rescale=-1")


def test_views_share_one_drawn_side_and_differ_otherwise():
    x, g, sides = _batch(n=4, h=32, w=32), _gen(), set()
    for _ in range(40):
        a, b = Augment(rescale=25).views(x, 2, g)
        assert a.shape == b.shape and not torch.equal(a, b)
        sides.add(a.shape[-1])
    assert len(sides) > 4
    one, two = Augment(rescale=0).views(x, 2, _gen(5)), [Augment()(x, g) for g in [_gen(5)] * 2]
    assert all(torch.equal(u, v) for u, v in zip(one, two))  # without rescale: the per-view recipe in turn


def test_a_quarter_turn_moves_every_pixel_as_rot90_does():
    x = _batch(n=2, c=1, h=6, w=6)
    quarter = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0]]).expand(2, 2, 3)
    turned = warp(x, quarter)
    assert torch.allclose(turned, torch.rot90(x, 1, (2, 3)), atol=1e-6) or \
        torch.allclose(turned, torch.rot90(x, -1, (2, 3)), atol=1e-6)


def test_rotated_turns_each_box_about_its_centre_by_at_most_the_angle():
    x = _batch(n=4096)
    box = resized_crop_thetas(4096, 0.3, _gen(), x)
    turned = rotated(box, 15.0, _gen(2)).double()
    box = box.double()
    # the centre column is kept, and so is the area (the determinant) of each box
    assert torch.equal(turned[:, :, 2], box[:, :, 2])
    assert torch.allclose(torch.linalg.det(turned[:, :, :2]), torch.linalg.det(box[:, :, :2]), atol=1e-6)
    # the turn: turned = R·box, R a rotation; its angle is uniform on [-15°, 15°]
    r = turned[:, :, :2] @ torch.linalg.inv(box[:, :, :2])
    assert torch.allclose(r @ r.transpose(1, 2), torch.eye(2, dtype=torch.float64).expand(4096, 2, 2), atol=1e-5)
    degrees = torch.rad2deg(torch.atan2(r[:, 1, 0], r[:, 0, 0]))
    assert degrees.abs().max() <= 15 + 1e-4 and degrees.abs().max() > 14.9
    assert abs(degrees.mean()) < 0.5 and abs(degrees.std() - 15 / 3 ** 0.5) < 0.3


def test_rotate_is_off_by_default_parsed_and_keeps_the_stream_of_other_recipes():
    assert Augment().rotate == 0 and parse_augment("rotate=12.5").rotate == 12.5
    assert not Augment(crop="none", flip=0, jitter=0, grayscale=0, rotate=5).is_identity
    with pytest.raises(InfomaxError, match="rotate"):
        parse_augment("rotate=200")
    x = _batch(n=64, c=1, h=16, w=16)
    # off, a crop draws its box and nothing more: the generator ends where the box alone leaves it
    alone, cropped = _gen(), _gen()
    resized_crop_thetas(64, 0.3, alone, x)
    random_resized_crop(x, 0.3, cropped)
    assert torch.equal(alone.get_state(), cropped.get_state())
    # on, the same boxes are drawn first and then turned
    g = _gen()
    box = resized_crop_thetas(64, 0.3, g, x)
    assert torch.equal(random_resized_crop(x, 0.3, _gen(), 30.0), warp(x, rotated(box, 30.0, g)))
    assert not torch.allclose(Augment()(x, _gen()), Augment(rotate=30)(x, _gen()))
    # the crop off, the whole image turns about its centre: a centred disc changes only at its
    # edge (bilinear resampling), a centred bar of the same size several times as much
    yy, xx = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    disc = (((yy - 7.5) ** 2 + (xx - 7.5) ** 2) < 25).float().expand(64, 1, 16, 16).contiguous()
    bar = (((yy - 7.5).abs() < 2) & ((xx - 7.5).abs() < 6)).float().expand(64, 1, 16, 16).contiguous()
    spin = Augment(crop="none", flip=0, jitter=0, rotate=90)
    disc_change, bar_change = ((spin(im, _gen()) - im).abs().mean() for im in (disc, bar))
    assert disc_change < 0.05 and bar_change > 3 * disc_change


def test_shift_hue_matches_colorsys_in_float64():
    import colorsys

    x = _batch(n=5, h=4, w=3).double()
    shift = torch.tensor([0.0, 0.1, -0.3, 0.5, 1.25], dtype=torch.float64)
    y = shift_hue(x, shift)
    for i in range(5):
        for row in range(4):
            for col in range(3):
                h, s, v = colorsys.rgb_to_hsv(*x[i, :, row, col].tolist())
                want = colorsys.hsv_to_rgb((h + shift[i].item()) % 1.0, s, v)
                assert y[i, :, row, col].tolist() == pytest.approx(want, abs=1e-12)


def test_shift_hue_by_a_third_turn_cycles_pure_colours_and_keeps_grays():
    red, green, blue, gray = [0.9, 0, 0], [0, 0.9, 0], [0, 0, 0.9], [0.4, 0.4, 0.4]
    x = torch.tensor([red, green, blue, gray]).view(1, 4, 3).permute(2, 0, 1).unsqueeze(0)  # 1×3×1×4
    y = shift_hue(x, torch.tensor([1 / 3]))
    want = torch.tensor([green, blue, red, gray]).view(1, 4, 3).permute(2, 0, 1).unsqueeze(0)
    assert torch.allclose(y, want, atol=1e-6)


def test_random_hue_draws_one_shift_per_image_within_the_bound():
    x = _batch(n=64, h=4, w=4)
    g, mirror = _gen(), _gen()
    y = random_hue(x, 0.1, g)
    shift = 0.1 * (2 * torch.rand(64, generator=mirror) - 1)
    assert torch.equal(g.get_state(), mirror.get_state())
    assert torch.allclose(y, shift_hue(x, shift), atol=1e-6)
    assert shift.abs().max() <= 0.1 and shift.abs().max() > 0.09
    one = _batch(n=4, c=1)
    assert random_hue(one, 0.3, _gen()) is one  # 1-channel images have no hue


def test_hue_is_off_by_default_parsed_and_keeps_the_stream_of_other_recipes():
    assert Augment().hue == 0 and parse_augment("jitter=1.0,hue=0.1").hue == 0.1
    assert not Augment(crop="none", flip=0, jitter=0, grayscale=0, hue=0.2).is_identity
    with pytest.raises(InfomaxError, match="hue"):
        parse_augment("hue=0.6")
    x = _batch(n=32, h=8, w=8)
    # off, the recipe draws what it drew before the stage existed: jitter, then grayscale
    g = _gen()
    y = Augment(crop="none", flip=0)(x, _gen())
    assert torch.equal(y, random_grayscale(color_jitter(x, 0.4, g), 0.2, g))
    # on, the hue turns after the jitter and before the grayscale
    g = _gen()
    want = random_grayscale(random_hue(color_jitter(x, 0.4, g), 0.25, g), 0.2, g)
    assert torch.equal(Augment(crop="none", flip=0, hue=0.25)(x, _gen()), want)


def _shrink_reference(x, size):
    """float64 antialiased bilinear resize of N×C×H×H to size×size: each output pixel a triangle
    of half-width H/size input pixels about its centre, the taps outside the image dropped and the
    rest renormalized."""
    h = x.shape[-1]
    scale = h / size
    weights = torch.zeros(size, h, dtype=torch.float64)
    for i in range(size):
        centre = (i + 0.5) * scale - 0.5
        for j in range(h):
            weights[i, j] = max(0.0, 1 - abs(j - centre) / scale)
    weights /= weights.sum(1, keepdim=True)
    return torch.einsum("ij,ncjk,lk->ncil", weights, x.double(), weights)


def test_identity_warp_onto_half_the_side_averages_each_two_by_two_block():
    x = _batch(h=8, w=8)
    theta = torch.eye(2, 3).expand(6, 2, 3)
    blocks = x.double().reshape(6, 3, 4, 2, 4, 2).mean((3, 5))
    torch.testing.assert_close(warp(x, theta, 4).double(), blocks, atol=1e-6, rtol=0)
    assert torch.equal(warp(x, theta), x)  # at its own side an identity map keeps the image exactly


@pytest.mark.parametrize("crop", ["crop=none", "crop=pad,pad=0", "crop=resized,crop_scale=1"])
def test_views_without_a_crop_are_the_images_shrunk_to_the_training_side(crop):
    x = _batch(h=12, w=12)
    views = parse_augment(crop + ",flip=0,jitter=0,grayscale=0").views(x, 2, _gen(), size=5)
    for view in views:
        torch.testing.assert_close(view.double(), _shrink_reference(x, 5), atol=1e-5, rtol=0)
    assert torch.equal(resize(x, 12), x) and torch.equal(resize(x, 0), x)


def test_resized_crops_at_a_training_side_are_the_same_boxes_sampled_once_onto_it():
    # a training side changes the output grid only: the same generator draws the same boxes, and
    # each view is its box sampled straight onto size×size (one resampling, not a crop then a resize)
    x = _batch(n=5, h=16, w=16)
    augment = Augment(crop_scale=0.3, flip=0, jitter=0, grayscale=0, rotate=15)
    view = augment(x, _gen(7), size=8)
    g = _gen(7)
    theta = rotated(resized_crop_thetas(5, 0.3, g, x), 15, g)
    assert view.shape == (5, 3, 8, 8)
    torch.testing.assert_close(view, warp(x, theta, 8), atol=0, rtol=0)
    full = augment(x, _gen(7))  # the same boxes at the images' side
    torch.testing.assert_close(full, warp(x, theta), atol=0, rtol=0)
