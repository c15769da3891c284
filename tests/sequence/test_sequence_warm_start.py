"""warm_start=True: fit continues from the fitted weights (scikit-learn's meaning)."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit import SequenceClassifier, SequenceRegressor
from rnnkit.errors import UserError


def _data(n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 6, 2)).astype("float32")
    return X, X[:, :, 0].sum(1)


def test_warm_start_continues_from_the_fitted_weights() -> None:
    X, y = _data()
    reg = SequenceRegressor(cell="lstm", hidden_size=8, epochs=3, lr=1e-2, seed=0, verbose=False)
    reg.fit(X, y)
    before, first = reg.predict(X), reg.history_["loss"]
    # a learning rate too small to move the weights: the predictions stay where they were
    reg.set_params(warm_start=True, lr=1e-9, epochs=1).fit(X, y)
    np.testing.assert_allclose(reg.predict(X), before, atol=1e-5)
    assert reg.history_["loss"][0] < first[0]  # starts from the trained loss, not from scratch
    # and without warm_start the same fit starts from new random weights
    reg.set_params(warm_start=False).fit(X, y)
    assert np.abs(reg.predict(X) - before).max() > 1e-2


def test_warm_start_on_an_unfitted_estimator_fits_from_scratch() -> None:
    X, y = _data()
    cold = SequenceRegressor(hidden_size=4, epochs=1, seed=0, verbose=False).fit(X, y)
    warm = SequenceRegressor(hidden_size=4, epochs=1, seed=0, warm_start=True, verbose=False)
    np.testing.assert_array_equal(warm.fit(X, y).predict(X), cold.predict(X))


def test_warm_start_refuses_another_network() -> None:
    X, y = _data()
    reg = SequenceRegressor(hidden_size=4, epochs=1, seed=0, warm_start=True, verbose=False)
    reg.fit(X, y)
    with pytest.raises(UserError, match=r"but hidden_size 4 -> 5; set warm_start=False"):
        reg.set_params(hidden_size=5).fit(X, y)
    with pytest.raises(UserError, match=r"features per step 2 -> 3"):
        reg.set_params(hidden_size=4).fit(np.concatenate([X, X[:, :, :1]], 2), y)
    clf = SequenceClassifier(hidden_size=4, epochs=1, seed=0, warm_start=True, verbose=False)
    clf.fit(X, np.where(y > 0, "a", "b"))
    with pytest.raises(UserError, match=r"classes \['a', 'b'\] -> \['a', 'c'\]"):
        clf.fit(X, np.where(y > 0, "a", "c"))
    with pytest.raises(UserError, match="warm_start must be True or False, got 'yes'"):
        SequenceRegressor(warm_start="yes").fit(X, y)
