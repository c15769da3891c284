"""step()'s fast path (rnnkit.nn.step) against its explicit twin, forward() and torch.nn.

The fast step runs without autograd (no_grad / inference_mode); the explicit step
runs cell() per layer and is what step() does with gradients recorded. Both must
give forward()'s outputs and states, to 1e-6 in float32.
"""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

import rnnkit.nn.step as step_module
from rnnkit.nn import GRU, LSTM, RNN, CellParams, lstm_cell

# (id, class, constructor keywords)
CASES = [
    ("rnn_tanh", RNN, {}),
    ("rnn_relu", RNN, {"nonlinearity": "relu"}),
    ("lstm", LSTM, {}),
    ("lstm_proj", LSTM, {"proj_size": 3}),
    ("gru", GRU, {}),
]
IDS = [c[0] for c in CASES]
D, H, B, T = 5, 7, 3, 6
F32 = {"atol": 1e-6, "rtol": 0.0}


def _parts(state):
    return list(state) if isinstance(state, tuple) else [state]


def _random_state(m, batch, dtype=torch.float32):
    sizes = (m.output_size, m.hidden_size) if isinstance(m, LSTM) else (m.hidden_size,)
    parts = tuple(torch.randn(m.num_layers, batch, n, dtype=dtype) for n in sizes)
    return parts if len(parts) == 2 else parts[0]


def _run_steps(m, x, state, *, grad):
    """Step through x (B, T, D) or (T, D); return the outputs stacked on time and the state."""
    ys = []
    with torch.set_grad_enabled(grad):
        for x_t in x.unbind(-2):
            y, state = m.step(x_t, state)
            ys.append(y)
    return torch.stack(ys, -2), state


def _assert_close(a, b, **tol):
    torch.testing.assert_close(a, b, **(tol or F32))


@pytest.mark.parametrize("name,cls,kwargs", CASES, ids=IDS)
@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("with_state", [True, False])
def test_fast_step_equals_explicit_step_and_forward(
    name, cls, kwargs, layers, bias, batched, with_state
):
    torch.manual_seed(0)
    m = cls(D, H, num_layers=layers, bias=bias, **kwargs)
    x = torch.randn(B, T, D) if batched else torch.randn(T, D)
    s0 = _random_state(m, B) if with_state else None
    if s0 is not None and not batched:
        s0 = tuple(t[:, 0] for t in _parts(s0))
        s0 = s0 if len(s0) > 1 else s0[0]
    step_module._CACHE.pop(m, None)
    fast_y, fast_s = _run_steps(m, x, s0, grad=False)
    assert m in step_module._CACHE  # the fast step ran (and cached its weights)
    slow_y, slow_s = _run_steps(m, x, s0, grad=True)  # the explicit twin
    with torch.no_grad():
        out, final = m(x, s0)
    _assert_close(fast_y, slow_y.detach())
    _assert_close(fast_y, out)
    assert type(fast_s) is type(final)
    for a, b, c in zip(_parts(fast_s), _parts(slow_s), _parts(final), strict=True):
        assert a.shape == c.shape
        _assert_close(a, b.detach())
        _assert_close(a, c)


@pytest.mark.parametrize("cls,cell_cls", [(LSTM, nn.LSTMCell), (GRU, nn.GRUCell)])
def test_issue_shape_matches_torch_cell(cls, cell_cls):
    """B=1, D=256, H=512, float32, 20 steps: equal to torch.nn's cell to 1e-6."""
    torch.manual_seed(0)
    cell = cell_cls(256, 512)
    m = cls(256, 512)
    m.load_state_dict({f"{k}_l0": v for k, v in cell.state_dict().items()})
    state, ref = None, None
    with torch.inference_mode():
        for x_t in torch.randn(20, 1, 256):
            y, state = m.step(x_t, state)
            ref = cell(x_t, ref)
            h_ref = ref[0] if isinstance(ref, tuple) else ref
            _assert_close(y, h_ref)
    for a, b in zip(_parts(state), _parts(ref), strict=True):
        _assert_close(a[0], b)


def test_float64_is_tight():
    torch.manual_seed(0)
    m = LSTM(D, H, num_layers=2).double()
    x = torch.randn(B, T, D, dtype=torch.float64)
    fast_y, fast_s = _run_steps(m, x, None, grad=False)
    slow_y, slow_s = _run_steps(m, x, None, grad=True)
    _assert_close(fast_y, slow_y.detach(), atol=1e-12, rtol=1e-12)
    for a, b in zip(fast_s, slow_s, strict=True):
        _assert_close(a, b.detach(), atol=1e-12, rtol=1e-12)


# --------------------------------------------------------------------------
# The cached weights follow the parameters
# --------------------------------------------------------------------------


def _fast_and_slow(m, x):
    with torch.no_grad():
        fast = m.step(x)
    slow = m.step(x)  # gradients recorded: the explicit step
    return fast[0], slow[0].detach()


def test_cache_follows_in_place_changes_and_replacements():
    torch.manual_seed(0)
    m = LSTM(D, H, num_layers=2)
    x = torch.randn(B, D)
    before, _ = _fast_and_slow(m, x)
    opt = torch.optim.SGD(m.parameters(), lr=0.5)  # an optimizer step: in place
    m(torch.randn(B, T, D))[0].square().sum().backward()
    opt.step()
    fast, slow = _fast_and_slow(m, x)
    _assert_close(fast, slow)
    assert not torch.allclose(fast, before)
    m.load_state_dict(LSTM(D, H, num_layers=2).state_dict())  # copies in place
    _assert_close(*_fast_and_slow(m, x))
    m.weight_hh_l1 = nn.Parameter(torch.randn(4 * H, H))  # a new parameter object
    _assert_close(*_fast_and_slow(m, x))
    m.bias_ih_l0.data = torch.randn(4 * H)  # .data replaced: no version bump
    _assert_close(*_fast_and_slow(m, x))
    m.double()  # .to(): new storage and dtype
    fast, slow = _fast_and_slow(m, x.double())
    assert fast.dtype == torch.float64
    _assert_close(fast, slow)


def test_modes_mix_and_outputs_never_alias_the_state():
    torch.manual_seed(0)
    m = GRU(D, H)
    x = torch.randn(B, D)
    with torch.inference_mode():  # weights and buffers built here...
        y1, s1 = m.step(x)
    with torch.no_grad():  # ...are plain tensors, usable outside inference mode
        y2, s2 = m.step(x)
        kept = s2.clone()
        y3, s3 = m.step(x, s2)
        assert torch.equal(s2, kept)  # a kept state is never written again (beam search)
        y3.add_(1.0)  # the output is not a view of the state
        assert not torch.equal(y3, s3[-1])
    _assert_close(y1, y2)
    with torch.no_grad():
        y4, _ = m.step(torch.randn(B + 2, D))  # another batch size: new buffers
    assert y4.shape == (B + 2, H)


def test_gradients_through_step():
    """With gradients recorded, step() is differentiable and equals forward()'s gradients."""
    torch.manual_seed(0)
    m = LSTM(D, H, num_layers=2, proj_size=3).double()
    x = torch.randn(B, T, D, dtype=torch.float64, requires_grad=True)
    ys, state = _run_steps(m, x, None, grad=True)
    loss = ys.square().sum() + state[1].sum()
    grads = torch.autograd.grad(loss, [x, *m.parameters()])
    out, (h, c) = m(x)
    ref = torch.autograd.grad(out.square().sum() + c.sum(), [x, *m.parameters()])
    for a, b in zip(grads, ref, strict=True):
        _assert_close(a, b, atol=1e-10, rtol=1e-8)
    assert torch.autograd.gradcheck(
        lambda x_t, h0: m.step(x_t, (h0, torch.zeros(2, 2, H, dtype=torch.float64)))[0],
        (
            torch.randn(2, D, dtype=torch.float64, requires_grad=True),
            torch.randn(2, 2, 3, dtype=torch.float64, requires_grad=True),
        ),
    )


# --------------------------------------------------------------------------
# When the explicit step runs instead
# --------------------------------------------------------------------------


class ShiftedLSTM(LSTM):
    """A custom cell: the forget gate's pre-activation shifted by +1."""

    def cell(self, x_proj, state, p: CellParams):
        x_proj = x_proj.clone()
        x_proj[:, self.hidden_size : 2 * self.hidden_size] += 1.0
        return lstm_cell(x_proj, state, p.weight_hh, p.bias_hh, p.weight_hr)


def test_explicit_step_when_the_fast_one_cannot_run():
    m = LSTM(D, H, num_layers=2, dropout=0.5)
    with torch.no_grad():
        assert "dropout" in m._step_blocker()  # training mode: random masks, cell() path
        m.eval()
        assert m._step_blocker() is None
        assert "fast_path=False" in LSTM(D, H, fast_path=False)._step_blocker()
    assert "gradients are recorded" in m._step_blocker()
    with torch.inference_mode():
        frozen = GRU(D, H)  # inference tensors have no version counter to watch
        assert "inference tensors" in frozen._step_blocker()
        frozen.step(torch.randn(B, D))
    torch.manual_seed(0)
    custom, plain = ShiftedLSTM(D, H), LSTM(D, H)
    plain.load_state_dict(custom.state_dict())
    with torch.no_grad():
        plain.bias_ih_l0[H : 2 * H] += 1
        x = torch.randn(B, D)
        _assert_close(custom.step(x)[0], plain.step(x)[0])  # the custom cell really ran


def test_threads_share_a_module_safely():
    torch.manual_seed(0)
    m = LSTM(D, H, num_layers=2)
    xs = [torch.randn(40, B, D) for _ in range(4)]

    def run(x):
        state, ys = None, []
        with torch.no_grad():
            for x_t in x:
                y, state = m.step(x_t, state)
                ys.append(y)
        return torch.stack(ys)

    expected = [run(x) for x in xs]
    results: list[torch.Tensor | None] = [None] * len(xs)

    def work(k):
        results[k] = run(xs[k])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected, strict=True):
        assert torch.equal(got, want)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name,cls,kwargs", CASES, ids=IDS)
def test_fast_step_on_cuda(name, cls, kwargs):
    torch.manual_seed(0)
    m = cls(D, H, num_layers=2, **kwargs).cuda()
    x = torch.randn(B, T, D, device="cuda")
    fast_y, fast_s = _run_steps(m, x, None, grad=False)
    slow_y, _ = _run_steps(m, x, None, grad=True)
    _assert_close(fast_y, slow_y.detach(), atol=1e-5, rtol=1e-5)  # TF32 may be on
    assert fast_y.device.type == "cuda"
