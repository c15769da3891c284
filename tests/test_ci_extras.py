"""In CI every optional oracle is installed, so no test is skipped for want of one.

The tests of the optional features skip when their package is missing (a user
may install only ``rnnkit[dev]``'s core); CI must never skip them silently, so
this test fails there when one of them cannot be imported (the ``dev`` extra in
pyproject.toml lost it).
"""

from __future__ import annotations

import importlib
import os

import pytest

ORACLES = [
    "sklearn",  # SequenceRegressor/Classifier inside Pipeline, GridSearchCV
    "hypothesis",  # the parsers' fuzzing
    "onnx",
    "onnxruntime",  # ONNX export parity
    "onnxscript",
    "keras",  # Keras interchange, against real Keras 3
    "fastapi",  # rnnkit serve
    "httpx",
    "playwright",  # the browser tests
]


@pytest.mark.skipif(not os.environ.get("CI"), reason="checked in CI (CI=true)")
@pytest.mark.parametrize("module", ORACLES)
def test_every_oracle_is_installed_in_ci(module: str) -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    importlib.import_module(module)
