"""The compiled BatchNorm → 2×2 max-pool → LeakyReLU block against float64 formulas, and where
it applies. The suite trains with INFOMAX_COMPILE=0 (tests/conftest.py); these tests turn it on."""

import csv
import os
import shutil
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from infomax import speedups
from infomax.model.config import ModelConfig
from infomax.model.encoder import ConvBN, Encoder
from infomax.speedups import bn_pool_act as fused
from infomax.speedups.convbn import SmallMapConvBN
from infomax.train.loop import compile_kernels_enabled

SLOPE = 0.2
COMPILER = os.environ.get("CXX", "g++")  # what torch.compile's CPU kernels are built with
needs_compiler = pytest.mark.skipif(shutil.which(COMPILER) is None,
                                    reason=f"no C++ compiler ({COMPILER}); make test installs g++ as root with apt-get")


@pytest.fixture(autouse=True)
def compile_on(monkeypatch):
    monkeypatch.setenv("INFOMAX_COMPILE", "1")


def reference(y64, gamma64, beta64, eps, grad64):
    """out and (∂L/∂y, ∂L/∂γ, ∂L/∂β) of LeakyReLU(max_pool(BN_train(y))) in float64, by autograd
    through the textbook formulas."""
    y, gamma, beta = (t.detach().clone().requires_grad_() for t in (y64, gamma64, beta64))
    mean = y.mean(dim=(0, 2, 3), keepdim=True)
    var = y.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    yhat = (y - mean) / torch.sqrt(var + eps) * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)
    out = F.leaky_relu(F.max_pool2d(yhat, 2, 2), SLOPE)
    out.backward(grad64)
    return out.detach(), y.grad, gamma.grad, beta.grad


def case(dtype, n=4, c=8, h=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = (torch.randn(n, c, h, h, generator=g) * 2 + 0.5).to(dtype).contiguous(memory_format=torch.channels_last)
    gamma = torch.randn(c, generator=g)  # some channels negative: the max of ŷ is then the min of y
    beta = torch.randn(c, generator=g) * 0.1
    grad = torch.randn(n, c, h // 2, h // 2, generator=g).to(dtype)
    return y, gamma, beta, grad


def run_fused(y, gamma, beta, grad, eps=1e-3):
    bn = torch.nn.BatchNorm2d(y.shape[1], eps=eps, momentum=0.01)
    with torch.no_grad():
        bn.weight.copy_(gamma)
        bn.bias.copy_(beta)
    y = y.detach().clone().requires_grad_()
    assert fused.bn_pool_act_applies(y, bn) == (y.dtype == torch.bfloat16)  # the kernels run either way here
    out = fused.bn_pool_act(y, bn, SLOPE)
    out.backward(grad)
    return out.detach(), y.grad, bn.weight.grad, bn.bias.grad, bn


@needs_compiler
def test_forward_and_gradients_match_float64_in_float32():
    y, gamma, beta, grad = case(torch.float32)
    got = run_fused(y, gamma, beta, grad)[:4]
    want = reference(y.double(), gamma.double(), beta.double(), 1e-3, grad.double())
    for g, w in zip(got, want):
        torch.testing.assert_close(g.double(), w, rtol=1e-4, atol=1e-5)


@needs_compiler
def test_forward_and_gradients_match_float64_in_bfloat16():
    # bf16 in and out, float32 inside: within a few bf16 roundings (2^-8 relative) of float64
    y, gamma, beta, grad = case(torch.bfloat16, seed=1)
    out, gy, gg, gb, _ = run_fused(y, gamma, beta, grad)
    assert out.dtype == gy.dtype == torch.bfloat16 and out.is_contiguous(memory_format=torch.channels_last)
    w_out, w_gy, w_gg, w_gb = reference(y.double(), gamma.double(), beta.double(), 1e-3, grad.double())
    torch.testing.assert_close(out.double(), w_out, rtol=8e-3, atol=8e-3)
    torch.testing.assert_close(gy.double(), w_gy, rtol=1e-2, atol=1e-2 * w_gy.abs().max().item())
    torch.testing.assert_close(gg.double(), w_gg, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gb.double(), w_gb, rtol=1e-4, atol=1e-4)


@needs_compiler
def test_running_statistics_follow_batchnorm():
    y, gamma, beta, grad = case(torch.float32, seed=2)
    *_, bn = run_fused(y, gamma, beta, grad)
    ref = torch.nn.BatchNorm2d(y.shape[1], eps=1e-3, momentum=0.01)
    ref(y)
    torch.testing.assert_close(bn.running_mean, ref.running_mean)
    torch.testing.assert_close(bn.running_var, ref.running_var)  # unbiased, as torch's
    assert bn.num_batches_tracked.item() == 1


@needs_compiler
def test_a_tie_sends_the_gradient_to_the_first_position_as_max_pool_does():
    y = torch.tensor([[[[1.0, 1.0], [1.0, 1.0]], [[0.5, 2.0], [2.0, 2.0]]]]).repeat(2, 1, 1, 1)
    y[1] = -y[1]  # the second image's windows differ, so the batch has a spread
    y = y.contiguous(memory_format=torch.channels_last)
    gamma, beta, grad = torch.ones(2), torch.zeros(2), torch.ones(2, 2, 1, 1)
    _, gy, *_ = run_fused(y, gamma, beta, grad)
    _, w_gy, *_ = reference(y.double(), gamma.double(), beta.double(), 1e-3, grad.double())
    torch.testing.assert_close(gy.double(), w_gy, rtol=1e-5, atol=1e-6)
    yr = y.clone().requires_grad_()
    F.max_pool2d(yr, 2, 2).sum().backward()
    assert yr.grad[0, 1].flatten().tolist() == [0.0, 1.0, 0.0, 0.0]  # torch's choice: the first 2.0


@needs_compiler
def test_moments_do_not_cancel_for_a_large_mean():
    # E[y²] − E[y]² in float32 loses everything at mean 1e4, spread 1; the shifted sums do not
    y = (1e4 + torch.randn(8, 3, 6, 6, generator=torch.Generator().manual_seed(3))).contiguous(
        memory_format=torch.channels_last)
    mean, var = fused._compiled(fused.batch_moments)(y)
    y64 = y.double()
    torch.testing.assert_close(mean.double(), y64.mean(dim=(0, 2, 3)), rtol=1e-7, atol=0.0)
    torch.testing.assert_close(var.double(), y64.var(dim=(0, 2, 3), unbiased=False), rtol=1e-3, atol=0.0)


@needs_compiler
def test_encoder_bf16_training_step_is_as_accurate_as_the_eager_ops(monkeypatch):
    # Against the same step in float64: the bf16 step with the kernels errs no more than with
    # the eager ops (which round ŷ to bf16 before pooling, where the kernels round after).
    cfg = ModelConfig(image_size=16, channels=32)
    x = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(0)).contiguous(
        memory_format=torch.channels_last)

    apply = fused._BNPoolAct.apply

    def step(kernels: bool, dtype: torch.dtype) -> list[torch.Tensor]:
        torch.manual_seed(1)
        enc = Encoder(cfg).to(dtype=dtype, memory_format=torch.channels_last)
        speedups.apply(enc, precision="bf16", device=torch.device("cpu"), compile_kernels=kernels)
        calls = []
        monkeypatch.setattr(fused._BNPoolAct, "apply", counting(apply, calls))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.float32):
            out = enc(x.to(dtype))
        (out.mu.double().square().sum() + out.logvar.double().sum() + out.local.double().sum()).backward()
        assert len(calls) == (2 if kernels and dtype == torch.float32 else 0)  # both down blocks
        return [out.mu, out.local, *(p.grad for p in enc.parameters()), enc.down[0].bn.running_var]

    exact, eager, compiled = step(False, torch.float64), step(False, torch.float32), step(True, torch.float32)

    def error(got, want):
        return ((got.double() - want).norm() / want.norm()).item()

    for e64, e, c in zip(exact, eager, compiled):
        assert error(c, e64) < 1.5 * error(e, e64) + 1e-3


def counting(fn, calls):
    def call(*args):
        calls.append(1)
        return fn(*args)
    return call


@needs_compiler
def test_where_it_applies():
    bn = torch.nn.BatchNorm2d(4)
    y = torch.randn(2, 4, 4, 4, dtype=torch.bfloat16)
    assert fused.bn_pool_act_applies(y, bn)
    assert not fused.bn_pool_act_applies(torch.randn(2, 4, 5, 4, dtype=torch.bfloat16), bn)  # odd: ceil-mode pool
    assert not fused.bn_pool_act_applies(y.float(), bn)  # float32 measured no faster: eager ops
    with torch.no_grad():
        assert not fused.bn_pool_act_applies(y, bn)
    with FlopCounterMode(display=False):  # op-level counters see the eager ops
        assert not fused.bn_pool_act_applies(y, bn)
    assert not fused.bn_pool_act_applies(y, torch.nn.Identity())  # BatchNorm folded for embedding
    assert not fused.bn_pool_act_applies(y, torch.nn.BatchNorm2d(4).eval())


def test_a_run_that_builds_the_kernels_says_so_first(monkeypatch):
    cpu = torch.device("cpu")
    assert "first step builds compiled kernels" in speedups.first_step_notice("bf16", cpu)
    assert speedups.first_step_notice("fp32", cpu) is None  # float32 keeps the eager ops
    assert speedups.first_step_notice("bf16", torch.device("meta")) is None  # the kernels are the CPU's
    assert speedups.first_step_notice("bf16", cpu, compile_kernels=False) is None
    assert compile_kernels_enabled()
    monkeypatch.setenv("INFOMAX_COMPILE", "0")  # read by the training loop, which applies the speed-ups
    assert not compile_kernels_enabled()


def test_without_a_compiler_the_eager_ops_run_and_a_warning_says_so(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    fused.compiler_works.cache_clear()
    monkeypatch.setattr(torch, "compile", broken)
    enc = Encoder(ModelConfig(image_size=16, channels=32))
    try:
        with pytest.warns(UserWarning, match="cannot build kernels"):
            applied = speedups.apply(enc, precision="bf16", device=torch.device("cpu"))
        assert len(applied) == 1 and "forward convolution" in applied[0]  # the small-map gradient only
        assert {type(m) for m in enc.modules() if isinstance(m, ConvBN)} == {SmallMapConvBN}
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert not fused.compiler_works()  # warned once
    finally:
        fused.compiler_works.cache_clear()


@needs_compiler
def test_bf16_training_with_the_kernels_resumes_exactly(tmp_path, monkeypatch):
    # 8 steps straight == 4 steps, stop, resume, 4 steps, with the kernels in both (they run the
    # same reductions in the same order every time), and the loss falls
    from infomax.checkpoint import load_checkpoint
    from infomax.config import resolve
    from infomax.train.loop import train
    from tests.datasets import small_digits

    data = small_digits()
    calls = []
    monkeypatch.setattr(fused._BNPoolAct, "apply", counting(fused._BNPoolAct.apply, calls))

    def cfg(steps):
        return resolve("digits", {}, {"preset": "seed", "batch_size": 32, "max_steps": steps, "checkpoint_every": 4, "log_every": 1,
                                      "device": "cpu", "z_dim": 32, "precision": "bf16", "deterministic": True})

    straight = train(cfg(8), tmp_path / "a", data, progress=False)
    train(cfg(4), tmp_path / "b", data, progress=False)
    train(cfg(8), tmp_path / "b", data, resume=True, progress=False)
    assert len(calls) == 2 * 16  # two downsampling blocks, 8 + 4 + 4 steps
    wa, wb = load_checkpoint(tmp_path / "a").weights, load_checkpoint(tmp_path / "b").weights
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    with open(tmp_path / "a" / "log.csv") as f:
        local = [float(r["local"]) for r in csv.DictReader(f)]
    assert straight.step == 8 and local[-1] < local[0]
