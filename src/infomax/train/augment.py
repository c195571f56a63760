"""Batch data augmentation in torch: float N×C×H×W images in [0, 1] in, same shape, dtype and layout out.

Every random number comes from an explicit torch.Generator (drawn on its own device, then moved to
the batch's), so a run is reproducible on any device.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F

from infomax.errors import InfomaxError

LUMA = (0.299, 0.587, 0.114)  # R, G, B weights of the grayscale image
CROPS = ("resized", "pad", "none")
MIN_CROP_SIDE = 12  # `default` on small images: its smallest resized crop keeps this many pixels a side
# `default` on views at half the images' side or less (model.train_size): the smallest crop area.
# A fifth of a 64-pixel image is 29 pixels a side, about the 32-pixel view it is drawn onto; on
# Tiny ImageNet (mini) it beat 0.3 on every protocol (docs/better.md#smaller-training-views).
HALF_VIEW_CROP_SCALE = 0.2
RGB_COLOUR = {"jitter": 1.0, "hue": 0.1}  # `default` on RGB images: MoCo v2's and SimCLR's CIFAR-10 colour
GRAY_COLOUR = {"jitter": 2.0}  # `default` on 1-channel images: SimCLR's brightness and contrast 0.8


def _layout(x: torch.Tensor) -> torch.memory_format:
    """channels_last when x is stored that way (and not also plain contiguous), else contiguous."""
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _rand(shape: tuple[int, ...], generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """U[0, 1) draws from generator, on like's device and in like's dtype."""
    u = torch.rand(shape, generator=generator, device=generator.device)
    return u.to(device=like.device, dtype=like.dtype)


def _luma(x: torch.Tensor) -> torch.Tensor:
    """Grayscale of an RGB batch: N×3×H×W -> N×1×H×W."""
    w = torch.tensor(LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def crop_offsets(n: int, pad: int, generator: torch.Generator) -> torch.Tensor:
    """The (row, column) offsets of random_crop: int64 N×2 in [0, 2·pad], on the generator's device."""
    return torch.randint(0, 2 * pad + 1, (n, 2), generator=generator, device=generator.device)


def random_crop(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad each image by pad pixels per side and crop H×W back at a random offset per image."""
    n, c, h, w = x.shape
    off = crop_offsets(n, pad, generator).to(x.device)  # N×2
    padded = F.pad(x, (pad, pad, pad, pad))  # N×C×(H+2p)×(W+2p), zeros outside
    rows = off[:, 0:1] + torch.arange(h, device=x.device)  # N×H
    cols = off[:, 1:2] + torch.arange(w, device=x.device)  # N×W
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    chan = torch.arange(c, device=x.device).view(1, c, 1, 1)
    y = padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]  # N×C×H×W
    return y.contiguous(memory_format=_layout(x))


def resized_crop_thetas(n: int, scale_min: float, generator: torch.Generator, like: torch.Tensor,
                        scale_max: float = 1.0) -> torch.Tensor:
    """Affine maps (N×2×3, for F.affine_grid) of random boxes inside the image.

    A box covers a fraction s ~ U[scale_min, scale_max] of the area; its aspect ratio relative to the image's
    is log-uniform in [3/4, 4/3], narrowed so the box fits (at s = 1 it is the whole image, exactly).
    """
    u = _rand((n, 4), generator, like)  # area, ratio, centre x, centre y
    s = scale_min + (scale_max - scale_min) * u[:, 0]
    log_s = torch.log(s)
    lo = torch.clamp(log_s, min=math.log(3 / 4))  # the box height stays <= 1
    hi = torch.clamp(-log_s, max=math.log(4 / 3))  # the box width stays <= 1
    ratio = torch.exp(lo + (hi - lo) * u[:, 1])
    bw, bh = torch.sqrt(s * ratio), torch.sqrt(s / ratio)  # box size as fractions of width, height
    cx, cy = (1 - bw) * (2 * u[:, 2] - 1), (1 - bh) * (2 * u[:, 3] - 1)  # centres in [-1, 1] coordinates
    zero = torch.zeros_like(s)
    return torch.stack([bw, zero, cx, zero, bh, cy], 1).view(n, 2, 3)


def rotated(theta: torch.Tensor, degrees: float, generator: torch.Generator) -> torch.Tensor:
    """The boxes of theta (N×2×3), each turned about its centre by an angle ~ U[−degrees, degrees]."""
    angle = math.radians(degrees) * (2 * _rand((theta.shape[0],), generator, theta) - 1)  # N
    cos, sin = torch.cos(angle), torch.sin(angle)
    turn = torch.stack([cos, -sin, sin, cos], 1).view(-1, 2, 2)  # N×2×2
    return torch.cat([turn @ theta[:, :, :2], theta[:, :, 2:]], 2)


def identity_thetas(n: int, like: torch.Tensor) -> torch.Tensor:
    """N×2×3 affine maps that leave an image as it is, in like's dtype and on its device."""
    return torch.eye(2, 3, device=like.device, dtype=like.dtype).expand(n, 2, 3)


def warp(x: torch.Tensor, theta: torch.Tensor, size: int = 0) -> torch.Tensor:
    """Resample each image through its affine map (N×2×3, F.affine_grid's convention), bilinearly,
    repeating the border outside the image, onto size×size pixels (0: H×W, where an identity map
    returns its image exactly)."""
    n, c, h, w = x.shape
    side = size or h
    grid = F.affine_grid(theta, [n, c, side, side if size else w], align_corners=False)  # N×S×S×2
    y = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False).clamp(0, 1)
    if side != h:
        return y.contiguous(memory_format=_layout(x))
    whole = (theta == identity_thetas(1, theta)).flatten(1).all(1)  # N; kept exact (float32 grids drift by ~1e-6)
    return torch.where(whole.view(-1, 1, 1, 1), x, y).contiguous(memory_format=_layout(x))


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """The batch resized to size×size (bilinear, antialiased when shrinking); x itself when size is
    0 or x is size×size already."""
    if size == 0 or x.shape[-2:] == (size, size):
        return x
    y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    return y.contiguous(memory_format=_layout(x))


def random_rotate(x: torch.Tensor, degrees: float, generator: torch.Generator) -> torch.Tensor:
    """Turn each whole image about its centre by an angle ~ U[−degrees, degrees] (see rotated)."""
    return warp(x, rotated(identity_thetas(x.shape[0], x), degrees, generator))


def random_resized_crop(x: torch.Tensor, scale_min: float, generator: torch.Generator,
                        degrees: float = 0.0, size: int = 0) -> torch.Tensor:
    """Crop a random box per image (see resized_crop_thetas), turned by up to ±degrees when
    degrees > 0 (see rotated), and resize it to size×size (0: H×W), bilinearly."""
    theta = resized_crop_thetas(x.shape[0], scale_min, generator, x)
    return warp(x, rotated(theta, degrees, generator) if degrees > 0 else theta, size)


def random_flip(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Flip each image left-right with probability p."""
    flip = _rand((x.shape[0], 1, 1, 1), generator, x) < p  # N×1×1×1
    return torch.where(flip, x.flip(-1), x).contiguous(memory_format=_layout(x))


def jitter_factors(n: int, strength: float, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """Brightness, contrast and saturation factors of color_jitter: N×3, each U[1 − 0.4s, 1 + 0.4s]."""
    u = _rand((n, 3), generator, like)
    return 1 + 0.4 * strength * (2 * u - 1)


def apply_jitter(x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Scale brightness, then contrast (towards the mean gray), then saturation (towards the grayscale).

    factors is N×3 (see jitter_factors); saturation applies to 3-channel images only.
    """
    b, c, s = (factors[:, i].view(-1, 1, 1, 1) for i in range(3))  # each N×1×1×1
    rgb = x.shape[1] == 3
    x = (x * b).clamp(0, 1)
    mean = (_luma(x) if rgb else x).mean((1, 2, 3), keepdim=True)  # N×1×1×1
    x = (c * x + (1 - c) * mean).clamp(0, 1)
    if rgb:
        x = (s * x + (1 - s) * _luma(x)).clamp(0, 1)
    return x


def color_jitter(x: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """Random brightness, contrast and saturation per image (no hue), clamped to [0, 1]."""
    y = apply_jitter(x, jitter_factors(x.shape[0], strength, generator, x))
    return y.contiguous(memory_format=_layout(x))


def shift_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Turn each RGB image's hue by shift[i] turns (N), keeping its value and saturation: the HSV
    model's hue (Smith 1978; Python's colorsys, torchvision's adjust_hue), written as

        v = max(r, g, b),  c = v − min(r, g, b),  h ∈ [0, 1) from which channel is the largest,
        h' = (h + shift) mod 1,   channel_n = v − c·clamp(min(k, 4 − k), 0, 1),  k = (n + 6h') mod 6

    with n = 5, 3, 1 for red, green, blue. Grays (c = 0) have no hue and are unchanged."""
    r, g, b = x.unbind(1)  # N×H×W each
    v, low = x.amax(1), x.amin(1)
    c = v - low
    safe = torch.where(c > 0, c, torch.ones_like(c))
    h = torch.where(v == r, (g - b) / safe, torch.where(v == g, 2 + (b - r) / safe, 4 + (r - g) / safe))
    h = torch.remainder(h / 6 + shift.view(-1, 1, 1), 1.0)  # N×H×W, in turns
    n = torch.tensor([5.0, 3.0, 1.0], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    k = torch.remainder(n + 6 * h.unsqueeze(1), 6.0)  # N×3×H×W
    y = v.unsqueeze(1) - c.unsqueeze(1) * torch.minimum(k, 4 - k).clamp(0, 1)
    return y.clamp(0, 1)


def random_hue(x: torch.Tensor, largest: float, generator: torch.Generator) -> torch.Tensor:
    """Turn each RGB image's hue by ~ U[−largest, largest] turns (see shift_hue); other images unchanged."""
    if x.shape[1] != 3:
        return x
    shift = largest * (2 * _rand((x.shape[0],), generator, x) - 1)  # N
    return shift_hue(x, shift).contiguous(memory_format=_layout(x))


def random_grayscale(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Replace each RGB image by its luma on all three channels with probability p; others unchanged."""
    if x.shape[1] != 3:
        return x
    gray = _rand((x.shape[0], 1, 1, 1), generator, x) < p  # N×1×1×1
    return torch.where(gray, _luma(x).expand_as(x), x).contiguous(memory_format=_layout(x))


def random_rescale(x: torch.Tensor, smallest: int, generator: torch.Generator) -> torch.Tensor:
    """Multi-scale input: resize the whole batch to a random side s, uniform in [smallest, H]
    (bilinear, antialiased when shrinking), so the encoder sees objects at several scales.
    Square images only; s = H returns x itself."""
    h = x.shape[-1]
    side = int(torch.randint(min(smallest, h), h + 1, (1,), generator=generator, device=generator.device))
    if side == h:
        return x
    y = F.interpolate(x, size=(side, side), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    return y.contiguous(memory_format=_layout(x))


def _probability(v: float) -> bool:
    return 0 <= v <= 1


# Per option: its type, whether a value is allowed, and the allowed values in words.
_RULES = {
    "crop": (str, lambda v: v in CROPS, "one of " + ", ".join(CROPS)),
    "crop_scale": (float, lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "pad": (int, lambda v: v >= 0, "an integer >= 0"),
    "flip": (float, _probability, "a probability in [0, 1]"),
    "jitter": (float, lambda v: 0 <= v <= 2.5, "a strength in [0, 2.5]"),
    "hue": (float, lambda v: 0 <= v <= 0.5, "a largest turn of the hue in [0, 0.5]"),
    "grayscale": (float, _probability, "a probability in [0, 1]"),
    "rescale": (int, lambda v: v >= 0, "a side in pixels >= 0 (0: off)"),
    "rotate": (float, lambda v: 0 <= v <= 180, "degrees in [0, 180]"),
}


@dataclass(frozen=True)
class Augment:
    """An augmentation recipe for float batches in [0, 1]: crop (turned by up to ±rotate degrees),
    then flip, then jitter, then hue, then grayscale, then (multi-scale input) a resize of the whole batch."""

    crop: str = "resized"  # "resized" (random_resized_crop), "pad" (random_crop) or "none"
    crop_scale: float = 0.3  # smallest area fraction of a resized crop
    pad: int = 4  # padding of a "pad" crop, in pixels
    flip: float = 0.5  # probability of a left-right flip
    jitter: float = 0.4  # color jitter strength
    hue: float = 0.0  # largest turn of the hue either way, in turns (0: off; SimCLR's CIFAR-10 recipe: 0.1)
    grayscale: float = 0.2  # probability of turning an RGB image gray
    rescale: int = 0  # smallest side of random_rescale, in pixels (0: off)
    rotate: float = 0.0  # largest turn of the crop either way, in degrees (0: off)

    def __post_init__(self):
        for f in fields(self):
            _, ok, allowed = _RULES[f.name]
            if not ok(getattr(self, f.name)):
                raise InfomaxError(f"augment: bad {f.name}={getattr(self, f.name)!r} (expected {allowed})")

    @classmethod
    def none(cls) -> Augment:
        """The recipe that changes nothing."""
        return cls(crop="none", flip=0.0, jitter=0.0, hue=0.0, grayscale=0.0)

    @classmethod
    def default_for(cls, channels: int, size: int, view: int = 0) -> Augment:
        """`default` fitted to images of size² pixels trained on views of view² (0: size²): on RGB
        images MoCo v2's colour distortion (RGB_COLOUR: jitter factors in [0.6, 1.4] and the hue
        turned by up to 0.1), on 1-channel images brightness and contrast jitter at SimCLR's 0.8
        (GRAY_COLOUR: factors in [0.2, 1.8]; apply_jitter, grayscale does nothing); crops down to
        Augment()'s area, or HALF_VIEW_CROP_SCALE for views at half the side or less, and never
        under MIN_CROP_SIDE pixels a side (0.5625 of a 16-px image, the whole of a 12-px one)."""
        colour = RGB_COLOUR if channels == 3 else GRAY_COLOUR
        smallest = HALF_VIEW_CROP_SCALE if 0 < 2 * view <= size else cls.crop_scale
        return cls(crop_scale=min(1.0, max(smallest, (MIN_CROP_SIDE / size) ** 2)), **colour)

    @property
    def is_identity(self) -> bool:
        """True when the recipe changes nothing."""
        no_crop = (self.crop == "none" or (self.crop == "pad" and self.pad == 0)
                   or (self.crop == "resized" and self.crop_scale == 1))
        return (no_crop and self.flip == 0 and self.jitter == 0 and self.hue == 0 and self.grayscale == 0
                and self.rescale == 0 and self.rotate == 0)

    def text(self) -> str:
        """The recipe as parse_augment reads it."""
        return ",".join(f"{k}={v}" for k, v in asdict(self).items())

    def __call__(self, x: torch.Tensor, generator: torch.Generator, size: int = 0) -> torch.Tensor:
        """Augment a float N×C×H×W batch in [0, 1] into N×C×size×size (0: H×W); stages that would
        change nothing are skipped."""
        return self.views(x, 1, generator, size)[0]

    def views(self, x: torch.Tensor, count: int, generator: torch.Generator, size: int = 0) -> list[torch.Tensor]:
        """`count` independently augmented views of the batch x, each size×size (0: H×W). The
        multi-scale resize draws one side per call, shared by the views, so they stack into one
        encoder pass."""
        views = [self._per_image(x, generator, size) for _ in range(count)]
        if self.rescale > 0:
            views = list(random_rescale(torch.cat(views), self.rescale, generator).chunk(count))
        return views

    def _per_image(self, x: torch.Tensor, generator: torch.Generator, size: int) -> torch.Tensor:
        """The crop, resampled once onto size×size when it is a resized crop (else resized after it)."""
        if self.crop == "resized" and (self.crop_scale < 1 or self.rotate > 0):
            x = random_resized_crop(x, self.crop_scale, generator, self.rotate, size)
        else:
            if self.crop == "pad" and self.pad > 0:
                x = random_crop(x, self.pad, generator)
            if self.rotate > 0:
                x = random_rotate(x, self.rotate, generator)
            x = resize(x, size)
        return self.appearance(x, generator)

    def appearance(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The stages after the crop: flip, jitter, hue and grayscale, each skipped when it would change nothing."""
        if self.flip > 0:
            x = random_flip(x, self.flip, generator)
        if self.jitter > 0:
            x = color_jitter(x, self.jitter, generator)
        if self.hue > 0:
            x = random_hue(x, self.hue, generator)
        if self.grayscale > 0:
            x = random_grayscale(x, self.grayscale, generator)
        return x


def parse_augment(text: str, image_shape: tuple[int, ...] | None = None, view: int = 0) -> Augment | None:
    """Read the config key `augment`: "none", "default", or options such as "crop=pad,pad=4,flip=0.5".

    Options not given keep their Augment defaults. Returns None for "none". With the images'
    shape (C, H, W) and the training views' side (0: H), "default" is Augment.default_for(C, H,
    view), fitted to them; without the shape, Augment().
    """
    text = text.strip()
    if text == "none":
        return None
    if text == "default":
        return Augment.default_for(image_shape[0], image_shape[-1], view) if image_shape else Augment()
    options: dict = {}
    for item in text.split(","):
        key, eq, value = (part.strip() for part in item.partition("="))
        if key not in _RULES:
            raise InfomaxError(f"augment: unknown option '{key}' in '{text}' (allowed: 'none', 'default', "
                               f"or comma-separated key=value with keys {', '.join(_RULES)})")
        kind, _, allowed = _RULES[key]
        if not eq or key in options:
            raise InfomaxError(f"augment: option '{key}' needs exactly one value, as {key}=VALUE ({allowed})")
        try:
            options[key] = kind(value)
        except ValueError:
            raise InfomaxError(f"augment: bad {key}={value!r} (expected {allowed})") from None
    return Augment(**options)
