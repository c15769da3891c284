"""ONNX export of a fitted Forecaster's networks (``Forecaster.export_onnx``).

The ensemble of :class:`~rnnkit.forecast.model.ForecastNet` (their own
``predict``, the recurrent encoders as their export twins), in model units:

- whole window (both modes): ``x`` (B, L, D) scaled inputs of the last
  ``lookback`` steps [, ``known_future`` (B, H, Ck) scaled known covariates
  of the H forecast steps] -> ``point``, ``lower``, ``upper`` (B, H), the
  members' forecasts averaged (as :func:`rnnkit.forecast.model.ensemble_forecast`
  does). An autoregressive model runs its H feedback steps inside the graph.
- streaming (``streaming=True``, autoregressive models only), one step of
  every member k: ``x`` (K, B, D) [, ``known_next`` (B, Ck), the known
  covariates of the step being forecast], ``h`` (K, L, B, Hd) [, ``c``] ->
  ``point``, ``lower``, ``upper`` (K, B), ``h_n`` [, ``c_n``]. Feed the window
  step by step from a zero state, then each member's own ``point`` (with the
  next known covariates) as its next input; average over K at the end.

Not in the graphs: the scaling of the inputs and the way back to the data's
units (:func:`rnnkit.forecast.windows.model_inputs` and
:func:`rnnkit.forecast.scaling.to_levels`, in Python; the fitted scalers are
in the sidecar JSON), and calendar features of future time stamps.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from rnnkit.errors import UserError
from rnnkit.export.onnx import (
    Shape,
    describe,
    export_copy,
    export_graph,
    state_of,
    state_shapes,
    state_tuple,
    streaming_mode,
    write_sidecar,
)
from rnnkit.forecast.model import ForecastNet

__all__ = ["export_onnx"]


class _Forecast(nn.Module):
    """x (B, L, D) [, known_future (B, H, Ck)] -> the ensemble's point, lower, upper (B, H)."""

    def __init__(self, nets: list[ForecastNet]) -> None:
        super().__init__()
        self.nets = nn.ModuleList(nets)

    def forward(self, x: Tensor, known_future: Tensor | None = None) -> tuple[Tensor, ...]:
        outs = [net.predict(x, known_future) for net in self.nets]
        # Average quantiles over the ensemble (Vincentization), as ensemble_forecast does.
        return tuple(torch.stack([o[i] for o in outs]).mean(0) for i in range(3))


class _Step(nn.Module):
    """One autoregressive step of every member: x (K, B, D), state (K, L, B, Hd) each."""

    def __init__(self, nets: list[ForecastNet], lstm: bool, known: bool) -> None:
        super().__init__()
        self.nets = nn.ModuleList(nets)
        self.lstm, self.known = lstm, known

    def forward(
        self, x: Tensor, h: Tensor, second: Tensor | None = None, third: Tensor | None = None
    ) -> tuple[Tensor, ...]:
        """Inputs ``x, h [, c] [, known_next]``."""
        c = second if self.lstm else None
        known_next = (third if self.lstm else second) if self.known else None
        quantiles, parts = [], []
        for k, net in enumerate(self.nets):
            y, state = net.encoder.step(x[k], state_of(h[k], None if c is None else c[k]))
            feats = y if known_next is None else torch.cat([y, known_next], dim=1)
            quantiles.append(net.quantiles(net.head(feats)))  # each (B,)
            parts.append(state_tuple(state))
        q = tuple(torch.stack([o[i] for o in quantiles]) for i in range(3))  # (K, B) each
        return (*q, *(torch.stack([p[i] for p in parts]) for i in range(len(parts[0]))))


def export_onnx(est: Any, path: str | os.PathLike[str], *, streaming: bool | str = False) -> Path:
    """Write the networks of the fitted Forecaster ``est`` to ``path`` (see the module doc)."""
    mode = streaming_mode(streaming)
    c = est.fitted_config_
    if mode is not None and c.mode != "autoregressive":
        raise UserError(
            f"this forecaster is {c.mode} (all {c.horizon} steps at once): it has no step graph; "
            "export without --streaming (or train with model.mode=autoregressive)"
        )
    if mode == "chunk":
        raise UserError("forecast exports a step graph (streaming=True), not chunks")
    nets = [export_copy(net, "encoder") for net in est.nets_]
    K, L, H, D, Ck = len(nets), c.lookback, c.horizon, c.input_size, c.n_known
    outputs: dict[str, Shape] = {}
    if mode is None:
        inputs: dict[str, Shape] = {"x": ("batch", L, D)}
        example: list[Tensor] = [torch.randn(2, L, D)]
        if Ck:
            inputs["known_future"] = ("batch", H, Ck)
            example.append(torch.randn(2, H, Ck))
        outputs.update({k: ("batch", H) for k in ("point", "lower", "upper")})
        wrapper: nn.Module = _Forecast(nets)
        what = f"{K} network(s), {c.mode}: a scaled window -> {H}-step forecasts (model units)"
        states: dict[str, Shape] = {}
    else:
        states = {n: (K, *s) for n, s in state_shapes(nets[0].encoder.module).items()}
        inputs = {"x": (K, "batch", D), **states}
        example = [torch.randn(K, 2, D), *(torch.zeros(K, s[1], 2, s[3]) for s in states.values())]
        if Ck:
            inputs["known_next"] = ("batch", Ck)
            example.append(torch.randn(2, Ck))
        outputs.update({k: (K, "batch") for k in ("point", "lower", "upper")})
        outputs.update({f"{n}_n": s for n, s in states.items()})
        wrapper = _Step(nets, lstm="c" in states, known=bool(Ck))
        what = f"{K} network(s), autoregressive: one step of each member (state in, state out)"
    target = export_graph(wrapper, example, path, inputs=inputs, outputs=outputs, doc=what)
    write_sidecar(
        target,
        {
            "app": "forecast",
            "what": what,
            "graphs": [describe(target)],
            "mode": c.mode,
            "loss": c.loss,
            "lookback": L,
            "horizon": H,
            "members": K,
            "series": list(est.meta_["names"]),
            "known_names": list(est.meta_["known_names"]),
            "past_names": list(est.meta_["past_names"]),
            "target_transform": est.config.train.target_transform,
            "scalers": {
                "target": est.target_scaler_.to_dict(),
                "past": est.past_scaler_.to_dict() if est.past_scaler_ else None,
                "known": est.known_scaler_.to_dict() if est.known_scaler_ else None,
            },
            "state": {n: list(s) for n, s in states.items()},
            "usage": (
                "inputs per step [u_t, past_t, known_t], scaled (u: the transformed target); "
                "outputs in model units: back to levels with the target scaler and transform"
            ),
            "not_in_graph": [
                "input scaling (rnnkit.forecast.windows.model_inputs) and the way back to "
                "the data's units (rnnkit.forecast.scaling.to_levels); scalers here",
                "calendar features of future time stamps",
            ],
        },
    )
    return target
