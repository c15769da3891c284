"""BPTT against central differences, truncated BPTT against detached-chunk autograd, clipping."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from rnnkit.reference import (
    backward,
    clip_grad_norm,
    forward,
    gradcheck,
    hidden_gradients,
    mse,
    relative_error,
    truncated_bptt,
)

KINDS = ["rnn", "lstm", "gru"]
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
TORCH_SEQ = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}


def random_params(kind: str, D: int, H: int, seed: int = 0, scale: float = 0.5):
    rng = np.random.default_rng(seed)
    G = GATES[kind]
    return {
        "weight_ih": rng.standard_normal((G * H, D)) * scale,
        "weight_hh": rng.standard_normal((G * H, H)) * scale,
        "bias_ih": rng.standard_normal(G * H) * 0.1,
        "bias_hh": rng.standard_normal(G * H) * 0.1,
    }


def torch_module(kind: str, params: dict[str, np.ndarray]):
    G, H = GATES[kind], params["weight_hh"].shape[1]
    D = params["weight_ih"].shape[1]
    assert params["weight_ih"].shape[0] == G * H
    module = TORCH_SEQ[kind](D, H, batch_first=True).double()
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.from_numpy(params[name[:-3]]))
    return module


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("with_state", [False, True])
def test_gradcheck_central_differences(kind: str, with_state: bool):
    rng = np.random.default_rng(1)
    B, T, D, H = 2, 5, 3, 4
    params = random_params(kind, D, H)
    x = rng.standard_normal((B, T, D))
    state = None
    if with_state:
        state = (
            (rng.standard_normal((B, H)), rng.standard_normal((B, H)))
            if kind == "lstm"
            else (rng.standard_normal((B, H)))
        )
    result = gradcheck(kind, x, params, state)
    expected = {"x", "weight_ih", "weight_hh", "bias_ih", "bias_hh", "h0"}
    assert set(result.errors) == expected | ({"c0"} if kind == "lstm" else set())
    assert result.max_rel_error < 1e-5, result.errors


def test_gradcheck_detects_a_wrong_gradient(monkeypatch: pytest.MonkeyPatch):
    """The checker can fail: corrupt backward's dW_hh and it must report a large error."""
    # The module, not the function that the package re-exports under the same name.
    gc = importlib.import_module("rnnkit.reference.gradcheck")

    real_backward = gc.backward

    def broken(kind, d_outputs, cache, d_final_state=None):
        dx, dparams, ds0 = real_backward(kind, d_outputs, cache, d_final_state)
        dparams["weight_hh"] = dparams["weight_hh"] * 1.01
        return dx, dparams, ds0

    monkeypatch.setattr(gc, "backward", broken)
    result = gradcheck("gru", np.ones((1, 3, 2)), random_params("gru", 2, 3))
    assert result.errors["weight_hh"] > 1e-3
    assert result.errors["x"] < 1e-5


def test_gradcheck_samples_entries():
    params = random_params("lstm", 3, 4)
    result = gradcheck("lstm", np.ones((2, 4, 3)), params, max_checks=5, seed=3)
    assert result.max_rel_error < 1e-5


@pytest.mark.parametrize("kind", KINDS)
def test_tbptt_chunks_equal_full_forward_and_detached_autograd(kind: str):
    """Carried state: chunked outputs == one full pass. Gradients == torch with detach()."""
    rng = np.random.default_rng(5)
    B, T, D, H, chunk = 2, 11, 3, 4, 4  # chunks of 4, 4, 3
    params = random_params(kind, D, H)
    x = rng.standard_normal((B, T, D))
    target = rng.standard_normal((B, T, H))
    full, full_final, _ = forward(kind, x, params)

    def loss_fn(outputs, start, stop):
        return mse(outputs, target[:, start:stop], reduction="sum")

    chunks = list(truncated_bptt(kind, x, params, chunk, loss_fn))
    assert [(c.start, c.stop) for c in chunks] == [(0, 4), (4, 8), (8, 11)]
    outs = np.concatenate([c.outputs for c in chunks], axis=1)
    assert relative_error(outs, full) < 1e-12
    fins = chunks[-1].state if kind == "lstm" else (chunks[-1].state,)
    for mine, ref in zip(fins, full_final if kind == "lstm" else (full_final,), strict=True):
        assert relative_error(mine, ref) < 1e-12

    module = torch_module(kind, params)
    xt, tt = torch.from_numpy(x), torch.from_numpy(target)
    state = None
    for c in chunks:
        module.zero_grad()
        y, state = module(xt[:, c.start : c.stop], state)
        loss = ((y - tt[:, c.start : c.stop]) ** 2).sum()
        loss.backward()
        assert abs(c.loss - loss.item()) < 1e-10 * max(1.0, abs(loss.item()))
        for name, p in module.named_parameters():
            assert relative_error(c.grads[name[:-3]], p.grad.numpy()) < 1e-8, (c.start, name)
        state = tuple(s.detach() for s in state) if kind == "lstm" else state.detach()


def test_tbptt_uses_parameters_updated_between_chunks():
    """A generator: an optimizer step between chunks changes the next chunk's forward."""
    params = random_params("rnn", 2, 3)
    x = np.ones((1, 6, 2))
    loss_fn = lambda out, a, b: (float(out.sum()), np.ones_like(out))  # noqa: E731
    gen = truncated_bptt("rnn", x, params, 3, loss_fn)
    first = next(gen)
    params["weight_ih"] *= 0.0
    params["bias_ih"] *= 0.0
    params["bias_hh"] *= 0.0
    second = next(gen)
    expected, _, _ = forward("rnn", x[:, 3:], params, first.state)
    assert np.array_equal(second.outputs, expected)


@pytest.mark.parametrize("kind", KINDS)
def test_hidden_gradients_match_torch_retain_grad(kind: str):
    """dL/dh_t for every t against torch cells unrolled by hand with retain_grad()."""
    rng = np.random.default_rng(6)
    B, T, D, H = 2, 6, 3, 4
    params = random_params(kind, D, H)
    x = rng.standard_normal((B, T, D))
    dout = rng.standard_normal((B, T, H))
    _, _, cache = forward(kind, x, params)
    mine = hidden_gradients(kind, dout, cache)

    cell_cls = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[kind]
    cell = cell_cls(D, H).double()
    with torch.no_grad():
        for name, p in cell.named_parameters():
            p.copy_(torch.from_numpy(params[name]))
    h = torch.zeros(B, H, dtype=torch.float64)
    c = torch.zeros(B, H, dtype=torch.float64)
    hs = []
    for t in range(T):
        if kind == "lstm":
            h, c = cell(torch.from_numpy(x[:, t]), (h, c))
        else:
            h = cell(torch.from_numpy(x[:, t]), h)
        h.retain_grad()
        hs.append(h)
    sum((hh * torch.from_numpy(dout[:, t])).sum() for t, hh in enumerate(hs)).backward()
    theirs = torch.stack([hh.grad for hh in hs], dim=1).numpy()
    assert mine.shape == (B, T, H)
    assert relative_error(mine, theirs) < 1e-8


def test_backward_with_only_final_state_gradient():
    """d_outputs=None: the loss sees only h_T; equals passing it as the last output's grad."""
    params = random_params("gru", 3, 4)
    x = np.random.default_rng(7).standard_normal((2, 5, 3))
    g = np.random.default_rng(8).standard_normal((2, 4))
    _, _, cache = forward("gru", x, params)
    a = backward("gru", None, cache, g)
    d_out = np.zeros((2, 5, 4))
    d_out[:, -1] = g
    b = backward("gru", d_out, cache)
    assert relative_error(a[0], b[0]) < 1e-14
    assert all(relative_error(a[1][k], b[1][k]) < 1e-14 for k in a[1])


@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_matches_torch(max_norm: float):
    rng = np.random.default_rng(9)
    grads = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5) * 3}
    tensors = [torch.zeros(3, 4, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)]
    for t, g in zip(tensors, grads.values(), strict=True):
        t.grad = torch.from_numpy(g.copy())
    torch_norm = torch.nn.utils.clip_grad_norm_(tensors, max_norm).item()
    norm = clip_grad_norm(grads, max_norm)
    assert abs(norm - torch_norm) < 1e-12 * torch_norm
    for t, g in zip(tensors, grads.values(), strict=True):
        assert relative_error(g, t.grad.numpy()) < 1e-12
    if max_norm < norm:
        total = np.sqrt(sum(float((g**2).sum()) for g in grads.values()))
        assert abs(total - max_norm) < 1e-5


def test_clip_grad_norm_rejects_bad_max_norm():
    with pytest.raises(ValueError, match="max_norm must be > 0, got 0"):
        clip_grad_norm([np.ones(3)], 0)
