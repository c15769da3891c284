"""MinGRU / MinLSTM: parallel vs sequential, the paper's plain equations, step(), lengths."""

from __future__ import annotations

import pytest
import torch

from rnnkit.nn import RECURRENT, MinGRU, MinLSTM, build_recurrent
from rnnkit.nn.mingru import g, log_g

# One list drives the shared properties: a new min-cell is one line here.
MODULES = {"mingru": MinGRU, "minlstm": MinLSTM}
TOL = {torch.float32: dict(rtol=1e-3, atol=1e-4), torch.float64: dict(rtol=1e-9, atol=1e-11)}


def _sigmoid(x):
    return 1.0 / (1.0 + torch.exp(-x))


def _oracle(module, x, h0=None):
    """The paper's plain (non-log) equations, sec. 3.1 / 3.2, as a hand-written loop.

    Written from the paper, not from the module: its own g, sigmoid, the row
    layout documented for ``weight_ih_l{k}`` ([k; h~] or [k_f; k_i; h~]).
    """
    H = module.hidden_size
    finals, inp = [], x
    for layer in range(module.num_layers):
        W = getattr(module, f"weight_ih_l{layer}")
        b = getattr(module, f"bias_ih_l{layer}")
        h = torch.zeros(x.shape[0], H, dtype=x.dtype) if h0 is None else h0[layer]
        outs = []
        for t in range(inp.shape[1]):
            p = inp[:, t] @ W.T + (0 if b is None else b)
            pre = p[:, -H:]
            h_tilde = torch.where(pre >= 0, pre + 0.5, _sigmoid(pre))
            if isinstance(module, MinGRU):
                z = _sigmoid(p[:, :H])
                h = (1 - z) * h + z * h_tilde
            else:
                f, i = _sigmoid(p[:, :H]), _sigmoid(p[:, H : 2 * H])
                h = f / (f + i) * h + i / (f + i) * h_tilde
            outs.append(h)
        inp = torch.stack(outs, 1)
        finals.append(h)
    return inp, torch.stack(finals)


def _grads(module, x, h0, out, state, weights):
    loss = (out * weights).sum() + (state**2).sum()
    leaves = [x, *module.parameters()] + ([h0] if h0 is not None else [])
    return torch.autograd.grad(loss, leaves)


@pytest.mark.parametrize("name", MODULES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("T", [1, 7, 300])
@pytest.mark.parametrize("with_h0", [False, True])
def test_parallel_matches_sequential_and_paper_equations(name, dtype, T, with_h0):
    torch.manual_seed(T)
    m = MODULES[name](5, 6, num_layers=2, dtype=dtype, chunk_size=128)
    x = torch.randn(3, T, 5, dtype=dtype, requires_grad=True)
    h0 = torch.randn(2, 3, 6, dtype=dtype, requires_grad=True) if with_h0 else None
    w = torch.randn(3, T, 6, dtype=dtype)

    m.parallel = True
    out_p, st_p = m(x, h0)
    grads_p = _grads(m, x, h0, out_p, st_p, w)
    m.parallel = False
    out_s, st_s = m(x, h0)
    grads_s = _grads(m, x, h0, out_s, st_s, w)

    assert out_p.shape == (3, T, 6) and st_p.shape == (2, 3, 6)
    torch.testing.assert_close(out_p, out_s, **TOL[dtype])
    torch.testing.assert_close(st_p, st_s, **TOL[dtype])
    for a, b in zip(grads_p, grads_s, strict=True):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, **TOL[dtype])
    if T <= 7:  # the oracle loop is slow in Python; 1 and 7 cover it
        out_o, st_o = _oracle(m, x, h0)
        torch.testing.assert_close(out_s, out_o, **TOL[dtype])
        torch.testing.assert_close(st_s, st_o, **TOL[dtype])
        grads_o = _grads(m, x, h0, out_o, st_o, w)
        for a, b in zip(grads_p, grads_o, strict=True):
            torch.testing.assert_close(a, b, **TOL[dtype])


@pytest.mark.parametrize("name", MODULES)
def test_gradcheck_float64(name):
    torch.manual_seed(0)
    m = MODULES[name](3, 4, num_layers=2, dtype=torch.float64)
    x = torch.randn(2, 6, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.rand(2, 2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, h: m(x, h)[0], (x, h0))


def test_g_and_log_g_follow_the_paper():
    x = torch.tensor([-30.0, -1.0, 0.0, 1.0, 40.0], dtype=torch.float64, requires_grad=True)
    want = torch.tensor(
        [
            _sigmoid(torch.tensor(-30.0, dtype=torch.float64)).item(),
            _sigmoid(torch.tensor(-1.0, dtype=torch.float64)).item(),
            0.5,
            1.5,
            40.5,
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(g(x), want)
    torch.testing.assert_close(log_g(x), want.log())
    log_g(torch.tensor([-200.0, 200.0], requires_grad=True)).sum().backward()  # finite
    grad = torch.autograd.grad(log_g(x).sum(), x)[0]
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("name", MODULES)
@pytest.mark.parametrize("with_h0", [False, True])
def test_step_matches_forward(name, with_h0):
    torch.manual_seed(1)
    m = MODULES[name](4, 5, num_layers=3, dtype=torch.float64)
    x = torch.randn(2, 9, 4, dtype=torch.float64)
    h0 = torch.rand(3, 2, 5, dtype=torch.float64) if with_h0 else None
    out, final = m(x, h0)
    state, ys = h0, []
    for x_t in x.unbind(1):
        y, state = m.step(x_t, state)
        ys.append(y)
    torch.testing.assert_close(torch.stack(ys, 1), out)
    torch.testing.assert_close(state, final)
    # unbatched step: (D,) and (L, H)
    y1, s1 = m.step(x[0, 0], None if h0 is None else h0[:, 0])
    torch.testing.assert_close(y1, out[0, 0])
    assert s1.shape == (3, 5)


@pytest.mark.parametrize("name", MODULES)
@pytest.mark.parametrize("parallel", [True, False])
def test_lengths_match_each_sequence_alone(name, parallel):
    torch.manual_seed(2)
    m = MODULES[name](3, 4, num_layers=2, dtype=torch.float64, parallel=parallel, chunk_size=4)
    x = torch.randn(3, 11, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 3, 4, dtype=torch.float64)
    lengths = torch.tensor([11, 1, 6])
    out, final = m(x, h0, lengths=lengths)
    for i, n in enumerate(lengths.tolist()):
        alone, fin = m(x[i : i + 1, :n], h0[:, i : i + 1])
        torch.testing.assert_close(out[i : i + 1, :n], alone)
        torch.testing.assert_close(final[:, i : i + 1], fin)
        assert (out[i, n:] == 0).all()
    (out.sum() + final.sum()).backward()
    assert torch.isfinite(x.grad).all()
    assert (x.grad[1, 1:] == 0).all()  # padding does not influence anything
    # a list works too, and all-full lengths equal no lengths
    torch.testing.assert_close(m(x, h0, lengths=[11, 11, 11])[0], m(x, h0)[0])


@pytest.mark.parametrize("name", MODULES)
def test_extreme_gates_and_long_sequences_stay_finite(name):
    """Weights x 1000 saturate every gate (log a down to ~-1e3); T = 10000 in float32."""
    torch.manual_seed(3)
    m = MODULES[name](4, 8)
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(1000.0)
    x = torch.randn(2, 10_000, 4, requires_grad=True)
    out, final = m(x, torch.randn(1, 2, 8))
    assert torch.isfinite(out).all() and torch.isfinite(final).all()
    out.mean().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters())
    # the same in float64 agrees with the sequential twin on the last 200 steps
    m64 = MODULES[name](4, 8, dtype=torch.float64)
    m64.load_state_dict({k: v.double() for k, v in m.state_dict().items()})
    x64 = x.detach()[:, -200:].double()
    ref = m64(x64)[0]
    m64.parallel = False
    torch.testing.assert_close(ref, m64(x64)[0])


@pytest.mark.parametrize("name", MODULES)
def test_layouts_registry_and_repr(name):
    torch.manual_seed(4)
    m = build_recurrent(name, 3, 4, num_layers=2)
    assert isinstance(m, MODULES[name]) and RECURRENT[name] is MODULES[name]
    x = torch.randn(2, 5, 3)
    out, st = m(x)
    parts = MODULES[name].parts
    assert m.weight_ih_l0.shape == (parts * 4, 3) and m.weight_ih_l1.shape == (parts * 4, 4)
    # batch_first=False and unbatched inputs give the same numbers
    tf = MODULES[name](3, 4, num_layers=2, batch_first=False)
    tf.load_state_dict(m.state_dict())
    out_t, st_t = tf(x.transpose(0, 1))
    torch.testing.assert_close(out_t.transpose(0, 1), out)
    torch.testing.assert_close(st_t, st)
    out_u, st_u = m(x[1])
    torch.testing.assert_close(out_u, out[1])
    torch.testing.assert_close(st_u, st[:, 1])
    assert "parallel path" in m.explain_fast_path()
    m.parallel = False
    assert "sequential path" in m.explain_fast_path()
    nb = MODULES[name](3, 4, bias=False)
    assert nb.bias_ih_l0 is None and len(list(nb.parameters())) == 1
    assert "bias=False" in repr(nb)


@pytest.mark.parametrize("name", MODULES)
def test_dropout_between_layers_only_in_training(name):
    torch.manual_seed(5)
    m = MODULES[name](3, 16, num_layers=2, dropout=0.5)
    x = torch.randn(2, 5, 3)
    m.eval()
    torch.testing.assert_close(m(x)[0], m(x)[0])
    m.train()
    assert not torch.equal(m(x)[0], m(x)[0])
    with pytest.warns(UserWarning, match="no effect with num_layers=1"):
        MODULES[name](3, 4, dropout=0.5)


@pytest.mark.parametrize("name", MODULES)
def test_errors_name_the_problem(name):
    cls = MODULES[name]
    m = cls(3, 4, num_layers=2)
    with pytest.raises(ValueError, match="input_size is 3"):
        m(torch.zeros(2, 5, 7))
    with pytest.raises(ValueError, match=r"state must have shape \(2, 2, 4\)"):
        m(torch.zeros(2, 5, 3), torch.zeros(1, 2, 4))
    with pytest.raises(ValueError, match="dtype"):
        m(torch.zeros(2, 5, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="lengths must be between 1 and T=5"):
        m(torch.zeros(2, 5, 3), lengths=[5, 0])
    with pytest.raises(ValueError, match="no time steps"):
        m(torch.zeros(2, 0, 3))
    with pytest.raises(ValueError, match="hidden_size must be an integer >= 1"):
        cls(3, 0)
    with pytest.raises(ValueError, match="dropout must be in"):
        cls(3, 4, dropout=1.5)
    with pytest.raises(ValueError, match="chunk_size must be an integer >= 1"):
        cls(3, 4, chunk_size=0)
    with pytest.raises(ValueError, match="parallel must be True or False"):
        cls(3, 4, parallel="yes")
    with pytest.raises(ValueError, match="x_t has 5 features"):
        m.step(torch.zeros(2, 5))


# --------------------------------------------------------------------------
# CUDA (run with -m gpu on a GPU machine)
# --------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", MODULES)
def test_cuda_parallel_matches_sequential_and_cpu(name):
    """On the GPU: the parallel scan (CUDA logcumsumexp), the sequential twin and the
    CPU module agree on outputs, final state and gradients, with h0 and lengths."""
    torch.manual_seed(0)
    B, T, D, H = 4, 300, 5, 6
    cpu = MODULES[name](D, H, num_layers=2)
    x = torch.randn(B, T, D)
    h0 = torch.randn(2, B, H)
    lengths = torch.tensor([300, 17, 1, 256])
    weights = torch.randn(B, T, H)
    results = []
    for device, parallel in (("cpu", True), ("cuda", True), ("cuda", False)):
        m = MODULES[name](D, H, num_layers=2, parallel=parallel).to(device)
        m.load_state_dict(cpu.state_dict())
        xd = x.to(device).requires_grad_()
        hd = h0.to(device).requires_grad_()
        out, state = m(xd, hd, lengths=lengths.to(device))
        grads = _grads(m, xd, hd, out, state, weights.to(device))
        results.append([t.detach().cpu() for t in (out, state, *grads)])
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            torch.testing.assert_close(b, a, **TOL[torch.float32])
