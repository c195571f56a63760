import math

import torch

from infomax.model.attention import SelfAttention
from infomax.model.config import ModelConfig
from infomax.model.encoder import Encoder


def test_self_attention_against_the_formula_in_float64():
    torch.manual_seed(0)
    block = SelfAttention(16).double()
    with torch.no_grad():
        block.gamma.fill_(0.7)
    x = torch.randn(2, 16, 3, 5, dtype=torch.float64)
    got = block(x)
    want = torch.empty_like(x)
    wq, wk, wv = block.q.weight, block.k.weight, block.v.weight  # 2×16, 2×16, 16×16
    for n in range(2):
        rows = x[n].reshape(16, 15).T  # positions × channels
        q, k, v = rows @ wq.T, rows @ wk.T, rows @ wv.T
        a = torch.softmax(q @ k.T / math.sqrt(2), dim=1)  # position p attends to every r
        want[n] = (rows + 0.7 * a @ v).T.reshape(16, 3, 5)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(block(x_cl), want, rtol=1e-12, atol=1e-12)


def test_attention_starts_as_the_identity_and_learns_its_weight():
    torch.manual_seed(1)
    plain = Encoder(ModelConfig(image_size=32)).double()
    attn = Encoder(ModelConfig(image_size=32, attention=True)).double()
    missing = attn.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert sorted(missing) == ["attention.gamma", "attention.k.weight", "attention.q.weight", "attention.v.weight"]
    x = torch.randn(4, 3, 32, 32, dtype=torch.float64)
    a, b = plain(x), attn(x)
    torch.testing.assert_close(a.mu, b.mu, rtol=0, atol=0)
    assert attn.attention.gamma.item() == 0
    b.mu.sum().backward()
    assert attn.attention.gamma.grad.abs().item() > 0  # γ moves away from 0 in training
