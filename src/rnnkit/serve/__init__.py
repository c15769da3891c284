"""``rnnkit serve``: one web server (JSON APIs and a page) for any mix of trained models.

::

    from rnnkit.serve import create_app, load_models

    app = create_app(load_models(["runs/sst2", "runs/shakespeare"]))  # a FastAPI app
    # uvicorn.run(app, host="127.0.0.1", port=8000)

Needs the ``serve`` extra (``pip install "rnnkit[serve]"``: FastAPI, uvicorn,
python-multipart). Imported lazily so ``rnnkit serve --help`` answers without it.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Limits", "ServedModel", "WorkerPool", "create_app", "detect_app", "load_models"]

_LAZY = {
    "Limits": "rnnkit.serve.models",
    "ServedModel": "rnnkit.serve.models",
    "detect_app": "rnnkit.serve.models",
    "load_models": "rnnkit.serve.models",
    "WorkerPool": "rnnkit.serve.pool",
    "create_app": "rnnkit.serve.app",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rnnkit.serve' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
