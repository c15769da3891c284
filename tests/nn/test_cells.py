"""RNNCell, LSTMCell, GRUCell against torch.nn with copied weights, golden values, errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from rnnkit.nn import GRUCell, LSTMCell, RNNCell

# One line per cell: (id, rnnkit class, torch.nn class, constructor keywords).
CELLS = [
    ("rnn_tanh", RNNCell, nn.RNNCell, {}),
    ("rnn_relu", RNNCell, nn.RNNCell, {"nonlinearity": "relu"}),
    ("lstm", LSTMCell, nn.LSTMCell, {}),
    ("gru", GRUCell, nn.GRUCell, {}),
]
D, H, B = 5, 7, 3  # odd sizes on purpose


def _leaves(out):
    return list(out) if isinstance(out, tuple) else [out]


def _pair(cls, torch_cls, kwargs, bias, dtype):
    torch.manual_seed(0)
    ref = torch_cls(D, H, bias=bias, **kwargs).to(dtype)
    ours = cls(D, H, bias=bias, **kwargs).to(dtype)
    ours.load_state_dict(ref.state_dict())
    return ours, ref


@pytest.mark.parametrize("name,cls,torch_cls,kwargs", CELLS, ids=[c[0] for c in CELLS])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batched", [True, False])
def test_cell_matches_torch(name, cls, torch_cls, kwargs, dtype, bias, batched):
    ours, ref = _pair(cls, torch_cls, kwargs, bias, dtype)
    shape = (B, D) if batched else (D,)
    x = torch.randn(shape, dtype=dtype, requires_grad=True)
    hshape = (B, H) if batched else (H,)
    state = torch.randn(hshape, dtype=dtype)
    if name == "lstm":
        state = (state, torch.randn(hshape, dtype=dtype))
    tol = {"atol": 1e-6, "rtol": 1e-5} if dtype == torch.float32 else {"atol": 1e-12, "rtol": 0}

    for s in (None, state):
        a, b = _leaves(ours(x, s)), _leaves(ref(x, s))
        assert [t.shape for t in a] == [t.shape for t in b]
        for u, v in zip(a, b, strict=True):
            torch.testing.assert_close(u, v, **tol)

    # Gradients with respect to the input and every parameter.
    g_ours = torch.autograd.grad(
        sum(t.sum() for t in _leaves(ours(x, state))), [x, *ours.parameters()]
    )
    g_ref = torch.autograd.grad(
        sum(t.sum() for t in _leaves(ref(x, state))), [x, *ref.parameters()]
    )
    for u, v in zip(g_ours, g_ref, strict=True):
        torch.testing.assert_close(u, v, **tol)


@pytest.mark.parametrize("name,cls,torch_cls,kwargs", CELLS, ids=[c[0] for c in CELLS])
def test_parameters_named_shaped_and_initialised_as_torch(name, cls, torch_cls, kwargs):
    ours, ref = cls(D, H, **kwargs), torch_cls(D, H, **kwargs)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in ref.state_dict().items()
    }
    ref.load_state_dict(ours.state_dict())  # and back, without conversion
    bound = 1 / math.sqrt(H)
    for p in ours.parameters():
        assert p.abs().max() <= bound
        assert p.std() > bound / 4  # not all zeros or constant
    assert cls(D, H, bias=False, **kwargs).bias_ih is None


# --------------------------------------------------------------------------
# Golden values: every weight 0.1, no bias, D = H = 2, x = (1, 2), h = (0.5, 0.5)
# (c = (1, 1) for the LSTM). Then every unit sees the same pre-activation:
#   x-part: 0.1 * 1 + 0.1 * 2       = 0.3
#   h-part: 0.1 * 0.5 + 0.1 * 0.5   = 0.1
#   sum:                              0.4
#   sigmoid(0.4) = 1 / (1 + e^-0.4)  = 0.598687660112452
#   tanh(0.4)                        = 0.379948962255225
# --------------------------------------------------------------------------

SIG = 0.598687660112452
TANH = 0.379948962255225


def test_golden_constants():
    assert math.isclose(SIG, 1 / (1 + math.exp(-0.4)), abs_tol=1e-15)
    assert math.isclose(TANH, math.tanh(0.4), abs_tol=1e-15)


def _constant(cls, **kwargs):
    cell = cls(2, 2, bias=False, **kwargs).double()
    for p in cell.parameters():
        nn.init.constant_(p, 0.1)
    return cell


X = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
H0 = torch.tensor([[0.5, 0.5]], dtype=torch.float64)


def test_golden_rnn():
    h = _constant(RNNCell)(X, H0)
    assert h[0].tolist() == pytest.approx([TANH, TANH], abs=1e-12)  # tanh(0.4)
    h = _constant(RNNCell, nonlinearity="relu")(X, H0)
    assert h[0].tolist() == pytest.approx([0.4, 0.4], abs=1e-12)  # relu(0.4)


def test_golden_lstm():
    h, c = _constant(LSTMCell)(X, (H0, torch.ones_like(H0)))
    # i = f = o = sigmoid(0.4) = 0.598687660112452, g = tanh(0.4) = 0.379948962255225
    # c' = f * 1 + i * g = 0.598687660112452 * (1 + 0.379948962255225) = 0.826158415287187
    # h' = o * tanh(c') = 0.598687660112452 * 0.678407861786475       = 0.406154415374837
    assert c[0].tolist() == pytest.approx([0.826158415287187] * 2, abs=1e-12)
    assert h[0].tolist() == pytest.approx([0.406154415374837] * 2, abs=1e-12)


def test_golden_gru():
    h = _constant(GRUCell)(X, H0)
    # r = z = sigmoid(0.4) = 0.598687660112452
    # n = tanh(0.3 + r * 0.1) = tanh(0.3 + 0.059868766011245) = 0.345098434422947
    #   (the reset gate scales W_hn h + b_hn = 0.1, after the product, as torch)
    # h' = (1 - z) * n + z * 0.5 = 0.401312339887548 * 0.345098434422947 + 0.299343830056226
    #    = 0.437836090266028
    assert h[0].tolist() == pytest.approx([0.437836090266028] * 2, abs=1e-12)


# --------------------------------------------------------------------------
# Errors name the value
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: LSTMCell(0, 4), r"input_size must be an integer >= 1, got 0"),
        (lambda: GRUCell(3, -2), r"hidden_size must be an integer >= 1, got -2"),
        (lambda: RNNCell(3, 2.5), r"hidden_size must be an integer >= 1, got 2.5"),
        (
            lambda: RNNCell(3, 4, nonlinearity="sigmoid"),
            r"nonlinearity must be one of 'tanh', 'relu', got 'sigmoid'",
        ),
    ],
)
def test_bad_hyperparameters(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_inputs():
    cell = LSTMCell(3, 4)
    with pytest.raises(ValueError, match=r"input must be 1-D or 2-D, got shape \(2, 5, 3\)"):
        cell(torch.randn(2, 5, 3))
    with pytest.raises(
        ValueError,
        match=r"input has 6 features in its last dimension but "
        r"input_size is 3",
    ):
        cell(torch.randn(2, 6))
    with pytest.raises(ValueError, match=r"state must be a pair \(h, c\), got Tensor"):
        cell(torch.randn(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"state c must have shape \(2, 4\), got \(2, 5\)"):
        cell(torch.randn(2, 3), (torch.zeros(2, 4), torch.zeros(2, 5)))
    with pytest.raises(
        ValueError,
        match=r"input dtype torch.float64 does not match the "
        r"weights' dtype torch.float32",
    ):
        cell(torch.randn(2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"state must have shape \(4,\), got \(1, 4\)"):
        GRUCell(3, 4)(torch.randn(3), torch.zeros(1, 4))
