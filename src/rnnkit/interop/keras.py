"""Keras 3 <-> rnnkit: recurrent layers and small models, weights carried over exactly.

Keras 3 (any backend; rnnkit sets ``KERAS_BACKEND=torch`` when it is unset,
so no TensorFlow is needed) is imported only when a converter is called; when
it is missing the error names the extra: ``pip install "rnnkit[keras]"``.

=========================================  ===========================================
Keras 3                                    rnnkit / torch
=========================================  ===========================================
``SimpleRNN(H)`` (tanh or relu)            ``rnnkit.nn.RNN(D, H, nonlinearity=...)``
``LSTM(H)``                                ``rnnkit.nn.LSTM(D, H)``
``GRU(H)`` (``reset_after=True``)          ``rnnkit.nn.GRU(D, H)``
``Bidirectional(layer)`` (concat)          the same module with ``bidirectional=True``
stacked layers                             one ``KerasStack`` block per layer
``Dense(K)`` / ``TimeDistributed(Dense)``  ``torch.nn.Linear(in, K)`` + the activation
``Dropout``, ``Masking``, ``Input``        ``Dropout``, ``Masking`` blocks (mask -> lengths)
=========================================  ===========================================

The weight layouts (transposes, the GRU's gate order, one bias vs two) are in
:mod:`rnnkit.interop._keras_layout`. What has no exact counterpart is refused
with a one-line error: GRU ``reset_after=False``, activations other than the
defaults (SimpleRNN may use relu), ``go_backwards`` outside ``Bidirectional``,
``merge_mode`` other than ``"concat"``, ``stateful``, LSTM ``proj_size``, and
layers outside the table. Keras' ``dropout``/``recurrent_dropout`` act in
training only and are not carried over.

``from_keras(model)`` runs as the Keras model does: ``stack(x)`` equals
``model(x)``; a ``Masking`` layer becomes each row's length (trailing padding
only: a masked step followed by a real one is refused), or pass ``lengths=``.
Past a row's length the outputs of a sequence differ (rnnkit gives zeros,
Keras repeats the last output); every valid step and the final outputs agree.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit.errors import UserError
from rnnkit.interop._keras_layout import keras_to_torch, torch_to_keras
from rnnkit.interop.stack import ACTIVATIONS, Dense, Dropout, KerasStack, Masking, Recurrent
from rnnkit.nn import GRU, LSTM, RNN

__all__ = [
    "INSTALL",
    "Dense",
    "Dropout",
    "KerasStack",
    "Masking",
    "Recurrent",
    "from_keras",
    "load_keras_model",
    "to_keras",
    "to_keras_layers",
]

INSTALL = 'pip install "rnnkit[keras]"'
_KIND = {RNN: "rnn", LSTM: "lstm", GRU: "gru", nn.RNN: "rnn", nn.LSTM: "lstm", nn.GRU: "gru"}
_MODULE = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
_KERAS_NAME = {"rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}


def _keras() -> Any:
    """The ``keras`` module (Keras 3), or a one-line error saying how to install it."""
    if "keras" not in sys.modules:
        os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras' own default needs TensorFlow
    try:
        import keras
    except ImportError as exc:
        if exc.name == "keras":
            raise UserError(f"Keras 3 is not installed; install it with: {INSTALL}") from None
        raise UserError(
            f"Keras could not be imported ({exc}); rnnkit runs it on the torch backend: "
            "set KERAS_BACKEND=torch"
        ) from None
    if not str(keras.__version__).startswith(("3.", "4.")):
        raise UserError(f"rnnkit needs Keras 3, found Keras {keras.__version__}: {INSTALL}")
    return keras


# ---------------------------------------------------------------- Keras -> rnnkit


def _activation(cfg: dict[str, Any], key: str) -> str:
    value = cfg.get(key)
    return value if isinstance(value, str) else repr(value)


def _recurrent_kind(layer: Any, keras: Any) -> str | None:
    for kind, name in _KERAS_NAME.items():
        if isinstance(layer, getattr(keras.layers, name)):
            return kind
    return None


def _check_recurrent(layer: Any, kind: str, *, in_bidirectional: bool = False) -> str:
    """Refuse what torch cannot compute; return the nonlinearity (RNN) or "tanh"."""
    cfg = layer.get_config()
    name = f"{_KERAS_NAME[kind]} layer {layer.name!r}"
    act = _activation(cfg, "activation")
    allowed = ("tanh", "relu") if kind == "rnn" else ("tanh",)
    if act not in allowed:
        raise UserError(
            f"{name} has activation={act}; rnnkit's {kind.upper()} computes "
            f"{' or '.join(allowed)} only: retrain with the default activation"
        )
    if kind != "rnn" and _activation(cfg, "recurrent_activation") != "sigmoid":
        raise UserError(
            f"{name} has recurrent_activation={_activation(cfg, 'recurrent_activation')}; "
            "torch's gates are sigmoid: retrain with the default recurrent_activation"
        )
    if kind == "gru" and not cfg.get("reset_after", True):
        raise UserError(
            f"{name} has reset_after=False (the reset gate before the recurrent product), "
            "which has no torch equivalent: torch applies it after (reset_after=True, Keras' "
            "default); retrain with reset_after=True"
        )
    if cfg.get("stateful"):
        raise UserError(
            f"{name} is stateful; rnnkit modules take the state as an argument "
            "(module(x, state)): convert a copy built with stateful=False"
        )
    if cfg.get("go_backwards") and not in_bidirectional:
        raise UserError(
            f"{name} has go_backwards=True; reverse the input instead "
            "(x.flip(1)) or use Bidirectional"
        )
    if not layer.built:
        raise UserError(f"{name} has no weights yet; build it (call it on data) first")
    return act


def _recurrent_from_keras(layer: Any, keras: Any) -> Recurrent:
    bidirectional = isinstance(layer, keras.layers.Bidirectional)
    directions = [layer.forward_layer, layer.backward_layer] if bidirectional else [layer]
    if bidirectional and layer.merge_mode != "concat":
        raise UserError(
            f"Bidirectional layer {layer.name!r} has merge_mode={layer.merge_mode!r}; torch "
            "concatenates the two directions: use merge_mode='concat'"
        )
    kinds = {_recurrent_kind(d, keras) for d in directions}
    kind = kinds.pop() if len(kinds) == 1 else None
    if kind is None:
        raise UserError(f"Bidirectional layer {layer.name!r} mixes layer kinds or wraps another")
    acts = {_check_recurrent(d, kind, in_bidirectional=bidirectional) for d in directions}
    units = {d.get_config()["units"] for d in directions}
    use_bias = {d.get_config()["use_bias"] for d in directions}
    if len(acts) > 1 or len(units) > 1 or len(use_bias) > 1:
        raise UserError(f"the two directions of {layer.name!r} differ in activation, units or bias")
    H, bias = units.pop(), use_bias.pop()
    params = [keras_to_torch(kind, d.get_weights(), units=H, use_bias=bias) for d in directions]
    extra = {"nonlinearity": acts.pop()} if kind == "rnn" else {}
    D = params[0]["weight_ih"].shape[1]
    module = _MODULE[kind](D, H, bias=bias, bidirectional=bidirectional, **extra)
    with torch.no_grad():
        for direction, p in enumerate(params):
            suffix = "_l0" + ("_reverse" if direction else "")
            for name, value in p.items():
                getattr(module, name + suffix).copy_(torch.from_numpy(value))
    return Recurrent(module, return_sequences=bool(layer.return_sequences))


def _dense_from_keras(layer: Any) -> Dense:
    cfg = layer.get_config()
    weights = layer.get_weights()
    kernel = np.asarray(weights[0], dtype=np.float32)  # (in, K)
    linear = nn.Linear(kernel.shape[0], kernel.shape[1], bias=bool(cfg["use_bias"]))
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(kernel.T.copy()))  # (K, in)
        if cfg["use_bias"]:
            linear.bias.copy_(torch.from_numpy(np.asarray(weights[1], dtype=np.float32)))
    return Dense(linear, _activation(cfg, "activation"))


def _layer_from_keras(layer: Any, keras: Any) -> list[nn.Module]:
    """The blocks of one Keras layer (none for an input layer)."""
    L = keras.layers
    if isinstance(layer, L.InputLayer):
        return []
    if isinstance(layer, keras.Sequential):  # a nested Sequential: its layers, in order
        return [block for inner in layer.layers for block in _layer_from_keras(inner, keras)]
    if isinstance(layer, L.Bidirectional) or _recurrent_kind(layer, keras):
        cfg = layer.get_config()
        if cfg.get("return_state"):
            raise UserError(f"layer {layer.name!r} has return_state=True; a chain takes one output")
        return [_recurrent_from_keras(layer, keras)]
    if isinstance(layer, L.TimeDistributed) and isinstance(layer.layer, L.Dense):
        return [_dense_from_keras(layer.layer)]
    if isinstance(layer, L.Dense):
        if not layer.built:
            raise UserError(f"Dense layer {layer.name!r} has no weights yet; build it first")
        return [_dense_from_keras(layer)]
    if type(layer) is L.Dropout:
        return [Dropout(float(layer.rate))]
    if isinstance(layer, L.Masking):
        return [Masking(float(layer.mask_value))]
    raise UserError(
        f"layer {layer.name!r} ({type(layer).__name__}) has no rnnkit counterpart; rnnkit "
        "converts SimpleRNN, LSTM, GRU, Bidirectional, Dense, Dropout, Masking and Input"
    )


def _chain(model: Any, keras: Any) -> list[Any]:
    """The layers of a model that runs them one after another, else a one-line error."""
    layers = list(model.layers)
    if isinstance(model, keras.Sequential):
        return layers
    try:
        ok = len(model.inputs) == 1 and len(model.outputs) == 1
        ok = ok and all(b.input is a.output for a, b in zip(layers, layers[1:], strict=False))
    except (AttributeError, ValueError):  # a layer called twice has no single input
        ok = False
    if not ok:
        raise UserError(
            f"model {model.name!r} is not a chain of layers; rnnkit converts a Sequential "
            "model or a functional one whose every layer takes the previous layer's output"
        )
    return layers


def load_keras_model(path: str | os.PathLike[str]) -> Any:
    """Read a ``.keras`` (or legacy ``.h5``) file with Keras; a one-line error if it cannot."""
    keras = _keras()
    p = Path(path)
    if not p.is_file():
        raise UserError(f"Keras model file {p} does not exist; pass the path of a .keras file")
    try:
        return keras.saving.load_model(p)
    except Exception as exc:  # Keras raises many kinds; the user needs the one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise UserError(f"Keras cannot read {p} ({type(exc).__name__}: {first})") from None


def from_keras(model: Any) -> nn.Module:
    """A Keras 3 model, layer or ``.keras`` file as rnnkit/torch modules with its weights.

    - a ``SimpleRNN``/``LSTM``/``GRU``/``Bidirectional`` layer -> the ``rnnkit.nn``
      ``RNN``/``LSTM``/``GRU`` module (``module(x)`` returns ``(output, state)``;
      Keras' output without ``return_sequences`` is ``output[:, -1]`` for one direction);
    - a ``Dense`` layer without activation -> ``torch.nn.Linear``;
    - a model (``Sequential`` or a functional chain) or a path -> a :class:`KerasStack`.
    """
    keras = _keras()
    if isinstance(model, str | os.PathLike):
        model = load_keras_model(model)
    if isinstance(model, keras.Model):
        blocks = [b for layer in _chain(model, keras) for b in _layer_from_keras(layer, keras)]
        return KerasStack(blocks).eval()
    if not isinstance(model, keras.layers.Layer):
        raise UserError(
            f"from_keras takes a Keras model, layer or .keras path, got {type(model).__name__}"
        )
    blocks = _layer_from_keras(model, keras)
    if len(blocks) == 1 and isinstance(blocks[0], Recurrent):
        return blocks[0].rnn
    if len(blocks) == 1 and isinstance(blocks[0], Dense) and blocks[0].activation == "linear":
        return blocks[0].linear
    return KerasStack(blocks).eval()


# ---------------------------------------------------------------- rnnkit -> Keras


def _numpy(t: Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().float().cpu().numpy()


def _recurrent_to_keras(keras: Any, rnn: nn.Module, return_sequences: bool) -> list[Any]:
    """One Keras layer per torch layer (``Bidirectional`` for both directions)."""
    kind = _KIND.get(type(rnn))
    if kind is None:
        raise UserError(
            f"{type(rnn).__name__} has no Keras layer; rnnkit converts RNN, LSTM and GRU "
            "(rnnkit.nn or torch.nn)"
        )
    if getattr(rnn, "proj_size", 0):
        raise UserError(f"an LSTM with proj_size={rnn.proj_size} has no Keras layer")
    dirs = 2 if rnn.bidirectional else 1
    out: list[Any] = []
    for layer in range(rnn.num_layers):
        size = rnn.input_size if layer == 0 else dirs * rnn.hidden_size
        kw: dict[str, Any] = {
            "units": rnn.hidden_size,
            "use_bias": bool(rnn.bias),
            "return_sequences": return_sequences or layer < rnn.num_layers - 1,
        }
        if kind == "rnn":
            kw["activation"] = rnn.nonlinearity
        if kind == "gru":
            kw["reset_after"] = True
        k_layer = getattr(keras.layers, _KERAS_NAME[kind])(**kw)
        if dirs == 2:
            k_layer = keras.layers.Bidirectional(k_layer, merge_mode="concat")
        k_layer.build((None, None, size))
        weights = []
        for direction in range(dirs):
            sfx = f"_l{layer}" + ("_reverse" if direction else "")
            names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            params = {n: _numpy(getattr(rnn, n + sfx, None)) for n in names}
            weights += torch_to_keras(kind, params)
        k_layer.set_weights(weights)
        if layer and rnn.dropout:  # torch drops between layers: a Keras Dropout there
            out.append(keras.layers.Dropout(rnn.dropout))
        out.append(k_layer)
    return out


def _dense_to_keras(keras: Any, linear: nn.Linear, activation: str) -> Any:
    dense = keras.layers.Dense(
        linear.out_features, activation=activation, use_bias=linear.bias is not None
    )
    dense.build((None, linear.in_features))
    weights = [_numpy(linear.weight).T.copy()]  # (K, in) -> (in, K)
    if linear.bias is not None:
        weights.append(_numpy(linear.bias))
    dense.set_weights(weights)
    return dense


def to_keras_layers(
    module: nn.Module, *, return_sequences: bool = True, activation: str = "linear"
) -> list[Any]:
    """Keras 3 layers, built and holding ``module``'s weights.

    ``module``: an ``rnnkit.nn``/``torch.nn`` ``RNN``/``LSTM``/``GRU`` (one Keras
    layer per torch layer; ``return_sequences`` applies to the last), a
    ``torch.nn.Linear`` (a ``Dense`` with ``activation``) or a :class:`KerasStack`.
    """
    keras = _keras()
    if isinstance(module, KerasStack):
        return [layer for block in module.layers for layer in to_keras_layers(block)]
    if isinstance(module, Recurrent):
        return _recurrent_to_keras(keras, module.rnn, module.return_sequences)
    if isinstance(module, Dense):
        return [_dense_to_keras(keras, module.linear, module.activation)]
    if isinstance(module, Dropout):
        return [keras.layers.Dropout(module.dropout.p)]
    if isinstance(module, Masking):
        return [keras.layers.Masking(mask_value=module.mask_value)]
    if isinstance(module, nn.Linear):
        if activation not in ACTIVATIONS:
            raise UserError(f"activation must be one of {', '.join(ACTIVATIONS)}")
        return [_dense_to_keras(keras, module, activation)]
    return _recurrent_to_keras(keras, module, return_sequences)


def _input_size(module: nn.Module) -> tuple[int | None, ...]:
    """The shape of ``keras.Input`` for ``module``: (features,) or (time, features)."""
    if isinstance(module, nn.Linear):
        return (module.in_features,)
    blocks = list(module.layers) if isinstance(module, KerasStack) else [module]
    for block in blocks:
        inner = block
        if isinstance(block, Recurrent):
            inner = block.rnn
        elif isinstance(block, Dense):
            inner = block.linear
        if isinstance(inner, nn.Linear):
            return (None, inner.in_features)
        if hasattr(inner, "input_size"):
            return (None, int(inner.input_size))
    raise UserError(f"{type(module).__name__} has no layer with weights to convert")


def to_keras(obj: Any, *, return_sequences: bool = True, masking: float | None = None) -> Any:
    """A Keras 3 ``Sequential`` model that computes what ``obj`` computes.

    ``obj``: an ``rnnkit.nn``/``torch.nn`` RNN/LSTM/GRU (the model returns the
    output sequence, or with ``return_sequences=False`` the last output), a
    ``torch.nn.Linear``, a :class:`KerasStack`, or an estimator with a
    ``to_keras()`` method (``SequenceRegressor``, ``SequenceClassifier``).
    ``masking``: start with ``Masking(mask_value=masking)``, the Keras form of
    rnnkit's ``lengths`` (pad rows with that value).
    """
    if not isinstance(obj, nn.Module) and callable(getattr(obj, "to_keras", None)):
        return obj.to_keras(masking=masking)
    if not isinstance(obj, nn.Module):
        raise UserError(f"to_keras takes a torch module or an estimator, got {type(obj).__name__}")
    keras = _keras()
    layers = to_keras_layers(obj, return_sequences=return_sequences)
    head = [keras.Input(shape=_input_size(obj))]
    has_mask = any(isinstance(layer, keras.layers.Masking) for layer in layers)
    if masking is not None and not has_mask:
        head.append(keras.layers.Masking(mask_value=float(masking)))
    return keras.Sequential(head + layers)
