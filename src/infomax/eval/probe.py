"""Probes: small classifiers trained on frozen features (labels are used here only).

- linear probe: multinomial logistic regression (one linear layer, softmax cross-entropy) on
  features standardized with the gallery's mean and std.
- DIM probe (Hjelm et al. 2019): one hidden layer of 200 ReLU units with dropout 0.1, on the same
  standardized features.

Both train with Adam, mini-batches of 256, a cosine learning-rate decay and a fixed number of
epochs (30; more on small sets, so that there are at least 3,000 steps) from a fixed seed, so a
run is repeatable and its cost known in advance (linear 4.5 s, MLP 11 s on 50,000 × 256
features on 2 CPU cores: benchmarks/bench_knn.py). The score is top-1 accuracy on the queries.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

LINEAR_EPOCHS = 30
MLP_EPOCHS = 30
BATCH_SIZE = 256
HIDDEN = 200
DROPOUT = 0.1
ONE_THREAD_MAX_DIM = 1024
MIN_STEPS = 3000  # small training sets get more epochs, so that every probe converges


def budget_epochs(kind: str, n: int, batch_size: int = BATCH_SIZE) -> int:
    """The fixed epoch budget: LINEAR_EPOCHS / MLP_EPOCHS, raised on small sets to at least MIN_STEPS steps."""
    epochs = LINEAR_EPOCHS if kind == "linear" else MLP_EPOCHS
    steps_per_epoch = max(1, (n + batch_size - 1) // batch_size)
    return max(epochs, -(-MIN_STEPS // steps_per_epoch))


def standardize(train: np.ndarray, test: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 tensors scaled with the train features' per-dimension mean and std (N×D, M×D)."""
    x = torch.from_numpy(np.array(train, dtype=np.float32, copy=True))
    t = torch.from_numpy(np.array(test, dtype=np.float32, copy=True))
    mean = x.mean(0)
    std = x.std(0).clamp_min(1e-6)  # a constant dimension stays 0 instead of dividing by 0
    x.sub_(mean).div_(std)
    t.sub_(mean).div_(std)
    return x, t


def linear_model(dim: int, num_classes: int) -> nn.Module:
    return nn.Linear(dim, num_classes)


def mlp_model(dim: int, num_classes: int) -> nn.Module:
    return nn.Sequential(nn.Linear(dim, HIDDEN), nn.ReLU(), nn.Dropout(DROPOUT), nn.Linear(HIDDEN, num_classes))


def fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int,
    lr: float = 1e-3,
    weight_decay: float = 1e-5,
    batch_size: int = BATCH_SIZE,
    seed: int = 0,
) -> nn.Module:
    """Train `model` on x (N×D float32) and y (int64 N) with Adam and a cosine decay; returns it."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * ((len(x) + batch_size - 1) // batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps, 1))
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch_size):
            batch = order[start : start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(x[batch]), y[batch]).backward()
            optimizer.step()
            schedule.step()
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 4096) -> np.ndarray:
    model.eval()
    return torch.cat([model(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)]).numpy()


def probe_accuracy(
    kind: str,
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    num_classes: int,
    epochs: int | None = None,
    seed: int = 0,
) -> float:
    """Top-1 test accuracy of a probe ('linear' or 'mlp') trained on standardized train features.

    train_x: N×D, train_y: int N, test_x: M×D, test_y: int M.
    """
    if kind not in ("linear", "mlp"):
        raise ValueError(f"unknown probe '{kind}'")
    torch.manual_seed(seed)  # the layers' initial weights
    x, t = standardize(train_x, test_x)
    make = linear_model if kind == "linear" else mlp_model
    model = make(x.shape[1], num_classes)
    epochs = epochs if epochs is not None else budget_epochs(kind, len(x))
    threads = torch.get_num_threads()
    # Small layers train fastest on one thread: each step is too short to share, and spare
    # threads spin when the cores are busy with other work.
    torch.set_num_threads(1 if x.shape[1] <= ONE_THREAD_MAX_DIM else threads)
    try:
        fit(model, x, torch.from_numpy(np.array(train_y, dtype=np.int64)), epochs=epochs, seed=seed)
        return float(np.mean(predict(model, t) == np.asarray(test_y)))
    finally:
        torch.set_num_threads(threads)
