"""speedups.apply: the same parameters, state_dict and function as the plain model, computed by
the fast paths; and nothing applied where nothing helps."""

import os
import shutil

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from infomax import speedups
from infomax.errors import InfomaxError
from infomax.model.config import ModelConfig
from infomax.model.dim import DIM
from infomax.model.encoder import ConvBN, Encoder
from infomax.speedups import convbn
from infomax.speedups.convbn import CompiledConvBN, SmallMapConvBN

CPU = torch.device("cpu")
CFG = ModelConfig(image_size=16, channels=32)  # 16 → 8 → 4: two downsampling blocks, two head convs on 4×4
needs_compiler = pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None, reason="no C++ compiler")


def block_types(model: torch.nn.Module) -> set[type]:
    return {type(m) for m in model.modules() if isinstance(m, ConvBN)}


def test_state_dict_is_unchanged_and_remove_restores_the_plain_blocks():
    torch.manual_seed(0)
    model = DIM(CFG)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    applied = speedups.apply(model, precision="bf16", device=CPU, compile_kernels=False)
    assert applied == ["4 ConvBN blocks: weight gradient on maps of at most 4×4 as a forward convolution"]
    assert block_types(model) == {SmallMapConvBN}
    after = model.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(after[k], before[k]) for k in before)
    DIM(CFG).load_state_dict(after)  # a checkpoint written with the speed-ups loads into a plain model
    assert speedups.remove(model) == 4 and block_types(model) == {ConvBN}
    assert speedups.remove(model) == 0


def test_nothing_applies_where_nothing_helps():
    model = DIM(CFG)
    assert speedups.apply(model, precision="fp32", device=CPU) == []  # oneDNN's fp32 kernels are as fast
    assert speedups.apply(model, precision="bf16", device=torch.device("cuda")) == []  # CPU tricks only
    assert block_types(model) == {ConvBN}
    speedups.apply(model, precision="bf16", device=CPU, compile_kernels=False)
    speedups.apply(model, precision="fp32", device=CPU)  # applying again replaces the earlier choice
    assert block_types(model) == {ConvBN}


def test_an_unknown_precision_is_refused():
    with pytest.raises(InfomaxError, match="unknown precision 'fp16'; use one of fp32, bf16"):
        speedups.apply(DIM(CFG), precision="fp16", device=CPU)


def counting(module, name: str, calls: list, monkeypatch) -> None:
    fn = getattr(module, name)

    def call(*args):
        calls.append(name)
        return fn(*args)

    monkeypatch.setattr(module, name, call)


def encoder_step(kernels: bool | None, dtype: torch.dtype) -> list[torch.Tensor]:
    """Outputs, parameter gradients and running variances of one training step of the same
    encoder: plain (kernels None) or with the speed-ups, under bf16 autocast unless float64."""
    torch.manual_seed(1)
    enc = Encoder(CFG).to(dtype=dtype, memory_format=torch.channels_last)
    if kernels is not None:
        speedups.apply(enc, precision="bf16", device=CPU, compile_kernels=kernels)
    x = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(0)).to(dtype)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype != torch.float64):
        out = enc(x.contiguous(memory_format=torch.channels_last))
    (out.mu.double().square().sum() + out.logvar.double().sum() + out.local.double().sum()).backward()
    return [out.mu, out.logvar, out.local, *(p.grad for p in enc.parameters()),
            *(m.bn.running_var for m in enc.modules() if isinstance(m, ConvBN))]


@pytest.mark.parametrize("kernels", [False, pytest.param(True, marks=needs_compiler)])
def test_same_outputs_and_gradients_as_the_plain_model(kernels, monkeypatch):
    calls = []
    counting(convbn, "conv3x3_swapped_weight_grad", calls, monkeypatch)
    counting(convbn, "bn_pool_act", calls, monkeypatch)
    exact = encoder_step(None, torch.float64)
    plain = encoder_step(None, torch.float32)
    assert calls == []
    fast = encoder_step(kernels, torch.float32)
    assert calls.count("conv3x3_swapped_weight_grad") == 2  # the two head convolutions on 4×4 maps
    assert calls.count("bn_pool_act") == (2 if kernels else 0)  # the two downsampling blocks

    def error(got, want):
        return ((got.double() - want.double()).norm() / want.double().norm()).item()

    for e64, p, f in zip(exact, plain, fast):
        assert error(f, p) < error(p, e64) + 1e-2  # apart by no more than bf16's own error
        assert error(f, e64) < 1.5 * error(p, e64) + 1e-3  # no further from float64 than the plain step
    if not kernels:  # the swapped weight gradient leaves the forward pass bit for bit
        for p, f in zip(plain[:3], fast[:3]):
            assert torch.equal(p, f)


@needs_compiler
def test_op_counters_see_the_same_flops_with_the_speed_ups(monkeypatch):
    """Under a dispatch mode (FlopCounterMode) the fast blocks run the eager ops (torch.compile
    would skip the kernels there and after), so counting FLOPs gives the plain model's total."""
    x = torch.randn(8, 3, 16, 16).contiguous(memory_format=torch.channels_last)

    def flops(enc) -> int:
        with FlopCounterMode(display=False) as counter, torch.autocast("cpu", dtype=torch.bfloat16):
            enc(x).mu.float().sum().backward()
        return counter.get_total_flops()

    enc = Encoder(CFG).to(memory_format=torch.channels_last)
    plain = flops(enc)
    assert speedups.apply(enc, precision="bf16", device=CPU) and block_types(enc) == {CompiledConvBN}
    assert flops(enc) == plain > 0
    calls = []
    counting(convbn, "bn_pool_act", calls, monkeypatch)
    flops(enc)
    assert calls == []
