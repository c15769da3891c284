"""The forecast config tree: ``data`` / ``model`` / ``train`` / ``backtest`` sections.

Values come from these defaults <- a preset (``rnnkit/forecast/presets/NAME.toml``)
<- dotted overrides (``model.hidden_size=64``, or ``Forecaster(hidden_size=64)``).
The model section (:class:`ForecasterConfig`) lives here rather than in
:mod:`rnnkit.forecast.model` because imports run one way inside the application
(config <- data <- model); ``model.py`` imports it from here.

Field names are those of the ``config.json`` files written by earlier versions
(``{"model": ..., "train": ...}``), so old saved forecasters still load; their
``train.num_threads`` is read and dropped (the estimator's ``threads=`` replaced
it), see :func:`upgrade_config`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rnnkit import config as config_lib
from rnnkit.errors import UserError

__all__ = [
    "LOSSES",
    "MODES",
    "TRANSFORMS",
    "BacktestConfig",
    "DataConfig",
    "ForecastConfig",
    "ForecastTrainConfig",
    "ForecasterConfig",
    "load_config",
    "upgrade_config",
]

MODES = ("direct", "autoregressive")
LOSSES = ("quantile", "gaussian", "mse")
TRANSFORMS = ("none", "log", "diff", "log-return")


@dataclass(kw_only=True)
class DataConfig:
    """Which series, and how to read it (also applied to a CSV or DataFrame given to ``fit``).

    Attributes:
        source: ``sunspots``, ``airline``, ``vix`` or a CSV path: what ``fit()``
            without data and ``rnnkit forecast train`` read.
        time_col: the time column of a CSV or DataFrame (default: the first
            column of a CSV, the index of a DataFrame).
        target / known / past: comma-separated column names ("" = all numeric
            non-covariate columns / none / none).
        fill: ``none`` (error on gaps), ``ffill``, ``interpolate``, ``drop``.
        duplicates: ``error``, ``mean`` or ``last`` for repeated time stamps.
        freq: pandas alias to reindex onto (``D``, ``MS``), ``steps`` for
            consecutive observations, "" to infer.
        season: seasonal period (0 = from the frequency / dataset).
        calendar: add month or weekday sine/cosine as known covariates.
    """

    source: str = "sunspots"
    time_col: str = ""
    target: str = ""
    known: str = ""
    past: str = ""
    fill: str = "none"
    duplicates: str = "error"
    freq: str = ""
    season: int = 0
    calendar: bool = False


@dataclass(kw_only=True)
class ForecasterConfig:
    """The forecasting network (:class:`rnnkit.forecast.model.ForecastNet`).

    Attributes:
        cell: recurrent module name in ``rnnkit.nn.registry.RECURRENT``.
        lookback: L, steps of history the encoder reads.
        horizon: H, steps forecast at once (direct mode) or trained for.
        hidden_size / num_layers / dropout: of the encoder.
        mode: ``"direct"`` or ``"autoregressive"``.
        loss: ``"quantile"``, ``"gaussian"`` or ``"mse"``.
        level: probability of the central prediction interval (0.8 = 10-90%).
        highway: add a linear autoregressive term over the window's target
            channel to the point output (direct mode only).
        n_past / n_known: covariate counts (set from the data by ``fit``).
    """

    cell: str = "lstm"
    lookback: int = 24
    horizon: int = 12
    hidden_size: int = 32
    num_layers: int = 1
    dropout: float = 0.0
    mode: str = "direct"
    loss: str = "quantile"
    level: float = 0.8
    highway: bool = True
    # Set from the data by fit; not settable from a preset or the command line.
    n_past: int = field(default=0, metadata={"derived": True})
    n_known: int = field(default=0, metadata={"derived": True})

    def validate(self) -> None:
        from rnnkit.nn.registry import RECURRENT

        if self.cell not in RECURRENT:
            raise UserError(f"unknown cell {self.cell!r}; choose one of {', '.join(RECURRENT)}")
        for name in ("lookback", "horizon", "hidden_size", "num_layers"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.mode not in MODES:
            raise UserError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.loss not in LOSSES:
            raise UserError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if not 0.0 < self.level < 1.0:
            raise UserError(f"level must be in (0, 1), e.g. 0.8 for 10-90%, got {self.level}")
        if self.mode == "autoregressive" and self.n_past:
            raise UserError(
                "autoregressive mode cannot use past-only covariates (their future values "
                "are unknown when feeding predictions back); use --model.mode=direct "
                "(Python: mode='direct') or drop --data.past"
            )

    @property
    def input_size(self) -> int:
        return 1 + self.n_past + self.n_known

    @property
    def n_params_out(self) -> int:
        return {"quantile": 3, "gaussian": 2, "mse": 1}[self.loss]

    @property
    def taus(self) -> tuple[float, float, float]:
        lo = (1.0 - self.level) / 2.0
        return (lo, 0.5, 1.0 - lo)


@dataclass(kw_only=True)
class ForecastTrainConfig:
    """Training of the forecaster.

    Attributes:
        target_transform: ``none``, ``log``, ``diff`` or ``log-return`` (finance
            mode: forecast returns, map back to prices).
        epochs: maximum passes over the training windows.
        batch_size / lr / weight_decay / grad_clip: of AdamW.
        val_fraction: last share of window origins kept for early stopping
            (0 = train all ``epochs`` without validation).
        patience: epochs without validation improvement before stopping; the
            best weights are kept.
        refit_full: after early stopping, train a fresh network (same seed) on
            all windows, validation ones included, for the best epoch count.
        ensemble: networks trained with seeds ``seed, seed+1, ...`` and averaged.
        seed: for initialization and batch order (reproducible results).
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (the estimator's ``device=``).
    """

    target_transform: str = "none"
    epochs: int = 200
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    val_fraction: float = 0.15
    patience: int = 25
    refit_full: bool = True
    ensemble: int = 3
    seed: int = 0
    device: str = "cpu"

    def validate(self) -> None:
        if self.target_transform not in TRANSFORMS:
            raise UserError(
                f"target transform must be one of {', '.join(TRANSFORMS)}, "
                f"got {self.target_transform!r}"
            )
        for name in ("epochs", "batch_size", "ensemble"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise UserError(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.val_fraction < 0.9:
            raise UserError(f"val_fraction must be in [0, 0.9), got {self.val_fraction}")


@dataclass(kw_only=True)
class BacktestConfig:
    """Rolling origins: the last ``test_size`` steps, one origin every ``stride``.

    ``refit_every``: 0 fits every model once on the data before the first
    origin; k refits every k origins (slower for the RNN). ``arima``/``ets``
    add the statsmodels baselines.
    """

    test_size: int = 30
    stride: int = 1
    refit_every: int = 0
    arima: bool = True
    ets: bool = True


@dataclass(kw_only=True)
class ForecastConfig:
    """Everything about one forecasting job: data, network, training, backtest."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ForecasterConfig = field(default_factory=ForecasterConfig)
    train: ForecastTrainConfig = field(default_factory=ForecastTrainConfig)
    backtest: BacktestConfig = field(default_factory=BacktestConfig)

    def validate(self) -> None:
        self.model.validate()
        self.train.validate()


def load_config(
    *, preset: str | None = None, overrides: Iterable[str] | Mapping[str, Any] = ()
) -> ForecastConfig:
    """Defaults <- ``rnnkit/forecast/presets/<preset>.toml`` <- ``overrides``
    (``["model.cell=gru"]`` or ``{"model.cell": "gru"}``)."""
    return config_lib.load_config(
        ForecastConfig, app="forecast", preset=preset, overrides=overrides
    )


def upgrade_config(data: Mapping[str, Any]) -> dict[str, Any]:
    """A ``config.json`` of an earlier version in today's layout.

    Forecasters saved before the estimator contract wrote ``{"model": ...,
    "train": {..., "num_threads": N}}``; ``num_threads`` is now the estimator's
    ``threads=`` option and is dropped here.
    """
    out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in data.items()}
    train = out.get("train")
    if isinstance(train, dict):
        train.pop("num_threads", None)
    return out
