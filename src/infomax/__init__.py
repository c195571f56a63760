"""infomax: image features learned by maximizing mutual information (Deep InfoMax with a KL prior).

    import infomax
    data = infomax.load_data("cifar10:PATH")             # or uint8 arrays, PIL images, a torch Dataset
    run = infomax.fit(data, minutes=10, out="runs/c10")  # preset "recommended"
    z = run.model.embed(images)                          # N×D float32
    model = infomax.load("runs/c10")
    index = infomax.build_index(z); scores, rows = index.search(z[:3], k=10)

The objective works with any encoder: infomax.DIMLoss (features in, loss and terms out).
"""

__version__ = "0.1.0"

# name -> module; imported on first use, so `import infomax` stays light
_API = {
    "load_data": "infomax.api", "fit": "infomax.api", "load": "infomax.api", "build_index": "infomax.api",
    "Model": "infomax.api", "Run": "infomax.api", "Index": "infomax.api",
    "Config": "infomax.config", "DIMLoss": "infomax.objective.loss", "ObjectiveConfig": "infomax.objective.config",
    "ModelConfig": "infomax.model.config", "GaussianEncoder": "infomax.model.encoders",
    "InfomaxError": "infomax.errors",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'infomax' has no attribute {name!r}")
