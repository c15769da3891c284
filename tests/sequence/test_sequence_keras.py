"""The seed's Keras example, trained in real Keras 3 (torch backend), saved to a .keras file,
loaded into rnnkit (SequenceRegressor.from_keras and rnnkit.nn modules) with the same
predictions, trained on in rnnkit (warm start), and rnnkit -> Keras with the same predictions.
"""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "torch"  # before Keras is imported: no TensorFlow needed

from pathlib import Path

import numpy as np
import pytest
import torch

keras = pytest.importorskip("keras")

from rnnkit import SequenceClassifier, SequenceRegressor  # noqa: E402
from rnnkit.errors import UserError  # noqa: E402
from rnnkit.interop.keras import from_keras, to_keras  # noqa: E402
from rnnkit.nn import RNN  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras' own notes
TOL = 1e-5


def _data() -> tuple[np.ndarray, np.ndarray]:
    """The seed's data: 100 windows of 10 steps of a noisy sine, and the next value."""
    rng = np.random.default_rng(0)
    series = np.sin(np.arange(110) * 0.3) + 0.1 * rng.standard_normal(110)
    X = np.stack([series[i : i + 10] for i in range(100)])[:, :, None]  # (100, 10, 1)
    return X.astype("float32"), series[10:].astype("float32")


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sequential([SimpleRNN(50, input_shape=(10, 1)), Dense(1)]), adam/mse, 5 epochs."""
    X, y = _data()
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input(shape=(10, 1)), keras.layers.SimpleRNN(50), keras.layers.Dense(1)]
    )
    model.compile(optimizer="adam", loss="mse")
    model.fit(X, y, epochs=5, batch_size=32, verbose=0)
    path = tmp_path_factory.mktemp("keras") / "sine.keras"
    model.save(path)
    return path


def _keras_predict(path: Path, X: np.ndarray) -> np.ndarray:
    return keras.saving.load_model(path).predict(X, verbose=0)  # (N, 1)


def test_seed_example_loads_with_the_same_predictions(keras_file: Path, tmp_path: Path) -> None:
    X, y = _data()
    expected = _keras_predict(keras_file, X)[:, 0]
    reg = SequenceRegressor.from_keras(keras_file, verbose=False)
    assert (reg.cell, reg.hidden_size, reg.num_layers, reg.warm_start) == ("rnn", 50, 1, True)
    assert reg.n_features_in_ == 1 and reg.predict(X).shape == (100,)
    np.testing.assert_allclose(reg.predict(X), expected, atol=TOL, rtol=0)
    # ... as rnnkit.nn modules: the whole model, and the SimpleRNN layer alone
    stack = from_keras(keras_file)
    np.testing.assert_allclose(stack(X).detach().numpy()[:, 0], expected, atol=TOL, rtol=0)
    module = stack.layers[0].rnn
    assert isinstance(module, RNN) and module.hidden_size == 50
    out, h = module(torch.from_numpy(X))
    head = stack.layers[1].linear
    np.testing.assert_allclose(head(out[:, -1]).detach().numpy()[:, 0], expected, atol=TOL)
    # a loaded model saves and loads like any other
    again = SequenceRegressor.load(reg.save(tmp_path / "from-keras"), verbose=False)
    np.testing.assert_array_equal(again.predict(X), reg.predict(X))
    assert again.get_params() == reg.get_params()


def test_rnnkit_trains_the_keras_weights_on(keras_file: Path) -> None:
    X, y = _data()
    keras_mse = float(np.mean((_keras_predict(keras_file, X)[:, 0] - y) ** 2))
    # a step too small to move the weights: fit starts from Keras' weights, not new ones
    still = SequenceRegressor.from_keras(keras_file, lr=1e-9, epochs=1, seed=0, verbose=False)
    before = still.predict(X)
    still.fit(X, y)
    np.testing.assert_allclose(still.predict(X), before, atol=1e-5)
    assert abs(still.history_["loss"][0] - keras_mse) < 1e-3 * max(keras_mse, 1e-3) + 1e-5
    # a real learning rate trains on: the loss keeps falling from where Keras stopped
    reg = SequenceRegressor.from_keras(keras_file, lr=3e-3, epochs=5, seed=0, verbose=False)
    reg.fit(X, y)
    assert reg.evaluate(X, y)["mse"] < keras_mse
    # warm_start=False: fit starts from new random weights (scikit-learn's default)
    cold = SequenceRegressor.from_keras(keras_file, warm_start=False, lr=1e-9, epochs=1, seed=0)
    cold.set_params(verbose=False).fit(X, y)
    assert np.abs(cold.predict(X) - before).max() > 1e-2


def test_rnnkit_model_to_keras_same_predictions(keras_file: Path, tmp_path: Path) -> None:
    X, y = _data()
    reg = SequenceRegressor(cell="rnn", hidden_size=50, epochs=3, seed=0, verbose=False)
    reg.fit(X, y)
    model = reg.to_keras()
    np.testing.assert_allclose(model.predict(X, verbose=0)[:, 0], reg.predict(X), atol=TOL)
    model.save(tmp_path / "rnnkit.keras")  # and it is an ordinary Keras model
    reread = keras.saving.load_model(tmp_path / "rnnkit.keras")
    np.testing.assert_allclose(reread.predict(X, verbose=0)[:, 0], reg.predict(X), atol=TOL)
    # the Keras-loaded estimator goes back too (to_keras of rnnkit.interop takes estimators)
    loaded = SequenceRegressor.from_keras(keras_file)
    back = to_keras(loaded)
    expected = _keras_predict(keras_file, X)
    np.testing.assert_allclose(back.predict(X, verbose=0), expected, atol=TOL, rtol=0)


def test_stacked_bidirectional_gru_and_lengths_both_ways() -> None:
    X, y = _data()
    reg = SequenceRegressor(
        cell="gru", hidden_size=6, num_layers=2, bidirectional=True, epochs=1, seed=0
    )
    reg.set_params(verbose=False).fit(X, np.stack([y, -y], 1))  # two targets
    lengths = np.random.default_rng(1).integers(3, 11, size=100)
    padded = X.copy()
    padded[np.arange(10) >= lengths[:, None]] = 0.0
    model = reg.to_keras(masking=0.0)  # lengths -> Keras masking
    expected = reg.predict(padded, lengths=lengths)
    np.testing.assert_allclose(model.predict(padded, verbose=0), expected, atol=TOL)
    again = SequenceRegressor.from_keras(model, verbose=False)
    assert (again.cell, again.num_layers, again.bidirectional) == ("gru", 2, True)
    np.testing.assert_allclose(again.predict(padded, lengths=lengths), expected, atol=TOL)


def test_classifier_from_keras_puts_classes_in_order() -> None:
    X, y = _data()
    model = keras.Sequential(
        [keras.Input((None, 1)), keras.layers.LSTM(4), keras.layers.Dense(3, "softmax")]
    )
    proba = model.predict(X, verbose=0)  # columns: "up", "down", "flat"
    clf = SequenceClassifier.from_keras(model, classes=["up", "down", "flat"], verbose=False)
    assert list(clf.classes_) == ["down", "flat", "up"]
    np.testing.assert_allclose(clf.predict_proba(X), proba[:, [1, 2, 0]], atol=TOL)
    np.testing.assert_allclose(clf.to_keras().predict(X, verbose=0), proba[:, [1, 2, 0]], atol=TOL)


def test_models_the_estimators_cannot_hold_are_one_line_errors(keras_file: Path) -> None:
    two_heads = keras.Sequential(
        [keras.Input((None, 1)), keras.layers.LSTM(4), keras.layers.Dense(3, "relu")]
        + [keras.layers.Dense(1)]
    )
    with pytest.raises(UserError, match=r"this model is LSTM\(4\) -> Dense\(3, relu\) -> Dense"):
        SequenceRegressor.from_keras(two_heads)
    with pytest.raises(UserError, match="hidden_size=8 does not match the Keras model"):
        SequenceRegressor.from_keras(keras_file, hidden_size=8)
    with pytest.raises(UserError, match="cell='mingru' has no Keras layer"):
        SequenceRegressor(cell="mingru", hidden_size=4, epochs=1, verbose=False).fit(
            *_data()
        ).to_keras()
