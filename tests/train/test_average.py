import pytest
import torch
from torch import nn

from infomax.checkpoint import load_checkpoint
from infomax.config import resolve
from infomax.errors import InfomaxError
from infomax.train.average import WeightAverage, average_decay
from infomax.train.loop import train


def test_the_decay_warms_up_then_holds():
    assert average_decay(0.99, 1) == pytest.approx(2 / 11)  # (1 + t) / (10 + t)
    assert average_decay(0.99, 8) == pytest.approx(9 / 18)
    assert average_decay(0.99, 1000) == 0.99 and average_decay(0.5, 100) == 0.5


def test_the_average_follows_its_recurrence_in_float64():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    average = WeightAverage(model, decay=0.8)
    expected = {n: p.detach().double().clone() for n, p in model.named_parameters()}
    for t in range(1, 7):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        average.update(model)
        d = min(0.8, (1 + t) / (10 + t))
        for n, p in model.named_parameters():
            expected[n] = d * expected[n] + (1 - d) * p.detach().double()
    for n in expected:
        torch.testing.assert_close(average.average[n].double(), expected[n], rtol=1e-6, atol=1e-6)
    trained = {n: p.detach().clone() for n, p in model.named_parameters()}
    weights, kept = average.checkpoint(model)
    assert torch.equal(weights["1.running_mean"], model.state_dict()["1.running_mean"])  # buffers: the model's own
    assert all(torch.equal(weights[n], average.average[n]) and torch.equal(kept[n], trained[n]) for n in trained)
    average.use(model)
    assert all(torch.equal(p, average.average[n]) for n, p in model.named_parameters())
    weights, kept = average.checkpoint(model)
    assert all(torch.equal(weights[n], average.average[n]) and torch.equal(kept[n], trained[n]) for n in trained)


def _cfg(**over):
    base = {"preset": "seed", "batch_size": 32, "max_steps": 8, "checkpoint_every": 3, "log_every": 1, "device": "cpu",
            "z_dim": 32, "deterministic": True}
    return resolve("digits", {}, {**base, **over})


def test_a_run_keeps_the_average_trains_the_same_and_resumes_exactly(tmp_path, digits16):
    plain = train(_cfg(), tmp_path / "plain", digits16, progress=False)
    averaged = train(_cfg(ema=0.9), tmp_path / "a", digits16, progress=False)
    train(_cfg(ema=0.9, max_steps=4), tmp_path / "b", digits16, progress=False)
    resumed = train(_cfg(ema=0.9), tmp_path / "b", digits16, resume=True, progress=False)
    assert plain.step == averaged.step == resumed.step == 8
    last = load_checkpoint(tmp_path / "plain").weights
    a, b = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    trained_a, trained_b = a.training_state()["trained"], b.training_state()["trained"]
    assert a.weights.keys() == b.weights.keys() == last.keys() and trained_a.keys() == trained_b.keys()
    for k in trained_a:  # averaging does not change what is trained; the checkpoint holds the average
        assert torch.equal(trained_a[k], last[k]) and torch.equal(trained_b[k], last[k]), k
        assert not torch.equal(a.weights[k], last[k]), k
    for k in a.weights:  # resumed: the same average, the same buffers
        assert torch.equal(a.weights[k], b.weights[k]), k
    assert a.training_state()["average_step"] == b.training_state()["average_step"] == 8
    model_weights = dict(averaged.model.state_dict())  # the returned model holds the average
    assert all(torch.equal(model_weights[k].cpu(), a.weights[k]) for k in trained_a)


def test_the_decay_must_be_below_one():
    with pytest.raises(InfomaxError, match="optim.ema must be below 1"):
        _cfg(ema=1.0)
    with pytest.raises(InfomaxError, match="optim.ema"):
        _cfg(ema=-0.1)
