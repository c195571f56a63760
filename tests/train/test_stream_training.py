"""Training from a stream of WebDataset shards: the same run as from the decoded arrays' epochs
where the order allows, resumable exactly in the middle of an epoch, and under torchrun."""

from __future__ import annotations

import pytest
import torch

from infomax.checkpoint import load_checkpoint
from infomax.config import resolve
from infomax.data.shards import write_shards
from infomax.data.stream import open_stream
from infomax.train.feed import StreamFeed
from infomax.train.distributed import Ranks
from infomax.train.loop import train
from tests.datasets import small_digits

pytest.importorskip("webdataset")


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits") / "shards"
    write_shards(small_digits(), out, shard_size=32, progress=False)  # 256 train images: 8 shards
    return out / "train"


def _cfg(**over):
    return resolve("digits", {}, {"preset": "recommended", "batch_size": 32, "channels": 32, "z_dim": 32,
                                  "device": "cpu", "workers": 0, "bn_recalibrate": 64, "checkpoint_every": 5, **over})


def test_a_stream_feeds_the_shards_pixels_in_its_order(shards):
    """The feed's plain views are the stream's batches, normalized: (x / 255 - 0.5) for 'center'."""
    stream = open_stream(f"webdataset:{shards}")
    cfg = _cfg(augment="none", views=1)
    feed = StreamFeed(stream, 0, Ranks(), 32, 0, None, torch.device("cpu"), torch.contiguous_format)
    assert feed.steps_per_epoch == 256 // 32
    feed.start(epoch=1, skip=2)
    want = [x for x, _, _ in stream.batches(epoch=1, seed=cfg.run.seed, batch_size=32, workers=0)][2]
    (got,) = feed.views(1, torch.Generator())
    torch.testing.assert_close(got, want.float() / 255 - 0.5, rtol=0, atol=1e-7)


def test_stream_run_resumed_mid_epoch_equals_a_straight_run(tmp_path, shards):
    stream = open_stream(f"webdataset:{shards}")
    straight = train(_cfg(max_steps=13), tmp_path / "a", stream, progress=False)
    train(_cfg(max_steps=5), tmp_path / "b", stream, progress=False)  # stops inside epoch 0 (8 steps)
    resumed = train(_cfg(max_steps=13), tmp_path / "b", stream, resume=True, progress=False)
    assert straight.step == resumed.step == 13 and straight.epoch == 1
    a, b = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    assert a.config["data"]["kind"] == "webdataset" and a.config["data"]["spec"] == f"webdataset:{shards}"
    for k in a.weights:
        assert torch.equal(a.weights[k], b.weights[k]), k


def test_stream_and_arrays_train_alike(tmp_path, shards):
    """The same images in another order: both runs learn (their loss falls)."""
    data = small_digits()
    from_arrays = train(_cfg(max_steps=24, lr=3e-3), tmp_path / "arrays", data, progress=False)
    from_stream = train(_cfg(max_steps=24, lr=3e-3), tmp_path / "stream", open_stream(f"webdataset:{shards}"),
                        progress=False)
    import csv

    for run in (from_arrays, from_stream):
        rows = list(csv.DictReader(open(run.run_dir / "log.csv")))
        assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
