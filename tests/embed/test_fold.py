import torch

from infomax.embed.embedder import fold_batchnorm
from infomax.model.config import ModelConfig
from infomax.model.encoder import Encoder


def _eval_encoder_with_running_stats(cfg: ModelConfig) -> Encoder:
    torch.manual_seed(0)
    encoder = Encoder(cfg).double()
    for module in encoder.modules():
        if isinstance(module, torch.nn.BatchNorm2d):  # statistics and affine far from the identity
            c = module.num_features
            module.running_mean.uniform_(-2, 2)
            module.running_var.uniform_(0.1, 4)
            module.weight.data.uniform_(-2, 2)  # negative γ too: BN must stay before the max-pool
            module.bias.data.uniform_(-1, 1)
            assert module.running_mean.shape == (c,)
    return encoder.eval()


def test_folded_encoder_computes_the_same_function():
    for cfg in (ModelConfig(), ModelConfig(image_size=28, in_channels=1, z_dim=16)):
        encoder = _eval_encoder_with_running_stats(cfg)
        folded = fold_batchnorm(encoder)
        x = torch.randn(7, cfg.in_channels, cfg.image_size, cfg.image_size, dtype=torch.float64)
        with torch.no_grad():
            want, got = encoder(x), folded(x)
        for name in ("mu", "logvar", "local", "pooled"):
            torch.testing.assert_close(getattr(got, name), getattr(want, name), rtol=1e-10, atol=1e-10)
        # the original is untouched (training can go on with it)
        assert all(isinstance(b.bn, torch.nn.BatchNorm2d) for b in encoder.down)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
