import numpy as np
import pytest

from infomax.embed.embedder import Embedder
from infomax.embed.files import load_embeddings, save_embeddings
from infomax.embed.run import embed_dataset
from infomax.errors import InfomaxError
from infomax.config import resolve
from infomax.train.loop import train
from tests.datasets import small_digits


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    data = small_digits()
    cfg = resolve("digits", {}, {"preset": "seed", "batch_size": 32, "max_steps": 3, "device": "cpu", "z_dim": 16})
    train(cfg, run, data, progress=False)
    return run, data


def test_rows_follow_data_order(trained, tmp_path):
    run, data = trained
    embedder = Embedder.from_checkpoint(run, device="cpu")
    emb = embed_dataset(embedder, data, spec="digits", checkpoint=str(run), features=("y", "fc", "conv"), batch_size=50)
    all_images = np.concatenate([s.images for s in data.splits.values()])
    # eval-mode BatchNorm: each image's features do not depend on its batch
    for i in (0, 1, 255, 256, 300, len(all_images) - 1):
        one = embedder.embed_features(all_images[i : i + 1], ("y", "fc", "conv"))
        np.testing.assert_allclose(emb.vectors[i], one["y"][0], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(emb.extra["conv"][i], one["conv"][0], rtol=1e-4, atol=1e-5)
    assert emb.vectors.shape == (320, 16) and emb.extra["fc"].shape == (320, 256) and emb.extra["conv"].shape == (320, 256 * 16)
    assert emb.metadata["split"].tolist() == ["train"] * 256 + ["test"] * 64
    assert emb.metadata["id"].tolist() == data.splits["train"].ids + data.splits["test"].ids
    assert emb.metadata["label"].tolist()[:5] == data.splits["train"].labels[:5].tolist()
    assert emb.metadata["label_name"][3] == str(data.splits["train"].labels[3])
    save_embeddings(tmp_path, emb)
    back = load_embeddings(tmp_path)
    np.testing.assert_array_equal(back.vectors, emb.vectors)
    assert back.info["splits"] == {"train": [0, 256], "test": [256, 320]} and set(back.extra) == {"fc", "conv"}
    np.testing.assert_array_equal(back.rows("test"), np.arange(256, 320))


def test_mismatched_files_are_refused(trained, tmp_path):
    run, data = trained
    emb = embed_dataset(Embedder.from_checkpoint(run, device="cpu"), data, spec="digits", checkpoint=str(run))
    save_embeddings(tmp_path, emb)
    np.save(tmp_path / "embeddings" / "part-00000.npy", np.zeros((5, 16), np.float32))
    with pytest.raises(InfomaxError, match="5 embeddings but 320 metadata rows"):
        load_embeddings(tmp_path)
    with pytest.raises(InfomaxError, match="holds no embeddings"):
        load_embeddings(tmp_path / "missing")


def test_wrong_image_size_is_refused(trained):
    run, _ = trained
    embedder = Embedder.from_checkpoint(run, device="cpu")
    with pytest.raises(InfomaxError, match="size=16"):
        embedder.embed(np.zeros((2, 1, 32, 32), np.uint8))


def test_random_init_differs_from_trained(trained):
    run, data = trained
    x = data.splits["test"].images[:8]
    a = Embedder.from_checkpoint(run, device="cpu").embed(x)
    b = Embedder.random_init(run, device="cpu").embed(x)
    assert not np.allclose(a, b)


def test_split_metadata_of_labelled_and_unlabelled_splits():
    from infomax.data.dataset import Split
    from infomax.embed.run import split_metadata

    images = np.zeros((3, 1, 8, 8), np.uint8)
    named = split_metadata("test", Split(images, np.array([2, 0, 2]), ["a", "b", "c"]), ["cat", "dog", "eel"])
    assert named["id"].tolist() == ["a", "b", "c"] and named["split"].tolist() == ["test"] * 3
    assert named["label"].tolist() == [2, 0, 2] and named["label_name"].tolist() == ["eel", "cat", "eel"]
    bare = split_metadata("train", Split(images, None, ["x", "y", "z"]), None)
    assert bare["label"].isna().all() and str(bare["label"].dtype) == "Int64" and bare["label_name"].tolist() == [""] * 3


def test_memory_mapped_images_give_the_same_vectors(trained, tmp_path, monkeypatch):
    import infomax.embed.embedder as embedder_module

    run, data = trained
    embedder = Embedder.from_checkpoint(run, device="cpu")
    images = np.ascontiguousarray(data.splits["train"].images)
    np.save(tmp_path / "train.images.npy", images)
    mapped = np.load(tmp_path / "train.images.npy", mmap_mode="r")
    monkeypatch.setattr(embedder_module, "RELEASE_BYTES", 5000)  # unmap the pages read every few batches
    got = embedder.embed_features(mapped, ("y", "fc"), batch_size=20)
    want = embedder.embed_features(images, ("y", "fc"), batch_size=20)
    assert all(np.array_equal(got[f], want[f]) for f in ("y", "fc")) and got["y"].shape == (256, 16)
    assert np.array_equal(mapped, images)  # still readable after its pages were unmapped
