"""The DIM model: configuration, encoder, critics and their initialization."""

from infomax.model.config import ModelConfig
from infomax.model.dim import DIM
from infomax.model.encoder import Encoder, EncoderOutput, reparameterize

__all__ = ["DIM", "Encoder", "EncoderOutput", "ModelConfig", "reparameterize"]
