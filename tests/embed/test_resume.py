"""`infomax embed` into parts: a crashed embed resumes to the same parts; two torchrun processes
write the same rows as one process."""

import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

import infomax.embed.run as run_module
from infomax.config import resolve
from infomax.embed import shards
from infomax.embed.files import load_embeddings
from infomax.embed.run import embed_to_folder
from infomax.errors import InfomaxError
from infomax.train.loop import train
from tests.datasets import small_digits

DATA = "digits,size=16"  # 1797 images: 1437 train, 360 test
PART = 500  # -> 4 parts: 500, 500, 500, 297


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    cfg = resolve("digits", {}, {"preset": "seed", "batch_size": 32, "max_steps": 2, "device": "cpu", "z_dim": 16})
    train(cfg, run, small_digits(), progress=False)
    return run


@pytest.fixture(scope="module")
def straight(run_dir, tmp_path_factory):
    """An uninterrupted embed (μ and fc) in 4 parts."""
    out = tmp_path_factory.mktemp("straight")
    embed_to_folder(run_dir, out, data=DATA, features=("y", "fc"), device="cpu", part_size=PART, progress=False)
    return out


def _same_parts(a, b, names=("embeddings", "fc")):
    assert shards.finished_parts(a) == shards.finished_parts(b) == [0, 1, 2, 3]
    for k in range(4):
        for name in names:
            np.testing.assert_array_equal(np.load(shards.vectors_path(a, k, name)), np.load(shards.vectors_path(b, k, name)))
        assert shards.read_metadata(a).equals(shards.read_metadata(b))


def test_a_crashed_embed_resumes_to_the_same_parts(run_dir, straight, tmp_path, monkeypatch, capsys):
    writes = []
    real = run_module.write_part

    def crash_after_two(folder, k, *args, **kwargs):
        if len(writes) == 2:
            raise KeyboardInterrupt("killed")  # the process dies while embedding part 2
        writes.append(k)
        return real(folder, k, *args, **kwargs)

    monkeypatch.setattr(run_module, "write_part", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        embed_to_folder(run_dir, tmp_path, data=DATA, features=("y", "fc"), device="cpu", part_size=PART, progress=False)
    assert shards.finished_parts(tmp_path) == [0, 1]
    with pytest.raises(InfomaxError, match="did not finish .2 of 4 parts"):
        load_embeddings(tmp_path)
    kept = {k: shards.vectors_path(tmp_path, k).stat().st_mtime_ns for k in (0, 1)}
    monkeypatch.setattr(run_module, "write_part", lambda folder, k, *a, **kw: writes.append(k) or real(folder, k, *a, **kw))
    capsys.readouterr()
    embed_to_folder(run_dir, tmp_path, data=DATA, features=("y", "fc"), device="cpu", part_size=PART, progress=False)
    assert writes == [0, 1, 2, 3]  # the rerun embedded only the two unfinished parts
    assert {k: shards.vectors_path(tmp_path, k).stat().st_mtime_ns for k in (0, 1)} == kept
    assert "1000 of them before" in capsys.readouterr().out
    _same_parts(straight, tmp_path)
    info = json.loads((tmp_path / "embed.json").read_text())
    assert info["complete"] and [p["rows"] for p in info["parts"]] == [500, 500, 500, 297]
    emb = load_embeddings(tmp_path)
    assert emb.info["splits"] == {"train": [0, 1437], "test": [1437, 1797]} and len(emb.vectors.parts) == 4


def test_other_settings_are_refused_unless_replaced(run_dir, straight, tmp_path):
    out = tmp_path / "emb"
    shutil.copytree(straight, out)
    with pytest.raises(InfomaxError, match="dtype: 'float32' there, 'float16' now.*--replace"):
        embed_to_folder(run_dir, out, data=DATA, device="cpu", part_size=PART, dtype="float16", progress=False)
    embed_to_folder(run_dir, out, data=DATA, device="cpu", part_size=700, dtype="float16", replace=True, progress=False)
    emb = load_embeddings(out)
    assert [len(p) for p in emb.vectors.parts] == [700, 700, 397] and emb.vectors.storage_dtype == np.float16
    want = load_embeddings(straight).vectors[:]  # float32 rows of the same checkpoint and data
    np.testing.assert_array_equal(emb.vectors[:], want.astype(np.float16).astype(np.float32))
    (tmp_path / "other").mkdir()
    np.save(tmp_path / "other" / "embeddings.npy", np.zeros((2, 16), np.float32))  # an old folder, no embed.json
    with pytest.raises(InfomaxError, match="embeddings without embed.json"):
        embed_to_folder(run_dir, tmp_path / "other", data=DATA, device="cpu", progress=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_torchrun_processes_write_the_rows_of_one(run_dir, straight, tmp_path):
    out = tmp_path / "emb"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--rdzv_backend=c10d",
           f"--rdzv_endpoint=127.0.0.1:{_free_port()}", "-m", "infomax", "embed", "--checkpoint", str(run_dir),
           "--data", DATA, "--out", str(out), "--features", "fc", "--part-size", str(PART), "--device", "cpu",
           "--no-progress"]
    env = {**os.environ, "INFOMAX_COMPILE": "0", "OMP_NUM_THREADS": "1", "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "2 processes" in done.stdout and done.stdout.count("embedded 1797 images") == 1  # rank 0 reports
    one, two = load_embeddings(straight), load_embeddings(out)
    assert two.metadata.equals(one.metadata)
    np.testing.assert_allclose(two.vectors[:], one.vectors[:], rtol=0, atol=1e-6)
    np.testing.assert_allclose(two.extra["fc"][:], one.extra["fc"][:], rtol=0, atol=1e-6)
    info = json.loads((out / "embed.json").read_text())
    assert info["complete"] and [p["rows"] for p in info["parts"]] == [500, 500, 500, 297]
