"""RNN forecaster: an encoder RNN over a lookback window and a multi-step head.

Its config is :class:`rnnkit.forecast.config.ForecasterConfig` (the ``model``
section of the forecast config). Inputs per step (all scaled, see
:func:`rnnkit.forecast.data.model_inputs`)::

    x_t = [u_t, past_t, known_t]          u: the target channel, D = 1 + Cp + Ck

Two ways to produce H steps:

- ``mode="direct"``: encode the window, then one linear head maps the last
  hidden state (and the known covariates of the H future steps) to all H
  steps at once::

      h_L = RNN(x_{t-L..t-1})[-1]                       (B, Hd)
      out = W [h_L ; known_{t..t+H-1}] + b              (B, H, P)

  With ``highway=True`` a linear autoregressive term of the window's target
  channel is added to the point output (LSTNet, Lai et al. 2018)::

      out[..., 0] += A u_{t-L..t-1} + a                  A: (H, L)

- ``mode="autoregressive"``: a one-step head ``out_t = W [h_t ; known_{t+1}] + b``
  is trained on every step of the window (teacher forcing); at prediction
  time the encoder state is carried with ``step()`` and the model's own
  median is fed back as the next input.

The P outputs per step depend on ``loss``:

- ``"quantile"``: P = 3 -> the median m and two positive offsets, so the
  quantiles are ordered by construction:
  ``q_lo = m - softplus(a)``, ``q_hi = m + softplus(b)``; trained with the
  pinball loss ``max(tau e, (tau - 1) e)`` at tau in (lo, 0.5, hi).
- ``"gaussian"``: P = 2 -> mean mu and ``sigma = softplus(s) + 1e-4``; trained
  with the negative log-likelihood ``log sigma + (y - mu)^2 / (2 sigma^2)``;
  quantiles ``mu +- z sigma``.
- ``"mse"``: P = 1, point forecasts only (the interval is NaN).

:func:`ensemble_forecast` runs several networks on a series and returns their
averaged forecasts in the data's units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.errors import UserError
from rnnkit.forecast.config import ForecasterConfig
from rnnkit.forecast.scaling import StandardScaler, TargetTransform, to_levels
from rnnkit.forecast.series import SeriesData
from rnnkit.forecast.windows import model_inputs
from rnnkit.nn import build_recurrent

__all__ = ["ForecastNet", "ForecastOutput", "ensemble_forecast"]


class ForecastOutput(NamedTuple):
    """Forecasts in model units, each (B, H)."""

    point: Tensor
    lower: Tensor
    upper: Tensor


class ForecastNet(nn.Module):
    """Encoder RNN + direct multi-step or one-step autoregressive head (module docstring)."""

    def __init__(self, config: ForecasterConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        c = config
        dropout = c.dropout if c.num_layers > 1 else 0.0
        self.encoder = build_recurrent(
            c.cell, c.input_size, c.hidden_size, num_layers=c.num_layers, dropout=dropout
        )
        self.drop = nn.Dropout(c.dropout)
        steps = c.horizon if c.mode == "direct" else 1
        self.head = nn.Linear(c.hidden_size + steps * c.n_known, steps * c.n_params_out)
        # LSTNet's highway (Lai et al. 2018, sec. 3.6): a linear AR model of the window
        # added to the network's point output, so the RNN learns the non-linear rest.
        self.highway = (
            nn.Linear(c.lookback, c.horizon) if c.highway and c.mode == "direct" else None
        )
        # z of the interval edges under a normal distribution (Gaussian head).
        self.z = float(torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(c.taus[2])))

    # -- raw parameters -------------------------------------------------------

    def forward(self, x: Tensor, known_future: Tensor | None = None) -> Tensor:
        """Raw output parameters.

        Args:
            x: (B, L, D) input window.
            known_future: (B, H, Ck) known covariates of the forecast steps
                (direct mode), or (B, L, Ck) those of each next step
                (autoregressive training).

        Returns:
            direct: (B, H, P); autoregressive: (B, L, P), the one-step
            forecast made after each input step.
        """
        c = self.config
        out, _ = self.encoder(x)  # (B, L, Hd)
        if c.mode == "direct":
            feats = self.drop(out[:, -1])  # (B, Hd)
            if c.n_known:
                feats = torch.cat([feats, known_future.flatten(1)], dim=1)  # (B, Hd + H*Ck)
            out = self.head(feats).view(x.size(0), c.horizon, c.n_params_out)  # (B, H, P)
            if self.highway is not None:
                linear = self.highway(x[:, :, 0])  # (B, L) target channel -> (B, H)
                out = torch.cat([out[..., :1] + linear.unsqueeze(-1), out[..., 1:]], dim=-1)
            return out
        feats = self.drop(out)  # (B, L, Hd)
        if c.n_known:
            feats = torch.cat([feats, known_future], dim=2)  # (B, L, Hd + Ck)
        return self.head(feats)  # (B, L, P)

    @torch.no_grad()
    def init_highway(self, x: Tensor, target: Tensor, ridge: float = 1e-3) -> None:
        """Start from the least-squares linear AR model (direct mode with highway).

        Solves ``min ||[u, 1] W - y||^2 + ridge ||W||^2`` on the training
        windows (u = x[:, :, 0], (N, L); y = target, (N, H)), copies W into
        the highway and zeroes the head's point weights, so training starts
        at the linear AR forecast and the RNN learns what it misses.
        """
        if self.highway is None:
            return
        u = x[:, :, 0].double()  # (N, L)
        a = torch.cat([u, u.new_ones(u.shape[0], 1)], dim=1)  # (N, L+1)
        gram = a.T @ a + ridge * a.shape[0] * torch.eye(a.shape[1], dtype=u.dtype, device=u.device)
        w = torch.linalg.solve(gram, a.T @ target.double())  # (L+1, H)
        self.highway.weight.copy_(w[:-1].T)  # (H, L)
        self.highway.bias.copy_(w[-1])
        c = self.config
        point_rows = torch.arange(c.horizon) * c.n_params_out  # row of output 0 per step
        self.head.weight[point_rows] = 0.0
        self.head.bias[point_rows] = 0.0

    def loss(self, params: Tensor, target: Tensor) -> Tensor:
        """Mean loss of raw ``params`` (B, K, P) against ``target`` (B, K)."""
        c = self.config
        if c.loss == "mse":
            return F.mse_loss(params[..., 0], target)
        if c.loss == "gaussian":
            mu, sigma = params[..., 0], F.softplus(params[..., 1]) + 1e-4
            return (torch.log(sigma) + 0.5 * ((target - mu) / sigma) ** 2).mean()
        q = torch.stack(self.quantiles(params), dim=-1)  # (B, K, 3) in tau order lo, 0.5, hi
        taus = torch.tensor((c.taus[1], c.taus[0], c.taus[2]), dtype=q.dtype, device=q.device)
        err = target.unsqueeze(-1) - q  # (B, K, 3)
        return torch.maximum(taus * err, (taus - 1.0) * err).mean()

    def quantiles(self, params: Tensor) -> ForecastOutput:
        """Raw params (..., P) -> point (median/mean), lower, upper, each (...)."""
        c = self.config
        point = params[..., 0]
        if c.loss == "mse":
            nan = torch.full_like(point, math.nan)
            return ForecastOutput(point, nan, nan.clone())
        if c.loss == "gaussian":
            sigma = F.softplus(params[..., 1]) + 1e-4
            return ForecastOutput(point, point - self.z * sigma, point + self.z * sigma)
        return ForecastOutput(
            point, point - F.softplus(params[..., 1]), point + F.softplus(params[..., 2])
        )

    # -- forecasting ----------------------------------------------------------

    @torch.no_grad()
    def predict(
        self, x: Tensor, known_future: Tensor | None = None, steps: int | None = None
    ) -> ForecastOutput:
        """Forecast ``steps`` steps (default H) after each window, in model units.

        Args:
            x: (B, L, D) windows.
            known_future: (B, steps, Ck) known covariates of the forecast steps.
        """
        c = self.config
        steps = steps or c.horizon
        if c.mode == "direct":
            if steps > c.horizon:
                raise UserError(
                    f"this model forecasts {c.horizon} steps at once (direct mode); forecast "
                    f"at most {c.horizon} steps (--horizon {c.horizon}), or retrain with horizon "
                    f">= {steps} or in autoregressive mode ('rnnkit forecast train --horizon "
                    f"{steps}')"
                )
            kf = known_future[:, : c.horizon] if c.n_known else None
            out = self.quantiles(self(x, kf))
            return ForecastOutput(*(t[:, :steps] for t in out))
        return self._rollout(x, known_future, steps)

    def _rollout(self, x: Tensor, known_future: Tensor | None, steps: int) -> ForecastOutput:
        """Autoregressive forecast: encode the window, then feed the median back with step()."""
        c = self.config
        out, state = self.encoder(x)  # (B, L, Hd), final state
        h = out[:, -1]  # (B, Hd)
        points, lowers, uppers = [], [], []
        for k in range(steps):
            feats = h
            if c.n_known:
                feats = torch.cat([h, known_future[:, k]], dim=1)  # (B, Hd + Ck)
            q = self.quantiles(self.head(feats))  # each (B,)
            points.append(q.point)
            lowers.append(q.lower)
            uppers.append(q.upper)
            if k + 1 < steps:
                nxt = q.point.unsqueeze(1)  # (B, 1): the fed-back target channel
                if c.n_known:
                    nxt = torch.cat([nxt, known_future[:, k]], dim=1)  # (B, 1 + Ck)
                h, state = self.encoder.step(nxt, state)
        return ForecastOutput(*(torch.stack(v, dim=1) for v in (points, lowers, uppers)))


@torch.no_grad()
def ensemble_forecast(
    nets: Sequence[ForecastNet],
    history: SeriesData,
    transform: TargetTransform,
    scalers: tuple[StandardScaler, StandardScaler | None, StandardScaler | None],
    horizon: int,
    known_future: np.ndarray | None = None,
) -> tuple[np.ndarray, ...]:
    """The ensemble's (point, lower, upper) forecasts after ``history``, each (S, horizon)
    in the data's units; ``known_future``: (horizon, Ck) known covariates."""
    c = nets[0].config
    target_scaler, _, known_scaler = scalers
    inputs, _, _ = model_inputs(history, transform, *scalers)  # (S, T, D)
    device = next(nets[0].parameters()).device
    x = torch.as_tensor(inputs[:, -c.lookback :], dtype=torch.float32, device=device)  # (S, L, D)
    kf = None
    if c.n_known:
        kf_np = known_scaler.transform(np.asarray(known_future, dtype=np.float64))
        kf = torch.as_tensor(kf_np[:horizon], dtype=torch.float32, device=device)
        kf = kf.unsqueeze(0).expand(x.shape[0], -1, -1)  # (S, H, Ck)
    outs = [net.predict(x, kf, steps=horizon) for net in nets]
    # Average quantiles over the ensemble (Vincentization).
    point, lower, upper = (
        torch.stack([getattr(o, f) for o in outs]).mean(0).double().cpu().numpy()
        for f in ("point", "lower", "upper")
    )  # each (S, H)
    return to_levels(
        transform,
        target_scaler,
        (point, lower, upper),
        history.values[-1],
        autoregressive=c.mode == "autoregressive",
    )
