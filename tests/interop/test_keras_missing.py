"""Without Keras, every Keras converter stops with one line naming the extra to install.

This file does not need Keras: ``sys.modules["keras"] = None`` makes ``import keras``
fail as it does where Keras is not installed.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from rnnkit import SequenceRegressor
from rnnkit.errors import UserError
from rnnkit.interop.keras import from_keras, to_keras
from rnnkit.nn import LSTM

MESSAGE = r'^Keras 3 is not installed; install it with: pip install "rnnkit\[keras\]"$'


@pytest.fixture
def no_keras(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "keras", None)


def test_from_keras_and_to_keras_name_the_extra(no_keras: None) -> None:
    with pytest.raises(UserError, match=MESSAGE):
        from_keras("model.keras")
    with pytest.raises(UserError, match=MESSAGE):
        to_keras(LSTM(2, 3))


def test_the_estimators_name_the_extra(no_keras: None) -> None:
    with pytest.raises(UserError, match=MESSAGE):
        SequenceRegressor.from_keras("model.keras")
    X = np.zeros((8, 3, 1), dtype="float32")
    reg = SequenceRegressor(hidden_size=2, epochs=1, seed=0, verbose=False).fit(X, X[:, 0, 0])
    with pytest.raises(UserError, match=MESSAGE):
        reg.to_keras()
