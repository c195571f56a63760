"""The DIM model: configuration, the encoder registry, and DIM (an encoder with its objective).

Names are imported on first use: the objective's critics live in this package and DIM holds the
objective, so importing them eagerly here would make `infomax.objective` and `infomax.model`
each wait on the other."""

_NAMES = {
    "DIM": "infomax.model.dim", "ModelConfig": "infomax.model.config", "Encoder": "infomax.model.encoder",
    "EncoderOutput": "infomax.model.encoder", "GaussianEncoder": "infomax.model.encoders",
    "build_encoder": "infomax.model.encoders",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name in _NAMES:
        import importlib

        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'infomax.model' has no attribute {name!r}")
