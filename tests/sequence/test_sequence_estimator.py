"""SequenceRegressor and SequenceClassifier: learning, lengths, save/load, errors, options."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnkit import NotFittedError, SequenceClassifier, SequenceRegressor, UserError
from rnnkit.nn import CELL_NAMES
from rnnkit.sequence import SequenceConfig, load_config


def noisy_sine(n: int = 100, steps: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Windows (n, steps, 1) of a noisy sine and the value after each window (n,)."""
    rng = np.random.default_rng(seed)
    series = np.sin(np.arange(n + steps) * 0.3) + 0.1 * rng.standard_normal(n + steps)
    X = np.stack([series[i : i + steps] for i in range(n)])[:, :, None]
    return X.astype(np.float32), series[steps:].astype(np.float32)


def small(n: int = 24, t: int = 5, d: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, t, d)).astype(np.float32)
    return X, X[:, :, 0].sum(axis=1)


def quick(cls=SequenceRegressor, **kw):
    return cls(**{"hidden_size": 6, "epochs": 2, "seed": 0, "verbose": False, **kw})


# -- the Keras example ---------------------------------------------------------


def test_keras_example_learns() -> None:
    """Sequential([SimpleRNN(50, input_shape=(10, 1)), Dense(1)]), adam, mse, 10 epochs."""
    X, y = noisy_sine(150)
    X_train, y_train, X_test, y_test = X[:100], y[:100], X[100:], y[100:]
    model = SequenceRegressor(cell="rnn", hidden_size=50, epochs=10, seed=0, verbose=False)
    assert model.fit(X_train, y_train) is model
    loss = model.history_["loss"]
    assert len(loss) == 10 and loss[-1] < 0.5 * loss[0]
    assert "val_loss" not in model.history_
    assert model.n_features_in_ == 1
    pred = model.predict(X_test)
    assert pred.shape == (50,) and pred.dtype == np.float64
    # better than predicting the mean, on rows it did not see
    assert np.mean((pred - y_test) ** 2) < 0.5 * np.var(y_test)
    assert model.score(X_test, y_test) > 0.5
    assert model.metrics_["measured_on"].startswith("the training data")


def test_classifier_learns_string_labels() -> None:
    X, y = small(96, t=6, d=1, seed=1)
    labels = np.where(y > 0, "up", "down")
    clf = SequenceClassifier(cell="gru", hidden_size=16, epochs=15, lr=1e-2, seed=0, verbose=False)
    clf.fit(X, labels)
    assert list(clf.classes_) == ["down", "up"]
    proba = clf.predict_proba(X)
    assert proba.shape == (96, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert set(clf.predict(X)) <= {"down", "up"}
    assert clf.score(X, labels) > 0.8
    metrics = clf.evaluate(X, labels)
    assert set(metrics) == {"accuracy", "log_loss", "n"} and metrics["n"] == 96
    json.dumps(metrics)


@pytest.mark.parametrize("cell", CELL_NAMES)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_every_cell_trains_and_masks_padding(cell: str, bidirectional: bool) -> None:
    """Padding never changes a prediction: a padded row predicts as the row alone."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 7, 3)).astype(np.float32)
    lengths = rng.integers(1, 8, size=12)
    lengths[0] = 7
    est = quick(cell=cell, bidirectional=bidirectional, num_layers=2, dropout=0.1, epochs=1)
    est.fit(X, X[:, 0, 0], lengths=lengths)
    pred = est.predict(X, lengths=lengths)
    other = X.copy()
    for i, n in enumerate(lengths):
        other[i, n:] = np.nan if i % 2 else 1e3  # any padding, NaN included
    np.testing.assert_array_equal(est.predict(other, lengths=lengths), pred)
    alone = np.array([est.predict(X[i : i + 1, :n])[0] for i, n in enumerate(lengths)])
    np.testing.assert_allclose(pred, alone, atol=1e-5)
    assert not np.allclose(est.predict(X), pred)  # without lengths the padding is read


# -- save / load ----------------------------------------------------------------


def test_save_load_regressor_round_trip(tmp_path: Path) -> None:
    X, y = small()
    Y = np.stack([y, -y], axis=1)  # (N, 2)
    est = quick(cell="lstm", bidirectional=True, lr=0.01, seed=5).fit(X, Y)
    folder = est.save(tmp_path / "model")
    files = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "shapes.json", "manifest.json"} <= files
    back = SequenceRegressor.load(folder, verbose=False)
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    assert back.predict(X).shape == (len(X), 2)
    assert back.get_params() == est.get_params()
    assert back.n_features_in_ == 2 and back.metrics_ == json.loads(json.dumps(est.metrics_))
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["model"]["cell"] == "lstm" and cfg["train"]["seed"] == 5


def test_save_load_classifier_round_trip(tmp_path: Path) -> None:
    X, y = small()
    for labels in (np.where(y > 0, "b", "a"), (y > 0).astype(int) * 7, y > 0):
        est = quick(SequenceClassifier, cell="minlstm").fit(X, labels)
        back = SequenceClassifier.load(est.save(tmp_path / str(labels.dtype)))
        np.testing.assert_array_equal(back.predict(X), est.predict(X))
        np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
        assert back.classes_.dtype == est.classes_.dtype
        np.testing.assert_array_equal(back.classes_, est.classes_)


def test_column_vector_targets_keep_their_shape(tmp_path: Path) -> None:
    X, y = small()
    est = quick().fit(X, y[:, None])
    assert est.predict(X).shape == (len(X), 1)
    assert SequenceRegressor.load(est.save(tmp_path / "m")).predict(X).shape == (len(X), 1)


def test_load_refuses_the_other_estimator(tmp_path: Path) -> None:
    X, y = small()
    folder = quick().fit(X, y).save(tmp_path / "reg")
    with pytest.raises(UserError, match="holds a SequenceRegressor"):
        SequenceClassifier.load(folder)


def test_config_tree() -> None:
    cfg = load_config(overrides={"model.cell": "gru", "train.epochs": 3})
    assert isinstance(cfg, SequenceConfig) and cfg.model.cell == "gru"
    est = SequenceRegressor._from_config(cfg)
    assert est.cell == "gru" and est.epochs == 3 and est.hidden_size == 50


# -- not fitted, bad input ----------------------------------------------------------


def test_unfitted_use_raises_not_fitted(tmp_path: Path) -> None:
    X, y = small()
    for est in (SequenceRegressor(), SequenceClassifier()):
        calls = [est.predict, est.score, est.evaluate, est.save]
        calls += [est.predict_proba] if isinstance(est, SequenceClassifier) else []
        for call in calls:
            args = (X,) if call.__name__.startswith("predict") else (X, y)
            args = (tmp_path / "m",) if call.__name__ == "save" else args
            with pytest.raises(NotFittedError, match="not fitted yet"):
                call(*args)
    assert issubclass(NotFittedError, AttributeError) and issubclass(NotFittedError, ValueError)


@pytest.mark.parametrize(
    ("X", "y", "kw", "match"),
    [
        (np.zeros(10), np.zeros(10), {}, r"1-D array of shape \(10,\)\. Reshape your data"),
        (np.zeros((4, 3, 2, 1)), np.zeros(4), {}, r"\(N, T, D\).*got shape \(4, 3, 2, 1\)"),
        (np.zeros((0, 3, 1)), np.zeros(0), {}, r"0 sequences \(shape \(0, 3, 1\)\)"),
        (np.zeros((4, 3, 1)), np.zeros(5), {}, "y has 5 rows .* X has 4 sequences"),
        (np.zeros((4, 3, 1)), np.zeros((4, 2, 2)), {}, r"y must have shape \(N,\) or \(N, K\)"),
        (np.zeros((4, 3, 1)), None, {}, "requires y to be passed"),
        (np.full((4, 3, 1), np.nan), np.zeros(4), {}, r"NaN or infinity \(X\[0, 0, 0\]"),
        (np.zeros((4, 3, 1)), np.zeros(4), {"lengths": [3, 3]}, r"lengths must have shape \(4,\)"),
        (np.zeros((4, 3, 1)), np.zeros(4), {"lengths": [3, 3, 0, 3]}, r"lengths\[2\]=0"),
        (np.zeros((4, 3, 1)), np.zeros(4), {"lengths": [3.0] * 4}, "lengths must hold integers"),
        (np.zeros((4, 3), complex), np.zeros(4), {}, "Complex data not supported"),
        (np.array([["a", "b"]] * 4), np.zeros(4), {}, "X must hold numbers"),
    ],
)
def test_bad_input_is_one_line_user_error(X, y, kw, match) -> None:
    with pytest.raises(UserError, match=match) as info:
        quick().fit(X, y, **kw)
    assert "\n" not in str(info.value)


def test_predict_checks_the_features_per_step() -> None:
    X, y = small(d=2)
    est = quick().fit(X, y)
    with pytest.raises(UserError, match=r"D=3 features .* fitted with D=2"):
        est.predict(np.zeros((2, 4, 3)))
    assert est.predict(np.zeros((2, 9, 2))).shape == (2,)  # any number of steps


def test_classifier_label_errors() -> None:
    X, y = small()
    with pytest.raises(UserError, match="Unknown label type: y holds continuous"):
        quick(SequenceClassifier).fit(X, y)
    with pytest.raises(UserError, match="only one class"):
        quick(SequenceClassifier).fit(X, np.ones(len(X), int))
    est = quick(SequenceClassifier).fit(X, (y > 0).astype(int))
    with pytest.raises(UserError, match="label 5, not seen in fit"):
        est.evaluate(X, np.full(len(X), 5))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"cell": "transformer"}, "cell must be one of rnn, lstm, gru, mingru, minlstm"),
        ({"hidden_size": 0}, "hidden_size must be an int >= 1, got 0"),
        ({"hidden_size": 2.5}, "hidden_size must be an int >= 1, got 2.5"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        ({"loss": "cross_entropy"}, "loss must be one of mse, mae, huber"),
        ({"optimizer": "rmsprop"}, "optimizer must be one of adam, adamw, sgd"),
        ({"validation_split": 0.99}, "leaves 0 of 24 rows for training"),
        ({"early_stopping_patience": 2}, "early_stopping_patience needs validation data"),
        ({"device": "tpu"}, "unknown device 'tpu'"),
        ({"threads": 0}, "threads must be a positive integer"),
    ],
)
def test_bad_parameters_fail_in_fit(params: dict, match: str) -> None:
    X, y = small()
    est = quick(**params)  # construction stores them unchecked, as scikit-learn
    with pytest.raises(UserError, match=match):
        est.fit(X, y)


def test_set_params_rejects_unknown_names() -> None:
    with pytest.raises(UserError, match="no parameter 'hiden_size'"):
        SequenceRegressor().set_params(hiden_size=3)


# -- options ---------------------------------------------------------------------------


def test_params_repr_and_fit_overrides(tmp_path: Path) -> None:
    est = SequenceRegressor(hidden_size=8, seed=1, verbose=False)
    assert repr(est) == "SequenceRegressor(hidden_size=8, seed=1, verbose=False)"
    assert est.set_params(lr=0.01) is est and est.get_params()["lr"] == 0.01
    X, y = small()
    est.fit(X, y, epochs=3, batch_size=5)
    assert est.epochs == 10 and est.batch_size == 32  # the parameters are unchanged
    assert len(est.history_["loss"]) == 3 and est.result_.step == 3 * 5
    back = SequenceRegressor.load(est.save(tmp_path / "m"), verbose=False)
    assert back.get_params() == est.get_params()  # device/threads/verbose: from load()


def test_validation_history_and_early_stopping() -> None:
    X, y = small(40, seed=2)
    est = quick(hidden_size=32, epochs=60, lr=3e-2, validation_split=0.25)
    est.set_params(early_stopping_patience=2).fit(X, np.random.default_rng(0).normal(size=40))
    hist = est.history_
    assert len(hist["loss"]) == len(hist["val_loss"]) < 60
    assert est.result_.stop_reason == "early_stopping"
    assert est.metrics_["measured_on"] == "the validation data (10 sequences)"
    Xv, yv = small(8, seed=3)
    est = quick(epochs=3).fit(X, X[:, :, 0].sum(axis=1), validation_data=(Xv, yv, [5] * 8))
    assert len(est.history_["val_loss"]) == 3


def test_seed_makes_fit_deterministic_and_keeps_global_rng() -> None:
    X, y = small()
    random.seed(11)
    np.random.seed(11)
    torch.manual_seed(11)
    a = quick(dropout=0.3, num_layers=2, cell="gru").fit(X, y)
    after = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(11)
    np.random.seed(11)
    torch.manual_seed(11)
    assert after == (random.random(), np.random.rand(), torch.rand(1).item())
    b = quick(dropout=0.3, num_layers=2, cell="gru").fit(X, y)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert a.history_ == b.history_
    c = quick(dropout=0.3, num_layers=2, cell="gru", seed=1).fit(X, y)
    assert not np.array_equal(a.predict(X), c.predict(X))


def test_torch_tensors_and_two_d_input() -> None:
    X, y = small(d=1)
    a = quick().fit(X, y)
    b = quick().fit(torch.from_numpy(X), torch.from_numpy(y))
    np.testing.assert_array_equal(a.predict(X), b.predict(torch.from_numpy(X)))
    c = quick().fit(X[:, :, 0], y)  # (N, T) is read as (N, T, 1)
    np.testing.assert_array_equal(a.predict(X), c.predict(X[:, :, 0]))


@pytest.mark.parametrize("loss", ["mae", "huber"])
def test_other_regression_losses(loss: str) -> None:
    X, y = small()
    est = quick(loss=loss, epochs=4, lr=1e-2).fit(X, y)
    assert est.history_["loss"][-1] < est.history_["loss"][0]
    assert set(est.evaluate(X, y)) == {"mse", "rmse", "mae", "r2", "n"}


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_other_optimizers(optimizer: str) -> None:
    X, y = small()
    est = quick(optimizer=optimizer, weight_decay=1e-3, lr=1e-2, grad_clip=0.0, threads=1)
    assert np.isfinite(est.fit(X, y).predict(X)).all()


def test_verbose_false_is_silent_and_true_reports(capfd: pytest.CaptureFixture[str]) -> None:
    X, y = small()
    quick(epochs=2, validation_split=0.25, early_stopping_patience=1).fit(X, y)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    quick(epochs=2, verbose=True).fit(X, y)
    out, err = capfd.readouterr()
    assert "loss" in out + err
