"""SequenceRegressor and SequenceClassifier inside scikit-learn (a test dependency only).

Pipeline, GridSearchCV, cross_val_score and clone, then scikit-learn's own
estimator checks (``parametrize_with_checks``) on 2-D X, which the estimators
read as (N, T) sequences of one feature. Checks skipped, and why:

- ``check_n_features_in``, ``check_n_features_in_after_fitting``: they expect
  ``n_features_in_ == X.shape[1]`` and an error when predicting with fewer
  columns. For a sequence model ``X.shape[1]`` is T, the number of steps;
  ``n_features_in_`` is D (features per step) and any T is accepted later.
- ``check_classifiers_train``: it expects ``predict(X.T)`` to fail because
  the column count changed; for a sequence model X.T (2 rows of 300 steps) is
  a valid input. Learning is tested here instead (test_sequence_estimator.py).
- ``check_estimators_unfitted``: it wants ``sklearn.exceptions.NotFittedError``
  itself; rnnkit raises ``rnnkit.NotFittedError`` (a ValueError and an
  AttributeError, as scikit-learn's), scikit-learn not being a run-time
  dependency. test_sequence_estimator.py checks it.
- ``check_estimators_empty_data_messages``: it wants scikit-learn's wording
  ("0 feature(s) (shape=(12, 0)) while a minimum of 1 is required"); X of
  shape (12, 0) does raise a ValueError, which names the shape in rnnkit's words.
- ``check_supervised_y_2d`` (classifier): labels of shape (N, 1) are accepted
  and ravelled, but without scikit-learn's ``DataConversionWarning`` class.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import FunctionTransformer  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from rnnkit import SequenceClassifier, SequenceRegressor  # noqa: E402

SKIPPED = {
    "check_n_features_in": "n_features_in_ is D (features per step), not X.shape[1] (= T)",
    "check_n_features_in_after_fitting": "X.shape[1] is T, the steps; any T is valid later",
    "check_classifiers_train": "predict(X.T) is a valid input (2 sequences of 300 steps)",
    "check_estimators_unfitted": "rnnkit.NotFittedError, not sklearn's class (no sklearn dep)",
    "check_estimators_empty_data_messages": "the ValueError names the shape in rnnkit's words",
    "check_supervised_y_2d": "(N, 1) labels are ravelled without sklearn's DataConversionWarning",
}
# Small and fast, yet learning enough for check_regressors_train (R^2 > 0.5).
CHECKED = [
    SequenceRegressor(hidden_size=16, epochs=12, lr=1e-2, seed=0, verbose=False),
    SequenceClassifier(hidden_size=16, epochs=12, lr=1e-2, seed=0, verbose=False),
]


def _check_name(check) -> str:
    return getattr(check, "func", check).__name__


with warnings.catch_warnings():  # "does not inherit from BaseEstimator": on purpose
    warnings.filterwarnings("ignore", "Estimator Sequence", UserWarning)
    _EVERY_CHECK = parametrize_with_checks(CHECKED)


@_EVERY_CHECK
def test_sklearn_estimator_checks(estimator, check) -> None:
    name = _check_name(check)
    if name == "check_supervised_y_2d" and isinstance(estimator, SequenceRegressor):
        pass  # the regressor supports (N, K) targets: the check applies
    elif name in SKIPPED:
        pytest.skip(SKIPPED[name])
    check(estimator)


def _data(n: int = 48, t: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, t, 2)).astype(np.float32)
    y = X[:, :, 0].sum(axis=1)  # a sum over time: needs the recurrence
    labels = np.where(y > 0, "pos", "neg")
    return X, y, labels


def _halve(X: np.ndarray) -> np.ndarray:
    return X / 2


def test_pipeline_with_a_function_transformer() -> None:
    X, y, _ = _data()
    pipe = Pipeline(
        [
            ("scale", FunctionTransformer(_halve)),
            ("rnn", SequenceRegressor(hidden_size=8, epochs=3, seed=0, verbose=False)),
        ]
    )
    pipe.fit(X, y)
    assert pipe.predict(X).shape == (len(X),)
    assert np.isfinite(pipe.score(X, y))
    direct = SequenceRegressor(hidden_size=8, epochs=3, seed=0, verbose=False).fit(X / 2, y)
    np.testing.assert_array_equal(pipe.predict(X), direct.predict(X / 2))


def test_pipeline_routes_fit_arguments() -> None:
    X, y, _ = _data()
    lengths = np.full(len(X), X.shape[1])
    pipe = Pipeline([("rnn", SequenceRegressor(hidden_size=4, epochs=3, seed=0, verbose=False))])
    pipe.fit(X, y, rnn__lengths=lengths, rnn__epochs=2)
    assert len(pipe.named_steps["rnn"].history_["loss"]) == 2


def test_grid_search() -> None:
    X, _, labels = _data()
    grid = GridSearchCV(
        SequenceClassifier(epochs=2, seed=0, verbose=False),
        {"hidden_size": [4, 8], "lr": [1e-2, 3e-2]},
        cv=2,
    )
    grid.fit(X, labels)
    assert set(grid.best_params_) == {"hidden_size", "lr"}
    assert len(grid.cv_results_["mean_test_score"]) == 4
    assert set(grid.predict(X)) <= {"neg", "pos"}
    assert grid.best_estimator_.hidden_size == grid.best_params_["hidden_size"]


def test_cross_val_score() -> None:
    X, y, labels = _data()
    reg = SequenceRegressor(hidden_size=8, epochs=2, seed=0, verbose=False)
    clf = SequenceClassifier(hidden_size=8, epochs=2, seed=0, verbose=False)
    r2 = cross_val_score(reg, X, y, cv=2)
    acc = cross_val_score(clf, X, labels, cv=2)
    assert r2.shape == (2,) and np.isfinite(r2).all()
    assert acc.shape == (2,) and ((acc >= 0) & (acc <= 1)).all()


def test_clone_round_trip() -> None:
    X, y, _ = _data()
    est = SequenceRegressor(cell="gru", hidden_size=7, lr=0.02, epochs=2, seed=3, verbose=False)
    copy = clone(est)
    assert copy is not est
    assert copy.get_params() == est.get_params()
    est.fit(X, y)
    again = clone(est)
    assert again.get_params() == est.get_params()
    assert not hasattr(again, "model_")
    assert again.__sklearn_is_fitted__() is False and est.__sklearn_is_fitted__() is True
    # same seed, same parameters: the clone trains to the same model
    np.testing.assert_array_equal(again.fit(X, y).predict(X), est.predict(X))
