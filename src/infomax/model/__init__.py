"""The DIM model: configuration, the encoder registry, and DIM (an encoder with its objective)."""

from infomax.model.config import ModelConfig
from infomax.model.dim import DIM
from infomax.model.encoder import Encoder, EncoderOutput
from infomax.model.encoders import GaussianEncoder, build_encoder

__all__ = ["DIM", "Encoder", "EncoderOutput", "GaussianEncoder", "ModelConfig", "build_encoder"]
