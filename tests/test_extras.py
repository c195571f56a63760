"""The core install: `import infomax`, training and embedding work with every extra's packages
unimportable, and a command that needs a missing extra exits 2 naming the extra to install."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import infomax
from infomax.errors import InfomaxError
from infomax.extras import missing_message, require

SRC = Path(infomax.__file__).resolve().parents[1]
BLOCKED = ("faiss", "fastapi", "uvicorn", "sklearn", "matplotlib", "pandas", "pyarrow", "tensorboard", "umap", "webdataset")

# Run first in every child: each meta-path finder is wrapped so that it finds none of the blocked
# packages, the state of a machine where they are not installed (importlib.util.find_spec gives
# None, `import` raises ModuleNotFoundError).
BLOCKER = textwrap.dedent(f"""
    import sys

    class NotInstalled:
        def __init__(self, finder):
            self.finder = finder

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {BLOCKED!r}:
                return None
            return self.finder.find_spec(name, path, target)

        def __getattr__(self, attr):
            return getattr(self.finder, attr)

    sys.meta_path[:] = [NotInstalled(f) for f in sys.meta_path]
""")


def run_blocked(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SRC), "INFOMAX_HOME": str(tmp_path / "home"), "INFOMAX_COMPILE": "0"}
    return subprocess.run([sys.executable, "-c", BLOCKER + textwrap.dedent(code)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


def write_png_folder(root: Path, per_class: int = 12) -> None:
    """root/{train,test}/{dark,light}/NN.png: 16×16 RGB noise around two brightness levels."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for label, base in (("dark", 60), ("light", 190)):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = np.clip(base + rng.normal(0, 40, (16, 16, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:02d}.png")


def test_blocker_blocks(tmp_path):
    for name in BLOCKED:
        r = run_blocked(f"import {name}", tmp_path)
        assert r.returncode == 1 and "ModuleNotFoundError" in r.stderr, name


@pytest.mark.slow
def test_core_trains_and_embeds_without_extras(tmp_path):
    write_png_folder(tmp_path / "images")
    spec = f"folder:{tmp_path / 'images'},size=16"
    r = run_blocked(f"""
        import json
        import numpy as np
        import infomax

        dataset = infomax.load_data({spec!r}, progress=False)
        result = infomax.fit(dataset, "seed", steps=3, out="run", progress=False, batch_size=8, log_every=1,
                             device="cpu", z_dim=16, precision="fp32")
        images = dataset.split("test").images
        np.save("test.npy", np.asarray(images))
        np.save("mu.npy", infomax.load("run", device="cpu").embed(images))
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {BLOCKED!r})
        print(json.dumps({{"step": result.steps, "losses": result.losses, "loaded": loaded}}))
    """, tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["step"] == 3 and out["loaded"] == []
    assert all(np.isfinite(v) for v in out["losses"].values()) and {"global", "local"} <= set(out["losses"])
    run = tmp_path / "run"
    assert [line.split(",")[0] for line in (run / "log.csv").read_text().splitlines()[1:]] == ["1", "2", "3"]
    assert not (run / "tensorboard").exists() and not (run / "loss.png").exists()
    assert r.stderr.count("pip install 'infomax[tensorboard]'") == 1  # said once
    assert "pip install 'infomax[eval]'" in r.stderr  # the loss-curve PNG is skipped
    # the child's embeddings are the ones this process (all packages present) computes from the checkpoint
    from infomax.embed.embedder import Embedder

    images, mu = np.load(tmp_path / "test.npy"), np.load(tmp_path / "mu.npy")
    assert images.shape == (24, 3, 16, 16) and mu.shape == (24, 16)
    np.testing.assert_allclose(mu, Embedder.from_checkpoint(run, device="cpu").embed(images), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("argv, extra", [
    (["index", "--embeddings", "emb", "--out", "idx"], "index"),
    (["search", "--index", "idx", "--row", "0"], "index"),
    (["serve", "--index", "idx", "--port", "0"], "serve"),
    (["embed", "--checkpoint", "run", "--out", "emb"], "eval"),
    (["eval", "--embeddings", "emb"], "eval"),
    (["plot", "--embeddings", "emb", "--out", "map.png"], "eval"),
    (["train", "--data", "digits", "--out", "run"], "eval"),  # the digits come from scikit-learn
    (["data", "shard", "folder:imgs", "--out", "shards"], "shards"),
    (["data", "info", "webdataset:shards"], "shards"),
])
def test_command_names_the_missing_extra(tmp_path, argv, extra):
    r = run_blocked(f"from infomax.cli import main\nraise SystemExit(main({argv!r}))", tmp_path)
    assert r.returncode == 2, r.stderr
    assert f"needs the '[{extra}]' extra" in r.stderr and f"pip install 'infomax[{extra}]'" in r.stderr
    assert "Traceback" not in r.stderr


def test_embedder_does_not_import_the_trainer(tmp_path):
    r = run_blocked("""
        import infomax.embed.embedder
        print(sorted(m for m in sys.modules if m.startswith("infomax.train")))
    """, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_require_returns_the_module_or_names_the_extra():
    import json as json_module

    assert require("json", "eval", "x") is json_module
    with pytest.raises(InfomaxError) as info:
        require("infomax_no_such_package.sub", "index", "the search index")
    assert str(info.value) == missing_message("infomax_no_such_package", "index", "the search index")
    assert str(info.value) == ("the search index needs the '[index]' extra (infomax_no_such_package is not "
                               "installed): pip install 'infomax[index]'")
    assert "(faiss-cpu is not installed)" in missing_message("faiss", "index", "x")
