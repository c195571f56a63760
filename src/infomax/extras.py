"""Optional dependencies: the packages of an extra are imported where they are used, through
`require`, so that a missing one is reported as the extra to install instead of an ImportError.

The core install (`pip install infomax`) trains and embeds; the extras add the rest:

    index        faiss-cpu, pandas, pyarrow          `infomax index`, `infomax search`
    serve        the index's packages + fastapi, uvicorn, python-multipart
    eval         scikit-learn, matplotlib, pandas, pyarrow
                 `infomax eval|grid|plot|demo|study`, the embeddings folder's metadata.parquet,
                 the digits data set, the loss-curve PNG
    tensorboard  tensorboard                         TensorBoard scalars during training
    plot         umap-learn                          UMAP maps (t-SNE without it)
    shards       webdataset                          `infomax data shard`, `webdataset:` data specs
    all          every extra above
"""

from __future__ import annotations

import importlib
from types import ModuleType

from infomax.errors import InfomaxError

# pip name of an import name, where they differ
PIP_NAMES = {"faiss": "faiss-cpu", "sklearn": "scikit-learn", "umap": "umap-learn"}


def missing_message(module: str, extra: str, what: str) -> str:
    """The one sentence that names the missing package, the extra that brings it and the command."""
    package = PIP_NAMES.get(module.split(".")[0], module.split(".")[0])
    return f"{what} needs the '[{extra}]' extra ({package} is not installed): pip install 'infomax[{extra}]'"


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import `module` (e.g. "faiss", "matplotlib.pyplot") and return it; when it (or a package it
    needs) cannot be imported, raise InfomaxError naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise InfomaxError(missing_message(exc.name or module, extra, what)) from exc


def require_all(modules: tuple[str, ...], extra: str, what: str) -> None:
    """Check a command's packages before it starts work: the first missing one raises."""
    for module in modules:
        require(module, extra, what)


# The packages each command needs beyond the core, checked when the command starts.
INDEX = ("faiss", "pandas", "pyarrow")
SERVE = INDEX + ("fastapi", "uvicorn")
EVAL = ("sklearn", "matplotlib", "pandas", "pyarrow")
PARQUET = ("pandas", "pyarrow")
