"""The forecasting network: the autoregressive rollout and the highway initialisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnkit.forecast.config import ForecasterConfig
from rnnkit.forecast.model import ForecastNet
from rnnkit.nn.registry import RECURRENT


@pytest.mark.parametrize("cell", list(RECURRENT))
def test_autoregressive_step_matches_forward_on_the_extended_window(cell: str) -> None:
    """The step() rollout must equal forward() run over the window with the fed-back
    predictions appended (two independent code paths)."""
    torch.manual_seed(0)
    cfg = ForecasterConfig(
        cell=cell,
        lookback=6,
        horizon=4,
        hidden_size=5,
        mode="autoregressive",
        loss="mse",
        n_known=1,
    )
    net = ForecastNet(cfg).eval()
    x = torch.randn(3, 6, 2)
    kf = torch.randn(3, 4, 1)
    out = net.predict(x, kf, steps=4).point  # (3, 4)
    seq = x
    for k in range(4):
        known_next = torch.cat([seq[:, 1:, 1:], kf[:, k : k + 1]], dim=1)  # each step's next
        params = net(seq, known_next)  # (3, T, 1)
        nxt = params[:, -1, 0]
        torch.testing.assert_close(out[:, k], nxt, rtol=1e-5, atol=1e-6)
        step_in = torch.stack([nxt, kf[:, k, 0]], dim=1).unsqueeze(1)  # (3, 1, 2)
        seq = torch.cat([seq, step_in], dim=1)


def test_highway_starts_at_the_least_squares_ar_fit() -> None:
    torch.manual_seed(0)
    cfg = ForecasterConfig(lookback=5, horizon=3, hidden_size=4, loss="mse")
    net = ForecastNet(cfg)
    x = torch.randn(200, 5, 1, dtype=torch.float64).float()
    y = x[:, -3:, 0] * 0.5 + 0.1 * torch.randn(200, 3)
    net.init_highway(x, y, ridge=0.0)
    a = np.concatenate([x[:, :, 0].numpy(), np.ones((200, 1))], axis=1).astype(np.float64)
    w, *_ = np.linalg.lstsq(a, y.numpy().astype(np.float64), rcond=None)
    expected = a @ w
    with torch.no_grad():
        got = net(x)[..., 0].double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3)
