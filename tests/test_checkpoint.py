import json

import pytest
import torch

from infomax.errors import InfomaxError
from infomax.checkpoint import KEEP, config_difference, load_checkpoint, save_checkpoint


def _save(run_dir, step, value):
    model = torch.nn.Linear(3, 2)
    torch.nn.init.constant_(model.weight, value)
    cfg = {"train": {"lr": 1.0}, "model": {"z_dim": 2}, "data": {}}
    return save_checkpoint(run_dir, config=cfg, model=model, state={"step": step}, step=step, epoch=0)


def test_roundtrip_and_latest(tmp_path):
    _save(tmp_path, 10, 1.0)
    _save(tmp_path, 20, 2.0)
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.step == 20 and ckpt.config["model"] == {"z_dim": 2}
    assert torch.equal(ckpt.weights["weight"], torch.full((2, 3), 2.0))
    assert ckpt.training_state()["step"] == 20
    assert load_checkpoint(tmp_path / "checkpoints" / "step-00000010").step == 10


def test_old_checkpoints_pruned(tmp_path):
    for step in range(1, 6):
        _save(tmp_path, step, float(step))
    kept = sorted(p.name for p in (tmp_path / "checkpoints").glob("step-*"))
    assert len(kept) == KEEP and kept[-1] == "step-00000005"


def test_corrupt_checkpoint_is_refused(tmp_path):
    _save(tmp_path, 1, 1.0)
    step_dir = _save(tmp_path, 2, 2.0)
    weights = step_dir / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(InfomaxError, match="corrupt.*step-00000001"):
        load_checkpoint(tmp_path)


def test_interrupted_write_leaves_last_good_checkpoint(tmp_path):
    _save(tmp_path, 1, 1.0)
    # a crash mid-write leaves a temp folder and an unfinished step folder without manifest in latest
    tmp = tmp_path / "checkpoints" / ".tmp-step-00000002-999"
    tmp.mkdir()
    (tmp / "model.safetensors").write_bytes(b"half")
    assert load_checkpoint(tmp_path).step == 1
    _save(tmp_path, 3, 3.0)  # the next save clears the debris
    assert not tmp.exists()


def test_missing_and_empty(tmp_path):
    with pytest.raises(InfomaxError, match="does not exist"):
        load_checkpoint(tmp_path / "nope")
    with pytest.raises(InfomaxError, match="holds no checkpoint"):
        load_checkpoint(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "latest.json").write_text("{not json")
    with pytest.raises(InfomaxError, match="damaged"):
        load_checkpoint(tmp_path)


def test_config_difference():
    assert config_difference({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}) == ["b: 2 -> 3", "c: None -> 4"]
    assert json.dumps(config_difference({}, {})) == "[]"


def test_crash_while_the_same_step_is_rewritten_keeps_a_complete_latest(tmp_path, monkeypatch):
    """Rewriting step 2 (the end of a resumed run): a crash after the old copy is removed and
    before the new one is renamed into place still leaves latest.json on a complete checkpoint."""
    import infomax.checkpoint as checkpoint

    _save(tmp_path, 2, 2.0)

    def crash(src, dst):
        if str(dst).endswith("step-00000002"):
            raise KeyboardInterrupt("killed")  # nothing after this line of save_checkpoint runs
        return real_replace(src, dst)

    real_replace = checkpoint.os.replace
    monkeypatch.setattr(checkpoint.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        _save(tmp_path, 2, 7.0)
    monkeypatch.undo()
    assert not (tmp_path / "checkpoints" / "step-00000002").exists()  # the old copy is gone
    ckpt = load_checkpoint(tmp_path)  # and the new one is in force
    assert ckpt.step == 2 and torch.equal(ckpt.weights["weight"], torch.full((2, 3), 7.0))
    _save(tmp_path, 3, 3.0)  # the next save moves on and clears the temporary folder
    assert load_checkpoint(tmp_path).step == 3
    assert not list((tmp_path / "checkpoints").glob(".tmp-*"))
