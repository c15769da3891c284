"""ONNX export of ``rnnkit.nn`` sequence modules, and what every application's exporter shares.

Longer than 400 lines: the module export and the helpers it is built from (which
every application's ``export.py`` shares) read best as one page.

:func:`export_module` writes one ONNX graph of an RNN, LSTM, GRU, MinGRU or
MinLSTM (every layer, both directions, LSTM ``proj_size``), with dynamic
batch and time axes, and a JSON sidecar beside it (``<name>.json``) that
names its inputs and outputs:

=================  ======================================  ===========================
graph              inputs                                  outputs
=================  ======================================  ===========================
whole sequence     ``x`` (B, T, D) [, ``lengths`` (B,)]    ``y`` (B, T, dirs*P),
                                                           ``h_n`` (L*dirs, B, P)
                                                           [, ``c_n`` (L*dirs, B, H)]
``"step"``         ``x`` (B, D), ``h`` [, ``c``]           ``y`` (B, P), ``h_n`` [, ``c_n``]
``"chunk"``        ``x`` (B, T, D), ``h`` [, ``c``]        ``y`` (B, T, P), ``h_n`` [, ``c_n``]
=================  ======================================  ===========================

The streaming graphs (``"step"``, ``"chunk"``; unidirectional modules) take
the state as an input and return the next one: feed ``h_n`` (and ``c_n``)
back as ``h`` (and ``c``), starting from zeros. The whole-sequence graph
starts from zeros; with ``lengths=True`` it takes each row's length as
``forward(x, lengths=...)`` does (padding gives zero outputs, the final
state is each row's own).

How it exports: ``torch.onnx.export`` (the ``torch.export``-based exporter,
which needs ``onnxscript``) of :class:`~rnnkit.export.recurrent.ExportRecurrent`,
whose time loop becomes an ONNX ``Scan``; see that module for why the fused
kernels are not exported as they are.

The helpers (:func:`require_onnx`, :func:`export_graph`, :func:`session`,
:func:`run`, :func:`describe`, :func:`write_sidecar`, :func:`check_opset`)
are what the applications' ``export.py`` files build on.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import json
import logging
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit.errors import UserError
from rnnkit.export.recurrent import ExportRecurrent, check_exportable, state_shapes

__all__ = [
    "EXTRA",
    "MIN_OPSET",
    "Shape",
    "check_opset",
    "describe",
    "export_copy",
    "export_graph",
    "export_module",
    "require_onnx",
    "run",
    "session",
    "sidecar_path",
    "state_of",
    "state_shapes",
    "state_tuple",
    "streaming_mode",
    "write_sidecar",
]

EXTRA = 'pip install "rnnkit[onnx]"'
MIN_OPSET = 18  # the torch.export-based exporter writes opset 18 and later
_PACKAGES = ("onnx", "onnxruntime", "onnxscript")

# A shape in a spec: ints are fixed sizes, strings name dynamic axes ("batch", "time").
Shape = tuple[int | str, ...]


def require_onnx() -> None:
    """Raise a one-line UserError naming the extra when onnx/onnxruntime/onnxscript is missing."""
    missing = [name for name in _PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(f"ONNX export needs {', '.join(missing)} (not installed): {EXTRA}")


def check_opset(opset: int | None) -> int | None:
    """``opset`` if the exporter and the installed onnx can write it (None: the default)."""
    if opset is None:
        return None
    import onnx.defs

    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise UserError(f"opset must be an integer from {MIN_OPSET} to {newest}, got {opset!r}")
    return opset


def streaming_mode(streaming: bool | str) -> str | None:
    """``None`` (whole sequence), ``"step"`` or ``"chunk"`` from a ``streaming`` argument."""
    if streaming is False or streaming is None:
        return None
    if streaming is True:
        return "step"
    if streaming in ("step", "chunk"):
        return str(streaming)
    raise UserError(f"streaming must be False, True, 'step' or 'chunk', got {streaming!r}")


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's progress lines, warnings and log chatter (errors still raise)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch._dynamo", "torch.export")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _set_shapes(value_infos: Any, spec: Mapping[str, Shape]) -> None:
    """Write the spec's shapes (named dynamic axes, fixed sizes) into ONNX value infos."""
    for vi in value_infos:
        shape = spec.get(vi.name)
        if shape is None:
            continue
        dims = vi.type.tensor_type.shape.dim
        del dims[:]
        for size in shape:
            dim = dims.add()
            if isinstance(size, str):
                dim.dim_param = size
            else:
                dim.dim_value = int(size)


def export_graph(
    wrapper: nn.Module,
    example: Sequence[Tensor],
    path: str | os.PathLike[str],
    *,
    inputs: Mapping[str, Shape],
    outputs: Mapping[str, Shape],
    opset: int | None = None,
    doc: str = "",
) -> Path:
    """Export ``wrapper(*example)`` to ``path`` as one ONNX file; return the path.

    ``inputs`` / ``outputs`` name the graph's inputs (in ``forward``'s argument
    order) and outputs (in return order) with their shapes; a string in a
    shape is a dynamic axis, and equal strings are the same size (one
    ``torch.export.Dim`` per name). Example inputs should be at least 2 long
    on every dynamic axis (torch.export specialises sizes 0 and 1). The file
    is checked with ``onnx.checker`` and holds its weights (no external data).
    """
    require_onnx()
    import onnx

    opset = check_opset(opset)
    dims: dict[str, Any] = {}
    dynamic: list[dict[int, Any] | None] = []
    for shape in inputs.values():
        named = [(i, s) for i, s in enumerate(shape) if isinstance(s, str)]
        dynamic.append({i: dims.setdefault(s, torch.export.Dim(s)) for i, s in named} or None)
    target = Path(path)
    if target.is_dir():
        raise UserError(f"{target} is a directory; pass a file path such as model.onnx")
    target.parent.mkdir(parents=True, exist_ok=True)
    wrapper = wrapper.eval()
    try:
        with _quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(
                wrapper,
                tuple(example),
                dynamo=True,
                input_names=list(inputs),
                output_names=list(outputs),
                dynamic_shapes=tuple(dynamic),
                opset_version=opset,
                optimize=False,  # onnxruntime optimises the graph when it loads it
                external_data=False,
                verbose=False,
            )
    except UserError:
        raise
    except Exception as exc:  # the exporter raises many kinds; say which graph failed
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"torch.onnx.export could not export {type(wrapper).__name__} ({first}); "
            "set RNNKIT_DEBUG=1 for the traceback"
        ) from exc
    model = program.model_proto
    _set_shapes(model.graph.input, inputs)
    _set_shapes(model.graph.output, outputs)
    from rnnkit import __version__

    model.producer_name, model.producer_version = "rnnkit", __version__
    if doc:
        model.doc_string = doc
    onnx.checker.check_model(model)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    onnx.save_model(model, str(tmp))
    os.replace(tmp, target)
    return target


def session(path: str | os.PathLike[str], *, threads: int = 1) -> Any:
    """An onnxruntime CPU ``InferenceSession`` of ``path`` using ``threads`` threads."""
    require_onnx()
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle threads do not spin-wait for the next call: spinning took the CPU from the
    # torch code between calls (per-step latency of torch and rnnkit doubled beside it).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run(sess: Any, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Run an onnxruntime session (or the path of a graph) on ``feeds``; outputs by name.

    Tensors are converted to NumPy; inputs the graph does not take are an error.
    """
    if isinstance(sess, (str, os.PathLike)):
        sess = session(sess)
    wanted = {i.name for i in sess.get_inputs()}
    extra = set(feeds) - wanted
    if extra:
        name = sorted(extra)[0]
        raise UserError(f"the graph has no input {name!r}; its inputs: {sorted(wanted)}")
    arrays = {
        k: (v.detach().cpu().numpy() if isinstance(v, Tensor) else np.asarray(v))
        for k, v in feeds.items()
    }
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, arrays), strict=True))


def describe(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A graph's file name, opset and its inputs and outputs (name, dtype, shape)."""
    require_onnx()
    import onnx

    model = onnx.load(str(path), load_external_data=False)

    def values(infos: Any) -> list[dict[str, Any]]:
        out = []
        for vi in infos:
            tt = vi.type.tensor_type
            dtype = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type).name
            shape = [d.dim_param or d.dim_value for d in tt.shape.dim]
            out.append({"name": vi.name, "dtype": dtype, "shape": shape})
        return out

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return {
        "file": Path(path).name,
        "opset": opset,
        "inputs": values(model.graph.input),
        "outputs": values(model.graph.output),
    }


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    """``model.onnx`` -> ``model.json``: where the description of a graph goes."""
    return Path(path).with_suffix(".json")


def write_sidecar(path: str | os.PathLike[str], info: Mapping[str, Any]) -> Path:
    """Write ``info`` as JSON beside the graph ``path`` (``<name>.json``); return its path."""
    from rnnkit import __version__

    target = sidecar_path(path)
    body = {"format": "rnnkit-onnx/1", "rnnkit_version": __version__, **info}
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(body, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target


def export_copy(model: nn.Module, *recurrent: str) -> nn.Module:
    """A CPU, float32, eval-mode copy of ``model`` whose recurrent submodules (attribute
    names in ``recurrent``) are replaced by their :class:`ExportRecurrent` twins, so the
    application's own ``forward``/``step`` code runs unchanged in the exported graph."""
    m = copy.deepcopy(model).cpu().float().eval()
    for name in recurrent:
        setattr(m, name, ExportRecurrent(getattr(m, name)))
    return m.eval()


def state_tuple(state: Any) -> tuple[Tensor, ...]:
    """A recurrent state as a tuple of tensors: ``(h,)`` or ``(h, c)``."""
    return tuple(state) if isinstance(state, (tuple, list)) else (state,)


def state_of(h: Tensor, c: Tensor | None) -> Any:
    """The state a module takes from graph inputs ``h`` and (LSTM) ``c``."""
    return h if c is None else (h, c)


# -- rnnkit.nn modules ---------------------------------------------------------------


class _Whole(nn.Module):
    def __init__(self, rnn: ExportRecurrent, with_lengths: bool) -> None:
        super().__init__()
        self.rnn, self.with_lengths = rnn, with_lengths

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, ...]:
        y, state = self.rnn(x, None, lengths if self.with_lengths else None)
        return (y, *state_tuple(state))


class _Stream(nn.Module):
    def __init__(self, rnn: ExportRecurrent, chunk: bool) -> None:
        super().__init__()
        self.rnn, self.chunk = rnn, chunk

    def forward(self, x: Tensor, h: Tensor, c: Tensor | None = None) -> tuple[Tensor, ...]:
        state = state_of(h, c)
        y, state = self.rnn(x, state) if self.chunk else self.rnn.step(x, state)
        return (y, *state_tuple(state))


def export_module(
    module: nn.Module,
    path: str | os.PathLike[str],
    *,
    streaming: bool | str = False,
    lengths: bool = False,
    opset: int | None = None,
) -> Path:
    """Export an ``rnnkit.nn`` RNN/LSTM/GRU/MinGRU/MinLSTM to ONNX (see the module doc).

    Args:
        module: the module (copied to the CPU in eval mode; the original is untouched).
        path: the ``.onnx`` file to write; ``<name>.json`` beside it describes it.
        streaming: False for the whole-sequence graph; True or ``"step"`` for one
            step (x (B, D)), ``"chunk"`` for a chunk of steps (x (B, T, D)), both
            with the state as input and output (unidirectional modules only).
        lengths: whole-sequence graph only: take a ``lengths`` (B,) int64 input.
        opset: the ONNX opset (default: the exporter's, 18).

    Returns:
        The path of the ``.onnx`` file.
    """
    require_onnx()
    check_exportable(module)
    mode = streaming_mode(streaming)
    m = copy.deepcopy(module).cpu().float().eval()
    rnn = ExportRecurrent(m)
    if mode and rnn.bidirectional:
        raise UserError(
            "a streaming export needs a unidirectional module (the reverse direction of a "
            "bidirectional one reads the sequence from its end); export it without streaming"
        )
    if mode and lengths:
        raise UserError("lengths=True is for the whole-sequence graph; a streaming graph has none")
    D = m.input_size
    dirs = 2 if rnn.bidirectional else 1
    states = state_shapes(m)
    P = states["h"][2]
    outputs: dict[str, Shape] = {}
    if mode is None:
        inputs: dict[str, Shape] = {"x": ("batch", "time", D)}
        example: list[Tensor] = [torch.randn(2, 3, D)]
        if lengths:
            inputs["lengths"] = ("batch",)
            example.append(torch.tensor([3, 2]))
        outputs["y"] = ("batch", "time", dirs * P)
        wrapper: nn.Module = _Whole(rnn, lengths)
    else:
        x_shape: Shape = ("batch", D) if mode == "step" else ("batch", "time", D)
        inputs = {"x": x_shape, **states}
        example = [torch.randn(2, D) if mode == "step" else torch.randn(2, 3, D)]
        example += [torch.zeros(s[0], 2, s[2]) for s in states.values()]
        outputs["y"] = ("batch", P) if mode == "step" else ("batch", "time", P)
        wrapper = _Stream(rnn, chunk=mode == "chunk")
    outputs.update({f"{n}_n": s for n, s in states.items()})
    kind = type(module).__name__
    target = export_graph(wrapper, example, path, inputs=inputs, outputs=outputs, opset=opset)
    loop = "" if mode is None else "; feed " + ", ".join(f"{n}_n back as {n}" for n in states)
    write_sidecar(
        target,
        {
            "what": f"rnnkit.nn.{kind}" + (f", streaming ({mode})" if mode else ", whole sequence"),
            "module": {
                "class": kind,
                "input_size": D,
                "hidden_size": m.hidden_size,
                "num_layers": m.num_layers,
                "bidirectional": rnn.bidirectional,
                "proj_size": getattr(m, "proj_size", 0),
            },
            "state": {n: list(s) for n, s in states.items()},
            "usage": "inputs are batch-first float32; the initial state is zeros" + loop,
            "graphs": [describe(target)],
        },
    )
    return target
