"""Losses, optimizers, input errors, and the rule that rnnkit.reference never imports torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from rnnkit.reference import (
    SGD,
    Adam,
    backward,
    check_gradient,
    forward,
    mse,
    relative_error,
    softmax_cross_entropy,
)


def test_reference_never_imports_torch():
    code = (
        "import sys, numpy as np, rnnkit.reference as R\n"
        "p = {'weight_ih': np.ones((4, 2)), 'weight_hh': np.ones((4, 1))}\n"
        "o, f, c = R.forward('lstm', np.ones((1, 3, 2)), p); R.backward('lstm', o, c)\n"
        "print('torch' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"


# ----------------------------------------------------------------------- losses


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_softmax_cross_entropy_matches_torch_and_finite_differences(reduction: str):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 3, 5)) * 3
    targets = rng.integers(0, 5, (2, 3))
    loss, d = softmax_cross_entropy(logits, targets, reduction)
    t = torch.from_numpy(logits).requires_grad_(True)
    ref = torch.nn.functional.cross_entropy(
        t.reshape(-1, 5), torch.from_numpy(targets).reshape(-1), reduction=reduction
    )
    ref.backward()
    assert abs(loss - ref.item()) < 1e-12
    assert relative_error(d, t.grad.numpy()) < 1e-10
    err = check_gradient(lambda: softmax_cross_entropy(logits, targets, reduction)[0], logits, d)
    assert err < 1e-5


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1000.0, 0.0, -1000.0]], dtype=np.float32)
    loss, d = softmax_cross_entropy(logits, np.array([1]))
    assert np.isfinite(loss) and abs(loss - 1000.0) < 1e-3
    assert d.dtype == np.float32 and np.all(np.isfinite(d))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse_matches_torch_and_finite_differences(reduction: str):
    rng = np.random.default_rng(1)
    pred, target = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    loss, d = mse(pred, target, reduction)
    t = torch.from_numpy(pred).requires_grad_(True)
    ref = torch.nn.functional.mse_loss(t, torch.from_numpy(target), reduction=reduction)
    ref.backward()
    assert abs(loss - ref.item()) < 1e-12
    assert relative_error(d, t.grad.numpy()) < 1e-12
    assert check_gradient(lambda: mse(pred, target, reduction)[0], pred, d) < 1e-6


def test_loss_errors_name_the_value():
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 3\), got values in \[0, 3\]"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="targets must have the shape of logits"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="must be integer class indices"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"same shape, got \(2,\) and \(3,\)"):
        mse(np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="reduction must be 'mean' or 'sum', got 'max'"):
        mse(np.zeros(2), np.zeros(2), "max")


# ------------------------------------------------------------------- optimizers


def _run_both(make_mine, make_theirs, steps: int = 5):
    """Same gradients into both optimizers for a few steps; return both weights."""
    rng = np.random.default_rng(2)
    w0 = {"w": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}
    mine = {k: v.copy() for k, v in w0.items()}
    theirs = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in w0.items()}
    opt_mine, opt_theirs = make_mine(mine), make_theirs(list(theirs.values()))
    for _ in range(steps):
        grads = {k: rng.standard_normal(v.shape) for k, v in w0.items()}
        for k, t in theirs.items():
            t.grad = torch.from_numpy(grads[k].copy())
        opt_theirs.step()
        opt_mine.step(grads)
    return mine, {k: t.detach().numpy() for k, t in theirs.items()}


@pytest.mark.parametrize("kwargs", [{}, {"momentum": 0.9}, {"momentum": 0.5, "weight_decay": 0.1}])
def test_sgd_matches_torch(kwargs: dict):
    mine, theirs = _run_both(
        lambda p: SGD(p, lr=0.1, **kwargs), lambda p: torch.optim.SGD(p, lr=0.1, **kwargs)
    )
    for k in mine:
        assert relative_error(mine[k], theirs[k]) < 1e-12


@pytest.mark.parametrize("kwargs", [{}, {"betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.01}])
def test_adam_matches_torch(kwargs: dict):
    mine, theirs = _run_both(
        lambda p: Adam(p, lr=0.05, **kwargs), lambda p: torch.optim.Adam(p, lr=0.05, **kwargs)
    )
    for k in mine:
        assert relative_error(mine[k], theirs[k]) < 1e-10


def test_optimizer_errors():
    with pytest.raises(ValueError, match="lr must be > 0, got 0"):
        Adam({"w": np.zeros(2)}, lr=0)
    with pytest.raises(ValueError, match="momentum must be in"):
        SGD({"w": np.zeros(2)}, lr=0.1, momentum=1.0)
    with pytest.raises(ValueError, match=r"unknown parameters \['v'\]"):
        SGD({"w": np.zeros(2)}, lr=0.1).step({"v": np.zeros(2)})
    with pytest.raises(ValueError, match=r"gradient of 'w' has shape \(3,\)"):
        Adam({"w": np.zeros(2)}).step({"w": np.zeros(3)})


def test_float32_optimizers_keep_dtype():
    p = {"w": np.ones(3, dtype=np.float32)}
    Adam(p, lr=0.1).step({"w": np.ones(3, dtype=np.float32)})
    SGD(p, lr=0.1, momentum=0.9).step({"w": np.ones(3, dtype=np.float32)})
    assert p["w"].dtype == np.float32


# ---------------------------------------------------------------- input errors


def _params(G: int = 4, H: int = 3, D: int = 2) -> dict[str, np.ndarray]:
    return {"weight_ih": np.zeros((G * H, D)), "weight_hh": np.zeros((G * H, H))}


def test_bad_kind_names_the_value():
    with pytest.raises(ValueError, match="kind must be one of 'rnn', 'lstm', 'gru', got 'tlsm'"):
        forward("tlsm", np.zeros((1, 2, 2)), _params())


@pytest.mark.parametrize(
    ("x", "params", "state", "message"),
    [
        (np.zeros((2, 2)), _params(), None, r"x must have shape \(B, T, D\), got shape \(2, 2\)"),
        (np.zeros((1, 0, 2)), _params(), None, "at least one time step"),
        (np.zeros((1, 2, 2), dtype=int), _params(), None, "must be a float array"),
        (np.zeros((1, 2, 5)), _params(), None, r"weight_ih must have shape \(12, 5\)"),
        (np.zeros((1, 2, 2)), _params(G=3), None, r"lstm weight_ih must have shape \(12, 2\)"),
        (np.zeros((1, 2, 2)), {"weight_ih": np.zeros((12, 2))}, None, "missing 'weight_hh'"),
        (np.zeros((1, 2, 2)), _params(), np.zeros((1, 3)), r"state must be a tuple \(h0, c0\)"),
        (
            np.zeros((1, 2, 2)),
            _params(),
            (np.zeros((1, 3)), np.zeros((2, 3))),
            r"c0 must have shape \(B, H\) = \(1, 3\), got \(2, 3\)",
        ),
        (
            np.zeros((1, 2, 2)),
            {**_params(), "bias_ih": np.zeros(3)},
            None,
            r"bias_ih must have shape \(12,\)",
        ),
    ],
)
def test_lstm_shape_errors(x, params, state, message):
    with pytest.raises(ValueError, match=message):
        forward("lstm", x, params, state)


def test_rnn_state_and_nonlinearity_errors():
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu', got 'gelu'"):
        forward("rnn", np.zeros((1, 2, 2)), _params(G=1), nonlinearity="gelu")
    with pytest.raises(ValueError, match="gru state must be one"):
        forward("gru", np.zeros((1, 2, 2)), _params(G=3), (np.zeros((1, 3)), np.zeros((1, 3))))


def test_backward_errors():
    out, _, cache = forward("gru", np.zeros((1, 2, 2)), _params(G=3))
    with pytest.raises(ValueError, match="kind 'lstm' does not match the cache, made by 'gru'"):
        backward("lstm", out, cache)
    with pytest.raises(ValueError, match=r"d_outputs must have the outputs' shape"):
        backward("gru", np.zeros((1, 3, 3)), cache)
    with pytest.raises(ValueError, match=r"d_final_state must have shape \(B, H\)"):
        backward("gru", out, cache, np.zeros((2, 3)))


def test_unknown_param_key_is_rejected():
    with pytest.raises(ValueError, match=r"params has unknown keys \['bias_i'\]"):
        forward("lstm", np.zeros((1, 2, 2)), {**_params(), "bias_i": np.zeros(12)})
