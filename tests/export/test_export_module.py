"""ONNX export of rnnkit.nn modules, checked against onnxruntime (max abs difference <= 1e-4).

The oracle is the rnnkit module itself on its fast path (torch's fused kernels,
which tests/nn check against torch.nn) and its ``step()``. The default tests
export a few representative graphs (each export costs seconds of tracing);
the whole matrix (every cell kind x whole/lengths/step/chunk) is marked slow.
The export twin's equations are checked for every configuration in eager
torch here too, where it costs nothing.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnkit.errors import UserError
from rnnkit.nn import GRU, LSTM, RNN, MinGRU, MinLSTM

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from rnnkit.export.onnx import export_module, run, session  # noqa: E402
from rnnkit.export.recurrent import ExportRecurrent  # noqa: E402

TOL = 1e-4
D, H = 5, 7

CONFIGS = {  # name -> module factory; every cell kind, layers, directions, projection
    "rnn-relu": lambda: RNN(D, H, num_layers=2, nonlinearity="relu"),
    "rnn-bi": lambda: RNN(D, H, bidirectional=True),
    "lstm": lambda: LSTM(D, H, num_layers=2),
    "lstm-bi-proj": lambda: LSTM(D, H, num_layers=2, bidirectional=True, proj_size=3),
    "lstm-proj": lambda: LSTM(D, H, num_layers=2, proj_size=4),
    "gru": lambda: GRU(D, H, num_layers=2),
    "gru-bi": lambda: GRU(D, H, num_layers=2, bidirectional=True),
    "mingru": lambda: MinGRU(D, H, num_layers=2),
    "minlstm": lambda: MinLSTM(D, H, num_layers=2),
}


def _module(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return CONFIGS[name]().eval()


def _parts(state: object) -> tuple[torch.Tensor, ...]:
    return tuple(state) if isinstance(state, tuple) else (state,)  # type: ignore[arg-type]


def _diff(a: np.ndarray, b: torch.Tensor) -> float:
    assert a.shape == tuple(b.shape), (a.shape, tuple(b.shape))
    return float(np.abs(a - b.detach().numpy()).max())


def _zeros(path: Path, B: int) -> dict[str, np.ndarray]:
    """The zero state the sidecar describes, for batch B."""
    state = json.loads(path.with_suffix(".json").read_text())["state"]
    shapes = {n: [B if d == "batch" else d for d in s] for n, s in state.items()}
    return {n: np.zeros(s, np.float32) for n, s in shapes.items()}


# -- the twin, eagerly: every configuration, free --------------------------------------


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
def test_the_export_twin_computes_the_modules_function(name: str, with_lengths: bool) -> None:
    m = _module(name)
    x = torch.randn(3, 6, D)
    lengths = torch.tensor([6, 1, 4]) if with_lengths else None
    with torch.no_grad():
        y, state = m(x, lengths=lengths)
        y2, state2 = ExportRecurrent(m)(x, lengths=lengths)
        assert (y - y2).abs().max() <= 1e-5
        for a, b in zip(_parts(state), _parts(state2), strict=True):
            assert (a - b).abs().max() <= 1e-5
        if not getattr(m, "bidirectional", False):
            s1 = s2 = None
            for t in range(x.size(1)):
                o1, s1 = m.step(x[:, t], s1)
                o2, s2 = ExportRecurrent(m).step(x[:, t], s2)
                assert (o1 - o2).abs().max() <= 1e-5


# -- ONNX graphs in onnxruntime ----------------------------------------------------


def _check_whole(m: torch.nn.Module, path: Path, with_lengths: bool) -> None:
    sess = session(path)
    for B, T in [(3, 7), (1, 1), (4, 2)]:  # dynamic batch and time, other than the example's
        x = torch.randn(B, T, D)
        lengths = torch.randint(1, T + 1, (B,)) if with_lengths else None
        if with_lengths:
            lengths[0] = T  # one full row, the others as drawn (1..T)
        feeds = {"x": x} | ({"lengths": lengths} if with_lengths else {})
        out = run(sess, feeds)
        with torch.no_grad():
            y, state = m(x, lengths=lengths)
        assert _diff(out["y"], y) <= TOL
        for name, part in zip(("h_n", "c_n"), _parts(state), strict=False):
            assert _diff(out[name], part) <= TOL


def _check_streaming(m: torch.nn.Module, path: Path, chunk: bool) -> None:
    sess = session(path)
    B, T = 2, 9
    x = torch.randn(B, T, D)
    feeds = _zeros(path, B)
    ys = []
    cuts = [0, 4, 5, T] if chunk else list(range(T + 1))  # chunks of 4, 1 and 4 steps
    for a, b in zip(cuts, cuts[1:], strict=False):
        out = run(sess, {"x": x[:, a:b] if chunk else x[:, a], **feeds})
        feeds = {n: out[f"{n}_n"] for n in feeds}  # the state goes back in
        ys.append(out["y"] if chunk else out["y"][:, None])
    with torch.no_grad():
        y, state = m(x)
    assert _diff(np.concatenate(ys, axis=1), y) <= TOL
    for name, part in zip(("h", "c"), _parts(state), strict=False):
        assert _diff(feeds[name], part) <= TOL


def test_whole_sequence_lstm_bidirectional_projected_with_lengths(tmp_path: Path) -> None:
    m = _module("lstm-bi-proj")
    path = export_module(m, tmp_path / "lstm.onnx", lengths=True)
    _check_whole(m, path, with_lengths=True)
    side = json.loads((tmp_path / "lstm.json").read_text())
    (graph,) = side["graphs"]
    assert [i["name"] for i in graph["inputs"]] == ["x", "lengths"]
    assert [o["name"] for o in graph["outputs"]] == ["y", "h_n", "c_n"]
    assert graph["inputs"][0]["shape"] == ["batch", "time", D]
    assert graph["outputs"][1]["shape"] == [4, "batch", 3]  # (L*dirs, B, P)


def test_step_graph_gru(tmp_path: Path) -> None:
    m = _module("gru")
    _check_streaming(m, export_module(m, tmp_path / "gru.onnx", streaming=True), chunk=False)


def test_chunk_graph_minlstm(tmp_path: Path) -> None:
    m = _module("minlstm")
    path = export_module(m, tmp_path / "minlstm.onnx", streaming="chunk")
    _check_streaming(m, path, chunk=True)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("kind", ["whole", "lengths", "step", "chunk"])
def test_every_configuration_matches_onnxruntime(name: str, kind: str, tmp_path: Path) -> None:
    m = _module(name)
    streaming = {"step": True, "chunk": "chunk"}.get(kind, False)
    if streaming and getattr(m, "bidirectional", False):
        pytest.skip("streaming graphs are for unidirectional modules")
    path = export_module(m, tmp_path / "m.onnx", streaming=streaming, lengths=kind == "lengths")
    if streaming:
        _check_streaming(m, path, chunk=kind == "chunk")
    else:
        _check_whole(m, path, with_lengths=kind == "lengths")


# -- what cannot be exported -----------------------------------------------------------


def test_streaming_a_bidirectional_module_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="^a streaming export needs a unidirectional module"):
        export_module(_module("gru-bi"), tmp_path / "m.onnx", streaming=True)
    assert not (tmp_path / "m.onnx").exists()


def test_a_torch_module_is_refused_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"got torch\.nn\.modules\.rnn\.LSTM \(load its state dict"):
        export_module(torch.nn.LSTM(3, 4), tmp_path / "m.onnx")


def test_bad_streaming_value_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="^streaming must be False, True, 'step' or 'chunk'"):
        export_module(_module("gru"), tmp_path / "m.onnx", streaming="yes")


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "onnxruntime" else real(n, *a)
    )
    with pytest.raises(UserError) as exc:
        export_module(_module("gru"), tmp_path / "m.onnx")
    assert str(exc.value) == (
        'ONNX export needs onnxruntime (not installed): pip install "rnnkit[onnx]"'
    )
