"""The NumPy engine against torch.nn and torch.autograd with the same weights (float64).

One list of kinds drives every test, so a new cell is one line.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit.reference import (
    backward,
    forward,
    gru_step_backward,
    gru_step_forward,
    lstm_step_backward,
    lstm_step_forward,
    relative_error,
    rnn_step_backward,
    rnn_step_forward,
)

KINDS = ["rnn", "lstm", "gru"]
TORCH_SEQ = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
TORCH_CELL = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}
TOL = 1e-8  # the acceptance bound for float64 relative error against torch


def rel(a: np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else b
    return relative_error(a, b)


def make_torch(kind: str, D: int, H: int, *, bias: bool = True, nonlinearity: str = "tanh"):
    """A float64 torch.nn sequence module and its weights as a NumPy params dict."""
    torch.manual_seed(0)
    extra = {"nonlinearity": nonlinearity} if kind == "rnn" else {}
    module = TORCH_SEQ[kind](D, H, batch_first=True, bias=bias, **extra).double()
    params = {
        name[: -len("_l0")]: p.detach().numpy().copy() for name, p in module.named_parameters()
    }
    return module, params


def run_both(kind, B, T, D, H, *, with_state, d_final, bias=True, nonlinearity="tanh"):
    """Forward + backward in torch (autograd) and NumPy from identical inputs."""
    module, params = make_torch(kind, D, H, bias=bias, nonlinearity=nonlinearity)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(B, T, D, dtype=torch.float64, generator=g, requires_grad=True)
    n_state = 2 if kind == "lstm" else 1
    s0 = [torch.randn(1, B, H, dtype=torch.float64, generator=g) for _ in range(n_state)]
    for s in s0:
        s.requires_grad_(True)
    if not with_state:
        with torch.no_grad():
            for s in s0:
                s.zero_()
    t_state = tuple(s0) if kind == "lstm" else s0[0]
    y, t_final = module(x, t_state)
    t_final = t_final if kind == "lstm" else (t_final,)
    gy = torch.randn(y.shape, dtype=torch.float64, generator=g)
    gfin = [torch.randn(1, B, H, dtype=torch.float64, generator=g) for _ in range(n_state)]
    loss = (y * gy).sum()
    if d_final:
        loss = loss + sum((f * gf).sum() for f, gf in zip(t_final, gfin, strict=True))
    loss.backward()

    np_state = None
    if with_state:
        np_state = (
            (s0[0][0].detach().numpy(), s0[1][0].detach().numpy())
            if kind == "lstm"
            else (s0[0][0].detach().numpy())
        )
    out, fin, cache = forward(kind, x.detach().numpy(), params, np_state, nonlinearity=nonlinearity)
    dfin = None
    if d_final:
        dfin = tuple(gf[0].numpy() for gf in gfin) if kind == "lstm" else gfin[0][0].numpy()
    dx, dparams, ds0 = backward(kind, gy.numpy(), cache, dfin)
    return dict(
        module=module,
        x=x,
        y=y,
        t_final=t_final,
        s0=s0,
        out=out,
        fin=fin,
        dx=dx,
        dparams=dparams,
        ds0=ds0,
    )


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("T", [1, 7])
@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("d_final", [False, True])
def test_forward_and_backward_match_torch(kind: str, T: int, with_state: bool, d_final: bool):
    r = run_both(kind, B=3, T=T, D=5, H=4, with_state=with_state, d_final=d_final)
    assert r["out"].shape == (3, T, 4)
    assert rel(r["out"], r["y"]) < TOL
    fins = r["fin"] if kind == "lstm" else (r["fin"],)
    for mine, theirs in zip(fins, r["t_final"], strict=True):
        assert rel(mine, theirs[0]) < TOL
    assert rel(r["dx"], r["x"].grad) < TOL
    for name, p in r["module"].named_parameters():
        assert rel(r["dparams"][name[:-3]], p.grad) < TOL, name
    ds0 = r["ds0"] if kind == "lstm" else (r["ds0"],)
    for mine, s in zip(ds0, r["s0"], strict=True):
        assert rel(mine, s.grad[0]) < TOL


@pytest.mark.parametrize("kind", KINDS)
def test_no_bias_matches_torch(kind: str):
    r = run_both(kind, B=2, T=4, D=3, H=5, with_state=True, d_final=True, bias=False)
    assert set(r["dparams"]) == {"weight_ih", "weight_hh"}
    assert rel(r["out"], r["y"]) < TOL
    assert rel(r["dx"], r["x"].grad) < TOL
    for name, p in r["module"].named_parameters():
        assert rel(r["dparams"][name[:-3]], p.grad) < TOL


def test_relu_rnn_matches_torch():
    r = run_both("rnn", B=3, T=6, D=4, H=5, with_state=True, d_final=True, nonlinearity="relu")
    assert rel(r["out"], r["y"]) < TOL
    assert rel(r["dx"], r["x"].grad) < TOL
    for name, p in r["module"].named_parameters():
        assert rel(r["dparams"][name[:-3]], p.grad) < TOL


STEP = {
    "rnn": (rnn_step_forward, rnn_step_backward),
    "lstm": (lstm_step_forward, lstm_step_backward),
    "gru": (gru_step_forward, gru_step_backward),
}


@pytest.mark.parametrize("kind", KINDS)
def test_step_functions_match_torch_cells(kind: str):
    """One step, forward and backward, against torch.nn.*Cell + autograd."""
    torch.manual_seed(2)
    B, D, H = 3, 4, 5
    cell = TORCH_CELL[kind](D, H).double()
    params = {n: p.detach().numpy().copy() for n, p in cell.named_parameters()}
    x = torch.randn(B, D, dtype=torch.float64, requires_grad=True)
    h = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
    c = torch.randn(B, H, dtype=torch.float64, requires_grad=True)
    step_fwd, step_bwd = STEP[kind]
    if kind == "lstm":
        h1, c1 = cell(x, (h, c))
        gh, gc = torch.randn_like(h1), torch.randn_like(c1)
        ((h1 * gh).sum() + (c1 * gc).sum()).backward()
        (nh, nc), cache = step_fwd(
            x.detach().numpy(), h.detach().numpy(), c.detach().numpy(), params
        )
        dx, (dh, dc), dp = step_bwd((gh.numpy(), gc.numpy()), cache)
        assert rel(nh, h1) < TOL and rel(nc, c1) < TOL
        assert rel(dc, c.grad) < TOL
    else:
        h1 = cell(x, h)
        gh = torch.randn_like(h1)
        (h1 * gh).sum().backward()
        nh, cache = step_fwd(x.detach().numpy(), h.detach().numpy(), params)
        dx, dh, dp = step_bwd(gh.numpy(), cache)
        assert rel(nh, h1) < TOL
    assert rel(dx, x.grad) < TOL
    assert rel(dh, h.grad) < TOL
    for n, p in cell.named_parameters():
        assert rel(dp[n], p.grad) < TOL, n


@pytest.mark.parametrize("kind", KINDS)
def test_sequence_engine_equals_step_loop(kind: str):
    """The fast engine (hoisted projections) against its naive twin, the step functions."""
    rng = np.random.default_rng(3)
    B, T, D, H = 2, 5, 3, 4
    _, params = make_torch(kind, D, H)
    x = rng.standard_normal((B, T, D))
    state = (
        (rng.standard_normal((B, H)), rng.standard_normal((B, H)))
        if kind == "lstm"
        else (rng.standard_normal((B, H)))
    )
    dout = rng.standard_normal((B, T, H))
    out, fin, cache = forward(kind, x, params, state)
    dx, dparams, ds0 = backward(kind, dout, cache)

    step_fwd, step_bwd = STEP[kind]
    s, caches, outs = state, [], []
    for t in range(T):
        s, c = step_fwd(x[:, t], *s, params) if kind == "lstm" else step_fwd(x[:, t], s, params)
        caches.append(c)
        outs.append(s[0] if kind == "lstm" else s)
    assert rel(out, np.stack(outs, axis=1)) < 1e-12
    ds = (np.zeros((B, H)), np.zeros((B, H))) if kind == "lstm" else np.zeros((B, H))
    acc = {k: np.zeros_like(v) for k, v in params.items()}
    dxs = []
    for t in reversed(range(T)):
        ds = (ds[0] + dout[:, t], ds[1]) if kind == "lstm" else ds + dout[:, t]
        dx_t, ds, dp = step_bwd(ds, caches[t])
        dxs.append(dx_t)
        for k in acc:
            acc[k] += dp[k]
    assert rel(dx, np.stack(dxs[::-1], axis=1)) < 1e-12
    for k in acc:
        assert rel(dparams[k], acc[k]) < 1e-12, k
    for mine, twin in zip(
        ds0 if kind == "lstm" else (ds0,), ds if kind == "lstm" else (ds,), strict=True
    ):
        assert rel(mine, twin) < 1e-12


@pytest.mark.parametrize("kind", KINDS)
def test_float32_stays_float32_and_agrees(kind: str):
    """float32 in, float32 out (and grads), within float32 rounding of the float64 result."""
    _, params = make_torch(kind, 6, 8)
    rng = np.random.default_rng(4)
    x64 = rng.standard_normal((4, 9, 6))
    d64 = rng.standard_normal((4, 9, 8))
    out64, _, c64 = forward(kind, x64, params)
    dx64, dp64, _ = backward(kind, d64, c64)
    out32, fin32, c32 = forward(kind, x64.astype(np.float32), params)
    dx32, dp32, ds32 = backward(kind, d64.astype(np.float32), c32)
    assert out32.dtype == np.float32 and dx32.dtype == np.float32
    assert (fin32[0] if kind == "lstm" else fin32).dtype == np.float32
    assert all(g.dtype == np.float32 for g in dp32.values())
    assert np.max(np.abs(out32 - out64)) < 1e-5
    assert np.max(np.abs(dx32 - dx64)) < 1e-4
    for k in dp64:
        assert np.max(np.abs(dp32[k] - dp64[k])) / np.max(np.abs(dp64[k])) < 1e-4
