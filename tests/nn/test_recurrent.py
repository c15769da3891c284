"""RNN, LSTM, GRU sequence modules: torch.nn parity, lengths, both paths, step(), errors."""

from __future__ import annotations

import itertools
import warnings

import pytest
import torch
from torch import nn

from rnnkit.nn import GRU, LSTM, RNN, CellParams, build_recurrent, lstm_cell

# One line per module: (id, rnnkit class, torch.nn class, constructor keywords).
MODULES = [
    ("rnn_tanh", RNN, nn.RNN, {}),
    ("rnn_relu", RNN, nn.RNN, {"nonlinearity": "relu"}),
    ("lstm", LSTM, nn.LSTM, {}),
    ("gru", GRU, nn.GRU, {}),
]
IDS = [m[0] for m in MODULES]
D, H, P, B = 5, 7, 3, 4  # odd sizes; P = LSTM proj_size
F64 = {"atol": 1e-10, "rtol": 1e-8}


def _leaves(state):
    return list(state) if isinstance(state, tuple) else [state]


def _build(cls, kwargs, fast_path=True, **kw):
    return cls(D, H, fast_path=fast_path, **kwargs, **kw).double()


def _torch_twin(torch_cls, kwargs, **kw):
    torch.manual_seed(0)
    return torch_cls(D, H, **kwargs, **kw).double()


def _random_state(module, batch):
    LD = module.num_layers * module.num_directions
    sizes = (module.output_size, module.hidden_size) if isinstance(module, LSTM) else (H,)
    parts = tuple(torch.randn(LD, batch, n, dtype=torch.float64, requires_grad=True) for n in sizes)
    return parts if len(parts) == 2 else parts[0]


def _configs():
    """(module case, num_layers, bidirectional, proj_size) for every combination."""
    for case, layers, bidir in itertools.product(MODULES, (1, 2), (False, True)):
        for proj in (0, P) if case[0] == "lstm" else (0,):
            yield pytest.param(
                *case,
                layers,
                bidir,
                proj,
                id=f"{case[0]}-L{layers}-{'bi' if bidir else 'uni'}-p{proj}",
            )


@pytest.mark.parametrize("name,cls,torch_cls,kwargs,layers,bidir,proj", list(_configs()))
@pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "explicit"])
def test_matches_torch(name, cls, torch_cls, kwargs, layers, bidir, proj, fast_path):
    extra = {"num_layers": layers, "bidirectional": bidir, "batch_first": True}
    if proj:
        extra["proj_size"] = proj
    ref = _torch_twin(torch_cls, kwargs, **extra)
    ours = _build(cls, kwargs, fast_path, **extra)
    assert list(ours.state_dict()) == list(ref.state_dict())  # same names, same order
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(B, 6, D, dtype=torch.float64, requires_grad=True)
    s0 = _random_state(ours, B)
    for state in (None, s0):
        out, s = ours(x, state)
        out_ref, s_ref = ref(x, state)
        torch.testing.assert_close(out, out_ref, **F64)
        for u, v in zip(_leaves(s), _leaves(s_ref), strict=True):
            torch.testing.assert_close(u, v, **F64)
    # Gradients of input, initial state and every parameter.
    leaves = [x, *_leaves(s0)]
    out, s = ours(x, s0)
    loss = out.square().sum() + sum(t.sum() for t in _leaves(s))
    g = torch.autograd.grad(loss, [*leaves, *ours.parameters()])
    out, s = ref(x, s0)
    loss = out.square().sum() + sum(t.sum() for t in _leaves(s))
    g_ref = torch.autograd.grad(loss, [*leaves, *ref.parameters()])
    for u, v in zip(g, g_ref, strict=True):
        torch.testing.assert_close(u, v, **F64)


@pytest.mark.parametrize("name,cls,torch_cls,kwargs", MODULES, ids=IDS)
def test_state_dict_loads_both_ways_and_init_like_torch(name, cls, torch_cls, kwargs):
    extra = {"num_layers": 2, "bidirectional": True}
    ref, ours = torch_cls(D, H, **kwargs, **extra), cls(D, H, **kwargs, **extra)
    ref.load_state_dict(ours.state_dict())
    ours2 = cls(D, H, **kwargs, **extra)
    ours2.load_state_dict(ref.state_dict())
    for (k, a), (k2, b) in zip(ours.state_dict().items(), ours2.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b)
    bound = H**-0.5
    assert all(p.abs().max() <= bound for p in ours.parameters())
    assert "weight_hh_l1_reverse" in dict(ours.named_parameters())


@pytest.mark.parametrize("name,cls,torch_cls,kwargs", MODULES, ids=IDS)
@pytest.mark.parametrize("batch_first", [True, False])
def test_unbatched_and_time_major_inputs(name, cls, torch_cls, kwargs, batch_first):
    ref = _torch_twin(torch_cls, kwargs, batch_first=batch_first)
    ours = _build(cls, kwargs, batch_first=batch_first)
    ours.load_state_dict(ref.state_dict())
    for fast in (True, False):
        ours.fast_path = fast
        x = torch.randn(6, D, dtype=torch.float64)  # unbatched (T, D)
        for a, b in zip(
            (ours(x)[0], *_leaves(ours(x)[1])), (ref(x)[0], *_leaves(ref(x)[1])), strict=True
        ):
            torch.testing.assert_close(a, b, **F64)
        x = torch.randn(6, B, D, dtype=torch.float64)  # (T, B, D) or (B=6, T=B, D)
        torch.testing.assert_close(ours(x)[0], ref(x)[0], **F64)


# --------------------------------------------------------------------------
# lengths
# --------------------------------------------------------------------------

LENGTHS = [7, 1, 4, 6]  # T = 7: full, 1, even, odd; unsorted on purpose


@pytest.mark.parametrize("name,cls,torch_cls,kwargs", MODULES, ids=IDS)
@pytest.mark.parametrize("bidir", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "explicit"])
def test_lengths_equal_running_each_sequence_alone(name, cls, torch_cls, kwargs, bidir, fast_path):
    extra = {"num_layers": 2, "bidirectional": bidir}
    if name == "lstm":
        extra["proj_size"] = P
    torch.manual_seed(1)
    m = _build(cls, kwargs, fast_path, **extra)
    x = torch.randn(len(LENGTHS), max(LENGTHS), D, dtype=torch.float64)
    s0 = _random_state(m, len(LENGTHS))
    out, s = m(x, s0, lengths=torch.tensor(LENGTHS))
    for b, n in enumerate(LENGTHS):
        s0_b = tuple(t[:, b : b + 1] for t in _leaves(s0))
        out_b, s_b = m(x[b : b + 1, :n], s0_b if len(s0_b) > 1 else s0_b[0])
        torch.testing.assert_close(out[b : b + 1, :n], out_b, **F64)
        assert out[b, n:].abs().max() == 0 if n < x.size(1) else True  # padding is zero
        for u, v in zip(_leaves(s), _leaves(s_b), strict=True):
            torch.testing.assert_close(u[:, b : b + 1], v, **F64)


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast", "explicit"])
def test_lengths_time_major_and_streaming_after_forward(fast_path):
    torch.manual_seed(3)
    m = LSTM(D, H, num_layers=2, batch_first=False, fast_path=fast_path).double()
    x = torch.randn(7, 3, D, dtype=torch.float64)  # (T, B, D)
    out, (h, c) = m(x, lengths=torch.tensor([7, 2, 5]))
    out_b, (h_b, c_b) = m(x[:5, 2:3])
    torch.testing.assert_close(out[:5, 2:3], out_b, **F64)
    assert out[5:, 2].abs().max() == 0
    torch.testing.assert_close(c[:, 2:3], c_b, **F64)
    # forward() on a prefix, then step() on the rest: the same as forward() on everything.
    full, _ = m(x)
    _, state = m(x[:4])
    for t in range(4, 7):
        y, state = m.step(x[t], state)
        torch.testing.assert_close(y, full[t], **F64)


def test_lengths_accepts_lists_and_full_lengths():
    m = LSTM(D, H, bidirectional=True).double()
    x = torch.randn(3, 5, D, dtype=torch.float64)
    out, (h, c) = m(x, lengths=[5, 5, 5])
    out2, (h2, c2) = m(x)
    assert torch.equal(out, out2) and torch.equal(h, h2)
    out3, _ = m(x, lengths=[5, 2, 3])
    assert out3[1, 2:].abs().max() == 0


# --------------------------------------------------------------------------
# Fast path vs explicit path: outputs, final state, gradients
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name,cls,torch_cls,kwargs", MODULES, ids=IDS)
@pytest.mark.parametrize(
    "T", [1, 9, 60, pytest.param(400, marks=pytest.mark.slow)], ids=["T1", "T9", "T60", "T400"]
)
@pytest.mark.parametrize("with_state", [False, True], ids=["zero-state", "state"])
@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
def test_fast_and_explicit_paths_agree(name, cls, torch_cls, kwargs, T, with_state, with_lengths):
    extra = {"num_layers": 2, "bidirectional": True}
    if name == "lstm":
        extra["proj_size"] = P
    torch.manual_seed(2)
    fast = _build(cls, kwargs, True, **extra)
    slow = _build(cls, kwargs, False, **extra)
    slow.load_state_dict(fast.state_dict())
    x = torch.randn(3, T, D, dtype=torch.float64, requires_grad=True)
    s0 = _random_state(fast, 3) if with_state else None
    lengths = torch.tensor([T, max(1, T // 2), 1]) if with_lengths else None
    leaves = [x, *(_leaves(s0) if with_state else [])]
    results = []
    for m in (fast, slow):
        out, s = m(x, s0, lengths)
        loss = out.square().sum() + sum((t * t.detach().sign()).sum() for t in _leaves(s))
        grads = torch.autograd.grad(loss, [*leaves, *m.parameters()])
        results.append([out, *_leaves(s), *grads])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, **F64)


def test_float32_paths_agree():
    fast = LSTM(16, 32, num_layers=2)
    slow = LSTM(16, 32, num_layers=2, fast_path=False)
    slow.load_state_dict(fast.state_dict())
    x = torch.randn(4, 50, 16)
    torch.testing.assert_close(fast(x)[0], slow(x)[0], atol=1e-5, rtol=1e-4)


# --------------------------------------------------------------------------
# step()
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name,cls,torch_cls,kwargs", MODULES, ids=IDS)
@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize("batched", [True, False])
def test_step_equals_forward(name, cls, torch_cls, kwargs, layers, batched):
    extra = {"proj_size": P} if name == "lstm" else {}
    m = _build(cls, kwargs, num_layers=layers, **extra)
    x = (
        torch.randn(B, 8, D, dtype=torch.float64)
        if batched
        else torch.randn(8, D, dtype=torch.float64)
    )
    s0 = _random_state(m, B)
    if not batched:
        s0 = tuple(t[:, 0] for t in _leaves(s0))
        s0 = s0 if len(s0) > 1 else s0[0]
    out, s_final = m(x, s0)
    s = s0
    for t in range(8):
        y, s = m.step(x[:, t] if batched else x[t], s)
        torch.testing.assert_close(y, out[:, t] if batched else out[t], **F64)
    for u, v in zip(_leaves(s), _leaves(s_final), strict=True):
        torch.testing.assert_close(u, v, **F64)
    y0, _ = m.step(x[:, 0] if batched else x[0])  # state None means zeros
    torch.testing.assert_close(y0, (m(x)[0][:, 0] if batched else m(x)[0][0]), **F64)


# --------------------------------------------------------------------------
# Which path, and custom cells
# --------------------------------------------------------------------------


class PeepholeFreeLSTM(LSTM):
    """A custom cell: the built-in LSTM equations with the forget gate bias shifted by +1."""

    def cell(self, x_proj, state, p: CellParams):
        shift = torch.zeros_like(x_proj)
        shift[:, self.hidden_size : 2 * self.hidden_size] = 1.0
        return lstm_cell(x_proj + shift, state, p.weight_hh, p.bias_hh, p.weight_hr)


def test_explain_fast_path_and_custom_cell():
    assert "takes the fast path" in LSTM(3, 4).explain_fast_path()
    assert "torch._VF.gru" in GRU(3, 4).explain_fast_path()
    assert "torch._VF.rnn_relu" in RNN(3, 4, nonlinearity="relu").explain_fast_path()
    text = GRU(3, 4, fast_path=False).explain_fast_path()
    assert "takes the explicit path: fast_path=False was passed" in text
    custom = PeepholeFreeLSTM(3, 4).double()
    assert "explicit path: PeepholeFreeLSTM overrides cell()" in custom.explain_fast_path()
    # The custom cell really runs, in forward() and in step(): equal to an LSTM whose
    # forget-gate input bias is one larger.
    plain = LSTM(3, 4).double()
    plain.load_state_dict(custom.state_dict())
    with torch.no_grad():
        plain.bias_ih_l0[4:8] += 1
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    torch.testing.assert_close(custom(x)[0], plain(x)[0], **F64)
    torch.testing.assert_close(custom.step(x[:, 0])[0], plain(x[:, :1])[0][:, 0], **F64)


def test_dropout_between_layers_only_in_training():
    m = GRU(D, H, num_layers=2, dropout=0.5, fast_path=False).double()
    ref = nn.GRU(D, H, num_layers=2, dropout=0.5, batch_first=True).double()
    m.load_state_dict(ref.state_dict())
    x = torch.randn(B, 6, D, dtype=torch.float64)
    m.eval(), ref.eval()
    torch.testing.assert_close(m(x)[0], ref(x)[0], **F64)
    m.train()
    torch.manual_seed(0)
    assert not torch.allclose(m(x)[0], ref(x)[0])
    with pytest.warns(UserWarning, match="dropout=0.3 has no effect with num_layers=1"):
        LSTM(3, 4, dropout=0.3)


def test_build_recurrent():
    m = build_recurrent("gru", 3, 4, num_layers=2, bidirectional=True)
    assert isinstance(m, GRU) and m.num_layers == 2 and m.bidirectional
    with pytest.raises(ValueError, match=r"unknown cell 'lstmm'; choose one of 'rnn', 'lstm'"):
        build_recurrent("lstmm", 3, 4)


# --------------------------------------------------------------------------
# Errors name the value
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"hidden_size": 0}, r"hidden_size must be an integer >= 1, got 0"),
        ({"num_layers": 0}, r"num_layers must be an integer >= 1, got 0"),
        ({"dropout": 1.5}, r"dropout must be in \[0, 1\), got 1.5"),
        ({"dropout": "0.1"}, r"dropout must be a number in \[0, 1\), got '0.1'"),
        ({"proj_size": 8}, r"proj_size must be smaller than hidden_size \(8\), got 8"),
        ({"proj_size": -1}, r"proj_size must be an integer >= 0, got -1"),
        ({"bidirectional": "yes"}, r"bidirectional must be True or False, got 'yes'"),
    ],
)
def test_bad_hyperparameters(kwargs, message):
    args = {"input_size": 3, "hidden_size": 8} | kwargs
    with pytest.raises(ValueError, match=message):
        LSTM(**args)


def test_bad_nonlinearity():
    with pytest.raises(ValueError, match=r"nonlinearity must be one of 'tanh', 'relu', got 'elu'"):
        RNN(3, 4, nonlinearity="elu")


def test_bad_inputs_and_states():
    m = LSTM(3, 4, num_layers=2)
    x = torch.randn(2, 5, 3)
    with pytest.raises(ValueError, match=r"input must be 2-D or 3-D, got shape \(5,\)"):
        m(torch.randn(5))
    with pytest.raises(
        ValueError,
        match=r"input has 7 features in its last dimension but "
        r"input_size is 3 \(shape \(2, 5, 7\)\)",
    ):
        m(torch.randn(2, 5, 7))
    with pytest.raises(ValueError, match=r"state h must have shape \(2, 2, 4\), got \(1, 2, 4\)"):
        m(x, (torch.zeros(1, 2, 4), torch.zeros(2, 2, 4)))
    with pytest.raises(ValueError, match=r"LSTM state must be a pair \(h, c\), got Tensor"):
        m(x, torch.zeros(2, 2, 4))
    with pytest.raises(ValueError, match=r"input has no time steps"):
        m(torch.randn(2, 0, 3))
    with pytest.raises(ValueError, match=r"step\(\) needs bidirectional=False"):
        GRU(3, 4, bidirectional=True).step(torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"x_t has 5 features in its last dimension"):
        m.step(torch.randn(2, 5))


@pytest.mark.parametrize(
    "lengths,message",
    [
        ([5, 0], r"lengths must be between 1 and T=5 \(the input's steps\), got lengths\[1\]=0"),
        ([6, 2], r"lengths must be between 1 and T=5 \(the input's steps\), got lengths\[0\]=6"),
        ([5, 2, 1], r"lengths must have shape \(2,\), one length per sequence, got shape \(3,\)"),
        (torch.tensor([2.0, 3.0]), r"lengths must hold integers, got dtype torch.float32"),
        (
            torch.tensor([2, 3], device="meta"),
            r"lengths is on meta but the input is on cpu; put lengths on the CPU or on cpu",
        ),
        ("abc", r"lengths must be a 1-D tensor or list of integers, got str"),
    ],
)
def test_bad_lengths(lengths, message):
    with pytest.raises(ValueError, match=message):
        GRU(3, 4)(torch.randn(2, 5, 3), lengths=lengths)


def test_lengths_with_unbatched_input():
    with pytest.raises(ValueError, match=r"lengths needs a batched input"):
        RNN(3, 4)(torch.randn(5, 3), lengths=[3])


# --------------------------------------------------------------------------
# CUDA (run with -m gpu on a GPU machine)
# --------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name,cls,torch_cls,kwargs", MODULES, ids=IDS)
def test_cuda_fast_path_matches_torch_and_explicit(name, cls, torch_cls, kwargs, monkeypatch):
    # cuDNN's RNNs use TF32 tensor cores by default on Ampere and later (errors ~1e-3,
    # seen on an H100: 4e-4 absolute against the float32 explicit path); compare in
    # full float32, where a wrong weight layout or length handling still shows.
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    extra = {"num_layers": 2, "bidirectional": True}
    ref = torch_cls(D, H, batch_first=True, **kwargs, **extra).cuda()
    ours = cls(D, H, **kwargs, **extra).cuda()
    ours.load_state_dict(ref.state_dict())
    slow = cls(D, H, fast_path=False, **kwargs, **extra).cuda()
    slow.load_state_dict(ref.state_dict())
    x = torch.randn(B, 9, D, device="cuda")
    lengths = torch.tensor([9, 3, 5, 1], device="cuda")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. cuDNN's "weights are not contiguous" warning
        out = ours(x)[0]
        out_len = ours(x, lengths=lengths)[0]
    torch.testing.assert_close(out, ref(x)[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(out_len, slow(x, lengths=lengths)[0], atol=1e-5, rtol=1e-4)
