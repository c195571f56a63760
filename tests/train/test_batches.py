"""BatchSource gives the same batches from a copy in memory and from the cache's memory map."""

import numpy as np
import pytest
import torch

import infomax.train.batches as batches
from infomax.train.augment import parse_augment
from infomax.train.batches import BatchSource, epoch_order


@pytest.fixture
def mapped(tmp_path) -> np.ndarray:
    images = np.random.default_rng(0).integers(0, 256, (37, 3, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "train.images.npy", images)
    return np.load(tmp_path / "train.images.npy", mmap_mode="r")  # read-only, as the cache gives it


def test_memory_map_and_memory_give_the_same_batches(mapped, monkeypatch):
    monkeypatch.setattr(batches, "RELEASE_BYTES", 1000)  # unmap the pages read every few batches
    cpu = torch.device("cpu")
    copy = BatchSource(mapped, "symmetric", cpu, channels_last=True, in_memory=True)
    gather = BatchSource(mapped, "symmetric", cpu, channels_last=True, in_memory=False)
    assert gather.host is mapped and copy.host is not mapped and len(copy) == len(gather) == 37
    expected_all = mapped.astype(np.float64) / 127.5 - 1.0  # the symmetric normalization, in float64
    for index in epoch_order(37, seed=3, epoch=0).split(10):  # batches of 10, 10, 10, 7 in random order
        a, b = copy.batch(index), gather.batch(index)
        assert a.dtype == torch.float32 and a.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(a, b)
        np.testing.assert_allclose(b.double().numpy(), expected_all[index.numpy()], rtol=0, atol=1e-6)
    augment = parse_augment("default")
    copy.augment = gather.augment = augment
    index = torch.tensor([5, 0, 36, 5])  # repeats and any order
    va = copy.views(index, 2, torch.Generator().manual_seed(1))
    vb = gather.views(index, 2, torch.Generator().manual_seed(1))
    assert len(va) == len(vb) == 2 and all(torch.equal(x, y) for x, y in zip(va, vb))
    assert not torch.equal(va[0], va[1])  # two independent views


def test_in_memory_is_decided_by_size(mapped, monkeypatch):
    cpu = torch.device("cpu")
    nbytes = mapped.nbytes  # 37 × 192
    monkeypatch.setattr(batches, "available_memory", lambda device: 4 * nbytes)  # exactly IN_MEMORY_FRACTION
    assert BatchSource(mapped, "center", cpu, channels_last=False).in_memory
    monkeypatch.setattr(batches, "available_memory", lambda device: 4 * nbytes - 1)
    source = BatchSource(mapped, "center", cpu, channels_last=False)
    assert not source.in_memory and source.host is mapped


def test_available_memory_is_at_most_the_physical_memory():
    import os

    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert 0 < batches.available_memory(torch.device("cpu")) <= total


@pytest.mark.parametrize("recipe", ["default", "jitter=1.0,hue=0.1,rotate=10"])
def test_views_come_in_the_models_layout_with_the_values_of_the_recipe_on_it(recipe):
    # the augmentation runs on contiguous batches; the views equal the recipe run on channels_last
    # batches (the layout the model reads), normalized, and come in that layout
    from infomax.data.pixels import normalize_pixels
    from infomax.train.batches import pixel_views

    x = torch.randint(0, 256, (16, 3, 20, 20), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    augment = parse_augment(recipe, (3, 20, 20))
    cl = torch.channels_last
    views = pixel_views(x, 2, torch.Generator().manual_seed(4), augment, "center", cl)
    on_cl = augment.views(x.float().div(255).contiguous(memory_format=cl), 2, torch.Generator().manual_seed(4))
    for view, want in zip(views, on_cl, strict=True):
        assert view.is_contiguous(memory_format=cl) and not view.is_contiguous()
        torch.testing.assert_close(view, normalize_pixels(want, "center", unit=True), atol=1e-5, rtol=0)
    plain = pixel_views(x, 2, torch.Generator().manual_seed(4), augment, "center", torch.contiguous_format)
    assert all(v.is_contiguous() for v in plain)
    assert all(torch.equal(a, b) for a, b in zip(plain, views))


def test_views_come_at_the_training_side_augmented_or_plain():
    # model.train_size: augmented views are drawn onto side×side, and without an augmentation the
    # plain batch is shrunk to it (antialiased), normalized as every view is
    from infomax.data.pixels import normalize_pixels
    from infomax.train.batches import pixel_views
    from tests.train.test_augment import _shrink_reference

    x = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    augment = parse_augment("default", (3, 16, 16))
    views = pixel_views(x, 2, torch.Generator().manual_seed(4), augment, "center", torch.contiguous_format, side=16)
    want = augment.views(x.float().div(255), 2, torch.Generator().manual_seed(4), size=16)
    for view, w in zip(views, want, strict=True):
        assert view.shape == (8, 3, 16, 16)
        torch.testing.assert_close(view, normalize_pixels(w, "center", unit=True), atol=1e-5, rtol=0)
    plain = pixel_views(x, 2, torch.Generator(), None, "center", torch.contiguous_format, side=16)
    shrunk = _shrink_reference(x.double() / 255, 16)  # float64
    torch.testing.assert_close(plain[0], normalize_pixels(shrunk, "center", unit=True), atol=1e-5, rtol=0)
    assert plain[0] is plain[1]
    same = pixel_views(x, 2, torch.Generator(), None, "center", torch.contiguous_format, side=32)  # its own side
    assert torch.equal(same[0], normalize_pixels(x, "center"))
