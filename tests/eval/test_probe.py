import numpy as np

from infomax.eval.probe import budget_epochs, probe_accuracy


def blobs(n, seed, shift=3.0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centers = rng.normal(size=(3, 12)) * shift
    return (centers[y] + rng.normal(size=(n, 12))).astype(np.float32), y


def test_probes_learn_separable_data_and_not_shuffled_labels():
    x, y = blobs(400, 0)
    xt, yt = x[300:], y[300:]
    x, y = x[:300], y[:300]
    for kind in ("linear", "mlp"):
        assert probe_accuracy(kind, x, y, xt, yt, 3, epochs=300) > 0.9
        shuffled = np.random.default_rng(1).permutation(y)
        assert probe_accuracy(kind, x, shuffled, xt, yt, 3, epochs=300) < 0.55  # chance is 1/3


def test_probe_is_repeatable_and_constant_dims_are_harmless():
    x, y = blobs(200, 2)
    x[:, 0] = 5.0  # a constant dimension
    a = probe_accuracy("linear", x[:150], y[:150], x[150:], y[150:], 3, seed=3)
    b = probe_accuracy("linear", x[:150], y[:150], x[150:], y[150:], 3, seed=3)
    assert a == b and a > 0.8


def test_epoch_budget():
    assert budget_epochs("linear", 50_000) == 30  # 196 steps an epoch: the plain budget
    assert budget_epochs("mlp", 256) == 3000  # one step an epoch: raised to 3,000 steps
