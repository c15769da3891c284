"""Keras 3 <-> rnnkit against real Keras 3 (torch backend): random weights and inputs, both
directions, every layer kind, return_sequences both ways, stacked, Bidirectional, masking
vs lengths, and the one-line errors for what has no exact counterpart.

Keras itself is the oracle: a converted model must give Keras' outputs within 1e-5.
Importing Keras takes several seconds; the tests themselves are small.
"""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "torch"  # before Keras is imported: no TensorFlow needed

import numpy as np
import pytest
import torch

keras = pytest.importorskip("keras")

import rnnkit.nn as rnn  # noqa: E402
from rnnkit.errors import UserError  # noqa: E402
from rnnkit.interop.keras import KerasStack, from_keras, to_keras, to_keras_layers  # noqa: E402

L = keras.layers
TOL = 1e-5
# Keras' own NumPy-2 copy= deprecation notes, raised inside Keras
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _np(t: object) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(t))


def _randomise(model: object, seed: int, scale: float = 0.4) -> None:
    """Random weights everywhere (biases too: Keras starts them at zero, which hides bugs)."""
    rng = np.random.default_rng(seed)
    model.set_weights(  # type: ignore[attr-defined]
        [scale * rng.standard_normal(w.shape).astype("float32") for w in model.get_weights()]  # type: ignore[attr-defined]
    )


def _x(B: int = 3, T: int = 7, D: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((B, T, D)).astype("float32")


RECURRENT = {
    "simple_rnn": lambda rs: L.SimpleRNN(5, return_sequences=rs),
    "simple_rnn_relu": lambda rs: L.SimpleRNN(5, activation="relu", return_sequences=rs),
    "lstm": lambda rs: L.LSTM(5, return_sequences=rs),
    "gru": lambda rs: L.GRU(5, return_sequences=rs),
    "gru_no_bias": lambda rs: L.GRU(5, use_bias=False, return_sequences=rs),
}


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "seq"])
@pytest.mark.parametrize("kind", list(RECURRENT))
def test_each_layer_kind_both_directions(kind: str, return_sequences: bool, bidirectional: bool):
    layer = RECURRENT[kind](return_sequences)
    if bidirectional:
        layer = L.Bidirectional(layer)
    model = keras.Sequential([keras.Input((None, 4)), layer])
    _randomise(model, seed=len(kind))
    x = _x()
    expected = _np(model(x))

    module = from_keras(model.layers[0])  # one layer -> the rnnkit.nn module
    assert type(module).__name__ == {"s": "RNN", "l": "LSTM", "g": "GRU"}[kind[0]]
    assert isinstance(module, rnn.RNN | rnn.LSTM | rnn.GRU)
    assert module.bidirectional == bidirectional
    out, _ = module(torch.from_numpy(x))
    got = out.detach().numpy()
    if not return_sequences:  # Keras' last output: forward after T-1, backward after 0
        H = module.hidden_size
        got = np.concatenate([got[:, -1, :H], got[:, 0, H:]], -1) if bidirectional else got[:, -1]
    np.testing.assert_allclose(got, expected, atol=TOL, rtol=0)
    stack = from_keras(model)
    np.testing.assert_allclose(stack(x).detach().numpy(), expected, atol=TOL, rtol=0)

    # ... and back: rnnkit -> Keras gives the same outputs again
    back = to_keras(module, return_sequences=return_sequences)
    np.testing.assert_allclose(_np(back(x)), expected, atol=TOL, rtol=0)


@pytest.mark.parametrize("cls", [rnn.RNN, rnn.LSTM, rnn.GRU, torch.nn.LSTM, torch.nn.GRU])
def test_rnnkit_and_torch_modules_to_keras(cls: type) -> None:
    """Two layers, both directions, both biases random (torch has two where Keras has one)."""
    torch.manual_seed(0)
    module = cls(4, 6, num_layers=2, bidirectional=True, batch_first=True)
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-0.5, 0.5)
    x = _x(T=9)
    out, state = module(torch.from_numpy(x))
    seq = to_keras(module)  # return_sequences=True: the output sequence
    np.testing.assert_allclose(_np(seq(x)), out.detach().numpy(), atol=TOL, rtol=0)
    h = state[0] if isinstance(state, tuple) else state  # (L*2, B, H)
    last = torch.cat([h[-2], h[-1]], -1).detach().numpy()  # top layer, both directions
    np.testing.assert_allclose(_np(to_keras(module, return_sequences=False)(x)), last, atol=TOL)


def test_stacked_model_with_dense_head_round_trip(tmp_path) -> None:
    model = keras.Sequential(
        [
            keras.Input((None, 4)),
            L.Bidirectional(L.LSTM(6, return_sequences=True)),
            L.Dropout(0.3),
            L.GRU(5, return_sequences=True),
            L.SimpleRNN(4),
            L.Dense(8, activation="relu"),
            L.Dense(3, activation="softmax"),
        ]
    )
    _randomise(model, seed=3)
    x = _x(B=5, T=11)
    expected = _np(model(x))
    stack = from_keras(model)
    assert isinstance(stack, KerasStack)
    assert [type(b).__name__ for b in stack.layers] == [
        "Recurrent", "Dropout", "Recurrent", "Recurrent", "Dense", "Dense",
    ]  # fmt: skip
    np.testing.assert_allclose(stack(torch.from_numpy(x)).detach().numpy(), expected, atol=TOL)
    back = to_keras(stack)
    np.testing.assert_allclose(_np(back(x)), expected, atol=TOL, rtol=0)
    # the functional form of the same chain, read from a .keras file
    inp = keras.Input((None, 4))
    h = inp
    for layer in model.layers:
        h = layer(h)
    path = tmp_path / "functional.keras"
    keras.Model(inp, h).save(path)
    np.testing.assert_allclose(from_keras(path)(x).detach().numpy(), expected, atol=TOL)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_keras_masking_equals_rnnkit_lengths(bidirectional: bool) -> None:
    wrap = L.Bidirectional if bidirectional else (lambda layer: layer)
    model = keras.Sequential(
        [
            keras.Input((None, 3)),
            L.Masking(mask_value=0.0),
            wrap(L.GRU(5, return_sequences=True)),
            wrap(L.LSTM(4)),
            L.Dense(2),
        ]
    )
    _randomise(model, seed=4)
    lengths = np.array([8, 5, 1, 3])
    x = _x(B=4, T=8, D=3, seed=1)
    x[np.arange(8) >= lengths[:, None]] = 0.0  # padding = the mask value
    expected = _np(model(x))
    stack = from_keras(model)
    np.testing.assert_allclose(stack(x).detach().numpy(), expected, atol=TOL)  # mask -> lengths
    given = stack(torch.from_numpy(x), lengths=torch.from_numpy(lengths))
    np.testing.assert_allclose(given.detach().numpy(), expected, atol=TOL)

    # rnnkit -> Keras: lengths become Masking; every valid step agrees
    module = from_keras(model.layers[1])  # the GRU (return_sequences=True)
    out, _ = module(torch.from_numpy(x), lengths=torch.from_numpy(lengths))
    keras_out = _np(to_keras(module, masking=0.0)(x))
    valid = np.arange(8) < lengths[:, None]  # (B, T)
    np.testing.assert_allclose(keras_out[valid], out.detach().numpy()[valid], atol=TOL)


def test_masking_refuses_a_gap_and_an_empty_row() -> None:
    model = keras.Sequential([keras.Input((None, 2)), L.Masking(), L.LSTM(3)])
    stack = from_keras(model)
    x = _x(B=2, T=4, D=2)
    x[0, 1] = 0.0  # a masked step before real ones
    with pytest.raises(UserError, match="trailing padding only: pass lengths="):
        stack(x)
    x = _x(B=2, T=4, D=2)
    x[1] = 0.0
    with pytest.raises(UserError, match="row 1 is masked at every step"):
        stack(x)


def _built(layer: object, D: int = 3) -> object:
    keras.Sequential([keras.Input((None, D)), layer])
    return layer


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: L.GRU(4, reset_after=False), "reset_after=False .* no torch equivalent"),
        (lambda: L.LSTM(4, activation="relu"), "activation=relu; rnnkit's LSTM computes tanh"),
        (lambda: L.GRU(4, recurrent_activation="hard_sigmoid"), "recurrent_activation="),
        (lambda: L.SimpleRNN(4, activation="elu"), "activation=elu"),
        (lambda: L.Bidirectional(L.LSTM(4), merge_mode="sum"), "merge_mode='sum'"),
        (lambda: L.LSTM(4, go_backwards=True), "go_backwards=True; reverse the input"),
        (lambda: L.Conv1D(4, 3), r"Conv1D\) has no rnnkit counterpart"),
    ],
)
def test_what_has_no_exact_counterpart_is_a_one_line_error(make, message: str) -> None:
    with pytest.raises(UserError, match=message) as info:
        from_keras(_built(make()))
    assert "\n" not in str(info.value)


def test_other_errors_are_one_line() -> None:
    with pytest.raises(UserError, match="has no weights yet"):
        from_keras(L.LSTM(3))
    with pytest.raises(UserError, match="does not exist; pass the path of a .keras file"):
        from_keras("no/such/model.keras")
    inp = keras.Input((None, 3))
    a, b = L.LSTM(2, return_sequences=True)(inp), L.GRU(2, return_sequences=True)(inp)
    branched = keras.Model(inp, L.Concatenate()([a, b]))
    with pytest.raises(UserError, match="is not a chain of layers"):
        from_keras(branched)
    with pytest.raises(UserError, match="proj_size=2 has no Keras layer"):
        to_keras(rnn.LSTM(3, 4, proj_size=2))
    with pytest.raises(UserError, match="MinGRU has no Keras layer"):
        to_keras_layers(rnn.MinGRU(3, 4))
