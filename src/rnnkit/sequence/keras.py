"""SequenceRegressor / SequenceClassifier <-> Keras 3 models (``docs/keras.md``).

A Keras model maps onto :class:`~rnnkit.sequence.model.SequenceNet` when it is
what the estimators build: recurrent layers of one kind and size
(``SimpleRNN`` with tanh, ``LSTM`` or ``GRU``; all ``Bidirectional`` or none),
each but the last with ``return_sequences=True``, then one ``Dense`` head
(``Masking`` and ``Dropout`` layers may sit anywhere: a mask becomes
``lengths=``, dropout is inactive at prediction). Stacked Keras layers become
the layers of one ``num_layers`` module, the ``Dense`` becomes the head.
Other models load as modules with ``rnnkit.interop.keras.from_keras``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from rnnkit.errors import UserError
from rnnkit.interop.keras import (
    Dense,
    Dropout,
    KerasStack,
    Masking,
    Recurrent,
    from_keras,
    to_keras,
)
from rnnkit.nn import GRU, LSTM, RNN
from rnnkit.sequence.model import SequenceNet

__all__ = ["estimator_from_keras", "estimator_to_keras"]

_CELL = {RNN: "rnn", LSTM: "lstm", GRU: "gru"}
_KERAS_NAME = {"rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}


def _describe(block: nn.Module) -> str:
    if isinstance(block, Recurrent):
        rnn = block.rnn
        name = f"{_KERAS_NAME.get(_CELL.get(type(rnn), ''), type(rnn).__name__)}"
        extra = ", relu" if getattr(rnn, "nonlinearity", "tanh") != "tanh" else ""
        extra += ", return_sequences" if block.return_sequences else ""
        text = f"{name}({rnn.hidden_size}{extra})"
        return f"Bidirectional({text})" if rnn.bidirectional else text
    if isinstance(block, Dense):
        return f"Dense({block.linear.out_features}, {block.activation})"
    return type(block).__name__


def _structure(
    stack: KerasStack, heads: tuple[str, ...], owner: str
) -> tuple[list[Recurrent], Dense]:
    """The recurrent blocks and the head of ``stack``, or a one-line error naming both."""
    blocks = [b for b in stack.layers if not isinstance(b, Masking | Dropout)]
    rec, head = blocks[:-1], blocks[-1] if blocks else None
    ok = bool(rec) and isinstance(head, Dense) and all(isinstance(b, Recurrent) for b in rec)
    if ok:
        rnns = [b.rnn for b in rec]
        ok = (
            len({(type(r), r.hidden_size, r.bidirectional) for r in rnns}) == 1
            and all(getattr(r, "nonlinearity", "tanh") == "tanh" for r in rnns)
            and [b.return_sequences for b in rec] == [True] * (len(rec) - 1) + [False]
            and head.activation in heads
        )
    if not ok:
        found = " -> ".join(_describe(b) for b in blocks) or "no layers"
        raise UserError(
            f"{owner}.from_keras takes recurrent layers of one kind and size (SimpleRNN with "
            f"tanh, LSTM or GRU, optionally Bidirectional; the last without return_sequences) "
            f"then one Dense ({' or '.join(heads)}); this model is {found}: load it with "
            "rnnkit.interop.keras.from_keras instead"
        )
    return rec, head  # type: ignore[return-value]


def estimator_from_keras(cls: type, model: Any, params: dict[str, Any], **outputs: Any) -> Any:
    """A fitted ``cls`` (SequenceRegressor/SequenceClassifier) holding a Keras model's weights.

    ``params``: the estimator's other constructor arguments; ``outputs`` go to
    ``cls._keras_outputs`` (the classifier's ``classes``).
    """
    stack = model if isinstance(model, KerasStack) else from_keras(model)
    if not isinstance(stack, KerasStack):
        stack = KerasStack([stack])  # a single layer: reported as not a model below
    rec, head = _structure(stack, cls._keras_heads, cls.__name__)
    first = rec[0].rnn
    arch = {
        "cell": _CELL[type(first)],
        "hidden_size": first.hidden_size,
        "num_layers": len(rec),
        "bidirectional": first.bidirectional,
    }
    for name, value in arch.items():
        if name in params and params[name] != value:
            raise UserError(
                f"{name}={params[name]!r} does not match the Keras model ({name}={value!r}); "
                "leave it out: the architecture comes from the model"
            )
    est = cls(**{"warm_start": True, **params, **arch})
    cfg = est._checked_config()
    K = head.linear.out_features
    net = SequenceNet(cfg.model, first.input_size, K)
    state = {k: torch.zeros_like(v) for k, v in net.state_dict().items()}  # Keras use_bias=False
    for layer, block in enumerate(rec):
        for name, value in block.rnn.state_dict().items():  # weight_ih_l0[_reverse], ...
            state["rnn." + name.replace("_l0", f"_l{layer}", 1)] = value
    state["head.weight"] = head.linear.weight.detach()
    if head.linear.bias is not None:
        state["head.bias"] = head.linear.bias.detach()
    order = est._keras_outputs(K, **outputs)  # the head's rows in the order of classes_
    state["head.weight"], state["head.bias"] = (
        state["head.weight"][order],
        state["head.bias"][order],
    )
    net.load_state_dict(state)
    est.n_features_in_ = first.input_size
    est.model_ = net.eval()
    est._fitted_config = cfg
    est.metrics_ = {}
    return est


def estimator_to_keras(est: Any, masking: float | None) -> Any:
    """A Keras ``Sequential`` model computing what the fitted estimator's network computes."""
    net: SequenceNet = est.model_
    if net.rnn_reverse is not None or type(net.rnn) not in _CELL:
        raise UserError(
            f"cell={net.cell!r} has no Keras layer; Keras has SimpleRNN (rnn), LSTM and GRU"
        )
    blocks: list[nn.Module] = [Recurrent(net.rnn, return_sequences=False)]
    if net.dropout.p:
        blocks.append(Dropout(net.dropout.p))
    blocks.append(Dense(net.head, est._keras_output))
    return to_keras(KerasStack(blocks), masking=masking)


def sorted_classes(classes: Any, K: int) -> tuple[np.ndarray, np.ndarray]:
    """``classes`` (one per Keras output, in output order) sorted, and the row order."""
    arr = np.arange(K) if classes is None else np.asarray(classes)
    if arr.shape != (K,) or len(np.unique(arr)) != K:
        raise UserError(
            f"classes must hold {K} distinct labels, one per output of the Keras model, "
            f"got {classes!r}"
        )
    order = np.argsort(arr, kind="stable")
    return arr[order], order
