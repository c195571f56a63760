import numpy as np
import torch

from infomax.model.config import ModelConfig
from infomax.model.encoder import Encoder
from infomax.train.batches import BatchSource
from infomax.train.recalibrate import recalibrate_batchnorm


def _source(n=24, size=16, seed=0):
    images = np.random.default_rng(seed).integers(0, 256, (n, 3, size, size), dtype=np.uint8)
    return BatchSource(images, "center", torch.device("cpu"), channels_last=False)


def _pre_bn_outputs(encoder, x):
    """Every ConvBN's input to its BatchNorm (the convolution's output), in float64."""
    seen = []
    hooks = [block.conv.register_forward_hook(lambda m, i, o: seen.append(o.double()))
             for block in [*encoder.down, *encoder.head]]
    encoder.train()(x)
    for h in hooks:
        h.remove()
    return seen


def _batches(source, index, size):
    return (source.batch(index[s : s + size]) for s in range(0, len(index), size))


def test_one_batch_gives_the_mean_and_unbiased_variance_of_the_activations():
    torch.manual_seed(0)
    encoder, source = Encoder(ModelConfig(image_size=16)).double(), _source()
    index = torch.arange(24)
    x = source.batch(index).double()
    want = _pre_bn_outputs(encoder, x)
    for block in [*encoder.down, *encoder.head]:  # stale statistics to overwrite
        block.bn.running_mean.fill_(5.0)
        block.bn.running_var.fill_(7.0)
    weights = {k: v.clone() for k, v in encoder.state_dict().items() if "running" not in k and "tracked" not in k}
    source.batch = lambda i: x[i]  # feed the float64 batch
    recalibrate_batchnorm(encoder.eval(), _batches(source, index, 24))
    for block, y in zip([*encoder.down, *encoder.head], want):
        torch.testing.assert_close(block.bn.running_mean, y.mean((0, 2, 3)), rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(block.bn.running_var, y.var((0, 2, 3), unbiased=True), rtol=1e-10, atol=1e-12)
        assert block.bn.momentum == 0.01  # restored
    assert not encoder.training  # mode restored
    for k, v in encoder.state_dict().items():
        if k in weights:
            assert torch.equal(v, weights[k]), k  # no weight changes


def test_several_batches_average_the_per_batch_statistics():
    torch.manual_seed(1)
    encoder, source = Encoder(ModelConfig(image_size=16)), _source(n=20, seed=1)
    index = torch.arange(20)
    outs = [_pre_bn_outputs(encoder, source.batch(index[s : s + 8]))[0] for s in (0, 8, 16)]  # batches 8, 8, 4
    recalibrate_batchnorm(encoder, _batches(source, index, 8))
    bn = encoder.down[0].bn
    torch.testing.assert_close(bn.running_mean.double(), sum(o.mean((0, 2, 3)) for o in outs) / 3, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(bn.running_var.double(), sum(o.var((0, 2, 3)) for o in outs) / 3, rtol=1e-5, atol=1e-6)


def test_training_ends_with_recalibrated_statistics(tmp_path):
    from infomax.model.dim import DIM
    from infomax.objective.config import ObjectiveConfig
    from infomax.checkpoint import load_checkpoint
    from infomax.config import resolve
    from infomax.train.loop import train
    from tests.datasets import small_digits

    data = small_digits()
    cfg = resolve("digits", {}, {"preset": "seed", "batch_size": 32, "max_steps": 3, "device": "cpu", "z_dim": 32, "bn_recalibrate": 100})
    train(cfg, tmp_path, data, progress=False)
    ckpt = load_checkpoint(tmp_path)
    model = DIM(ModelConfig.from_dict(ckpt.config["model"]), ObjectiveConfig.from_dict(ckpt.config["objective"]))
    model.load_state_dict(ckpt.weights)
    split = data.split(data.train_split)
    source = BatchSource(split.images, data.normalization, torch.device("cpu"), channels_last=True)
    index = torch.randperm(len(split), generator=torch.Generator().manual_seed(cfg.run.seed))[:100]
    recalibrate_batchnorm(model.encoder, _batches(source, index, 256))
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, ckpt.weights[k], rtol=1e-4, atol=1e-5)  # float32, threaded sums
    assert not torch.equal(ckpt.weights["encoder.down.0.bn.running_var"], torch.ones_like(model.encoder.down[0].bn.running_var))
