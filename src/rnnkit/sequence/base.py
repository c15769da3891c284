"""What SequenceRegressor and SequenceClassifier share: parameters, checks, training, saving.

Longer than 400 lines: the parameter protocol, the checks, the training run (warm start
included), prediction and saving of both estimators are one reading, top to bottom.

scikit-learn's estimator rules, without scikit-learn at run time: every
hyper-parameter is an explicit keyword argument of ``__init__``, stored
unchanged (validated in ``fit``, never in ``__init__`` or ``set_params``);
``get_params``/``set_params`` read the signature, so ``sklearn.base.clone``,
``Pipeline`` and ``GridSearchCV`` work; learned attributes end with ``_``.
Training runs the one loop of :mod:`rnnkit.training` (``Trainer``): an epoch
is one pass over the shuffled training rows, ``validation_data`` or
``validation_split`` is scored after every epoch (``val_loss``), and
``early_stopping_patience`` stops after that many epochs without a better
``val_loss`` (the last weights are kept, as Keras' ``EarlyStopping`` does by
default). ``warm_start=True`` makes ``fit`` continue from the fitted weights
(scikit-learn's meaning; a fresh optimizer), as Keras' ``fit`` always does;
``from_keras`` sets it, so a model trained in Keras trains on in rnnkit.
"""

from __future__ import annotations

import contextlib
import inspect
import numbers
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.errors import UserError
from rnnkit.estimator import Estimator, resolve_device, use_threads
from rnnkit.nn import CELL_NAMES
from rnnkit.sequence.config import (
    OPTIMIZERS,
    SequenceConfig,
    SequenceModelConfig,
    SequenceTrainConfig,
)
from rnnkit.sequence.data import Batches, as_sequences
from rnnkit.sequence.model import SequenceNet
from rnnkit.training import StepResult, TrainConfig, Trainer, load_model_weights, read_json

__all__ = ["SequenceEstimator"]

_MODEL_KEYS = ("cell", "hidden_size", "num_layers", "bidirectional", "dropout")
_LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "mse": F.mse_loss,
    "mae": F.l1_loss,
    "huber": F.huber_loss,  # delta 1, as Keras' Huber
    "cross_entropy": F.cross_entropy,
}
_TRAIN_KEYS = tuple(SequenceTrainConfig.__dataclass_fields__)
_PREDICT_ROWS = 1024  # rows per forward pass at predict time


def _check(name: str, value: Any, kind: type, ok: Callable[[Any], bool], what: str) -> Any:
    """``value`` as ``kind`` if it is one and ``ok(value)``, else a one-line UserError."""
    if kind is bool:
        good = isinstance(value, bool | np.bool_)
    elif kind is int:
        good = isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)
    else:
        good = isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
    if not good or not ok(value):
        raise UserError(f"{name} must be {what}, got {value!r}")
    return kind(value)


@contextlib.contextmanager
def _global_rng_kept(device: torch.device) -> Iterator[None]:
    """Seeding for one fit must not change the caller's Python/NumPy/torch random streams."""
    py, np_state = random.getstate(), np.random.get_state()
    devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(py)
        np.random.set_state(np_state)


class SequenceEstimator(Estimator):
    """The shared part of SequenceRegressor and SequenceClassifier (see the module doc)."""

    app = "sequence"
    config_class = SequenceConfig
    artifact_files: ClassVar[tuple[str, ...]] = ("shapes.json",)
    device_key = None  # the runtime options are constructor arguments here
    seed_key = None
    progress_key = None
    _losses: ClassVar[tuple[str, ...]] = ()
    _estimator_type: ClassVar[str] = ""  # scikit-learn < 1.6 reads this

    # -- scikit-learn parameter protocol ---------------------------------------

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [n for n, p in sig.parameters.items() if n != "self" and p.kind == p.KEYWORD_ONLY]

    def _store_params(self, params: dict[str, Any]) -> None:
        for name in self._param_names():
            setattr(self, name, params[name])

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments, as passed (``sklearn.base.clone`` rebuilds from them)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> SequenceEstimator:
        """Set constructor arguments (checked at the next ``fit``); returns ``self``."""
        names = self._param_names()
        for name, value in params.items():
            if name not in names:
                raise UserError(
                    f"{type(self).__name__} has no parameter {name!r}; "
                    f"valid parameters: {', '.join(names)}"
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__).parameters
        parts = []
        for name, value in self.get_params().items():
            default = sig[name].default
            if value is default or (type(value) is type(default) and value == default):
                continue
            parts.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    @property
    def config(self) -> SequenceConfig:  # type: ignore[override]
        """The config saved with the model: as fitted (or loaded), else the current params."""
        fitted = getattr(self, "_fitted_config", None)
        if fitted is not None:
            return fitted
        p = self.get_params()
        return SequenceConfig(
            model=SequenceModelConfig(**{k: p[k] for k in _MODEL_KEYS}),
            train=SequenceTrainConfig(**{k: p[k] for k in _TRAIN_KEYS}),
        )

    @classmethod
    def _from_config(cls, cfg: SequenceConfig, **runtime: Any) -> SequenceEstimator:
        values = {**vars(cfg.model), **vars(cfg.train)}
        return cls(**values, **runtime)

    def _checked_config(self) -> SequenceConfig:
        """The parameters, validated, as the config tree saved with the model."""
        for name, options in (
            ("cell", CELL_NAMES),
            ("optimizer", OPTIMIZERS),
            ("loss", self._losses),
        ):
            value = getattr(self, name)
            if not isinstance(value, str) or value not in options:
                raise UserError(
                    f"{name} must be one of {', '.join(options)} for {type(self).__name__}, "
                    f"got {value!r}"
                )
        one = (lambda v: v >= 1), "an int >= 1"
        unit = (lambda v: 0 <= v < 1), "in [0, 1)"
        rules: dict[str, tuple[type, tuple[Callable[[Any], bool], str]]] = {
            "hidden_size": (int, one),
            "num_layers": (int, one),
            "bidirectional": (bool, ((lambda v: True), "True or False")),
            "warm_start": (bool, ((lambda v: True), "True or False")),
            "dropout": (float, unit),
            "epochs": (int, one),
            "batch_size": (int, one),
            "lr": (float, ((lambda v: v > 0), "a number > 0")),
            "weight_decay": (float, ((lambda v: v >= 0), ">= 0")),
            "grad_clip": (float, ((lambda v: v >= 0), ">= 0 (0: off)")),
            "validation_split": (float, unit),
            "early_stopping_patience": (int, ((lambda v: v >= 0), "an int >= 0")),
        }
        p = self.get_params()
        for name, (kind, (ok, what)) in rules.items():
            p[name] = _check(name, p[name], kind, ok, what)
        if p["seed"] is not None:
            p["seed"] = _check("seed", p["seed"], int, lambda v: v >= 0, "an int >= 0 or None")
        return SequenceConfig(
            model=SequenceModelConfig(**{k: p[k] for k in _MODEL_KEYS}),
            train=SequenceTrainConfig(**{k: p[k] for k in _TRAIN_KEYS}),
        )

    # -- what the two estimators fill in ---------------------------------------

    def _fit_targets(self, y: Any, n: int) -> tuple[Tensor, int, dict[str, Any]]:
        """``(targets, K, learned attributes)`` for the training labels/values."""
        raise NotImplementedError

    def _targets(self, y: Any, n: int, fitted: dict[str, Any]) -> Tensor:
        """Validation targets, encoded as in ``fit`` (``fitted``: the learned attributes)."""
        raise NotImplementedError

    def _metrics(self, outputs: Tensor, targets: Tensor) -> dict[str, Any]:
        raise NotImplementedError

    # -- training --------------------------------------------------------------

    def _fit(
        self,
        X: Any,
        y: Any,
        lengths: Any,
        epochs: Any,
        batch_size: Any,
        validation_data: Any,
    ) -> SequenceEstimator:
        cfg = self._checked_config()
        tc = cfg.train
        # fit(epochs=, batch_size=) change this call only (Keras), not the parameters
        positive = (lambda v: v >= 1), "an int >= 1"
        epochs = tc.epochs if epochs is None else _check("epochs", epochs, int, *positive)
        batch_size = (
            tc.batch_size
            if batch_size is None
            else _check("batch_size", batch_size, int, *positive)
        )
        device = resolve_device(self.device if self.device is not None else "cpu")
        with use_threads(self.threads):  # checks the value before any work
            pass
        x, lens = as_sequences(X, lengths)
        targets, K, fitted = self._fit_targets(y, len(x))
        if validation_data is not None:
            if not isinstance(validation_data, tuple | list) or len(validation_data) not in (2, 3):
                raise UserError(
                    "validation_data must be (X_val, y_val) or (X_val, y_val, lengths_val), "
                    f"got {type(validation_data).__name__}"
                )
            xv, lv = as_sequences(
                validation_data[0],
                validation_data[2] if len(validation_data) == 3 else None,
                n_features=x.size(2),
                owner="the training X",
            )
            val = (xv, self._targets(validation_data[1], len(xv), fitted), lv)
            train = (x, targets, lens)
        elif tc.validation_split > 0:
            n_train = int(len(x) * (1 - tc.validation_split))  # the last rows validate, as Keras
            if not 0 < n_train < len(x):
                raise UserError(
                    f"validation_split={tc.validation_split} leaves {n_train} of {len(x)} rows "
                    "for training; pass more rows or another split"
                )
            part = slice(0, n_train), slice(n_train, None)
            train, val = ((x[s], targets[s], None if lens is None else lens[s]) for s in part)
        else:
            train, val = (x, targets, lens), None
        if tc.early_stopping_patience and val is None:
            raise UserError(
                "early_stopping_patience needs validation data: set validation_split or pass "
                "validation_data=(X_val, y_val)"
            )
        seed = tc.seed if tc.seed is not None else int(np.random.SeedSequence().entropy % 2**31)
        batches = Batches(*train, batch_size, shuffle=True, seed=seed)
        val_batches = None if val is None else Batches(*val, max(batch_size, 256))
        loss = _LOSSES[tc.loss]

        def loss_fn(model: nn.Module, batch: tuple[Tensor, ...], state: Any) -> StepResult:
            xb, yb, lb = batch
            return StepResult(loss(model(xb, lb), yb), None, xb.size(0))

        warm = self._warm_weights(cfg, x.size(2), K, fitted)
        steps = len(batches)
        loop = TrainConfig(
            max_steps=epochs * steps,
            lr=tc.lr,
            warmup_steps=0,
            lr_decay="constant",
            weight_decay=tc.weight_decay,
            grad_clip=tc.grad_clip,
            carry_state=False,
            eval_interval=steps,
            early_stopping_patience=tc.early_stopping_patience,
            checkpoint_interval=0,
            log_interval=steps,  # one line per epoch when stderr is not a terminal
            progress="auto" if self.verbose else "none",
            plot=False,
            seed=seed,
            device=str(device),
        )
        with self._threads(), _global_rng_kept(device), self._quiet():
            torch.manual_seed(seed)  # the initial weights
            model = SequenceNet(cfg.model, x.size(2), K)
            if warm is not None:
                model.load_state_dict(warm)
            trainer = Trainer(
                model,
                loss_fn,
                batches,
                config=loop,
                val_data=val_batches,
                optimizer=self._optimizer(model, tc),
            )
            result = trainer.fit()
        model.eval()
        sizes = np.asarray(batches.sizes(), dtype=np.float64)
        per_epoch = np.asarray(result.losses).reshape(-1, steps)  # (epochs run, steps)
        history: dict[str, list[float]] = {
            "loss": [float(v) for v in per_epoch @ sizes / sizes.sum()]
        }
        if result.evals:
            history["val_loss"] = [float(e["val_loss"]) for e in result.evals]
        for name, value in fitted.items():
            setattr(self, name, value)
        self.n_features_in_ = int(x.size(2))
        self.model_ = model
        self.history_ = history
        self.result_ = result
        self._fitted_config = cfg
        measured = val if val is not None else train
        which = "validation" if val is not None else "training"
        self.metrics_ = {
            **self._metrics(self._outputs(measured[0], measured[2]), measured[1]),
            "measured_on": f"the {which} data ({len(measured[0])} sequences)",
        }
        return self

    def _warm_weights(
        self, cfg: SequenceConfig, n_features: int, K: int, fitted: dict[str, Any]
    ) -> dict[str, Tensor] | None:
        """The fitted weights that ``fit`` starts from with ``warm_start=True``, else None."""
        if not cfg.train.warm_start or not self._is_fitted():
            return None
        old, new = self._fitted_config.model, cfg.model
        arch = ("cell", "hidden_size", "num_layers", "bidirectional")
        changed = [
            f"{k} {getattr(old, k)!r} -> {getattr(new, k)!r}"
            for k in arch
            if getattr(old, k) != getattr(new, k)
        ]
        if n_features != self.n_features_in_:
            changed.append(f"features per step {self.n_features_in_} -> {n_features}")
        if self.model_.head.out_features != K:
            changed.append(f"outputs {self.model_.head.out_features} -> {K}")
        if "classes_" in fitted and not np.array_equal(fitted["classes_"], self.classes_):
            changed.append(f"classes {self.classes_.tolist()} -> {fitted['classes_'].tolist()}")
        if changed:
            raise UserError(
                f"warm_start=True continues the fitted network, but {'; '.join(changed)}; "
                "set warm_start=False to train a new one"
            )
        return {k: v.detach().clone() for k, v in self.model_.state_dict().items()}

    @staticmethod
    def _optimizer(model: nn.Module, tc: SequenceTrainConfig) -> torch.optim.Optimizer:
        params = [p for p in model.parameters() if p.requires_grad]
        if tc.optimizer == "adam":  # weight_decay as an L2 term, as torch.optim.Adam
            return torch.optim.Adam(params, lr=tc.lr, weight_decay=tc.weight_decay)
        if tc.optimizer == "adamw":  # decoupled weight decay
            return torch.optim.AdamW(params, lr=tc.lr, weight_decay=tc.weight_decay)
        return torch.optim.SGD(params, lr=tc.lr, weight_decay=tc.weight_decay)

    # -- prediction ------------------------------------------------------------

    def __sklearn_is_fitted__(self) -> bool:
        return self._is_fitted()

    def _inputs(self, X: Any, lengths: Any) -> tuple[Tensor, Tensor | None]:
        self._check_fitted()
        return as_sequences(
            X, lengths, n_features=self.n_features_in_, owner=f"this {type(self).__name__}"
        )

    def _outputs(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        """The network's outputs (N, K), float32 on the CPU, in eval mode."""
        device = next(self.model_.parameters()).device
        outs = []
        with self._threads(), torch.no_grad():
            for i in range(0, len(x), _PREDICT_ROWS):
                lb = None if lengths is None else lengths[i : i + _PREDICT_ROWS]
                outs.append(self.model_(x[i : i + _PREDICT_ROWS].to(device), lb).float().cpu())
        return torch.cat(outs)

    # -- Keras -------------------------------------------------------------------

    _keras_output: ClassVar[str] = "linear"  # the Dense activation of to_keras()
    _keras_heads: ClassVar[tuple[str, ...]] = ()  # the Dense activations from_keras takes

    def _keras_outputs(self, K: int) -> np.ndarray:
        """Set the output attributes for a Keras head of K units; the head's row order."""
        raise NotImplementedError

    def to_keras(self, *, masking: float | None = None) -> Any:
        """This fitted network as a Keras 3 ``Sequential`` model with the same outputs
        (``predict_proba`` for the classifier, softmax in the model); ``masking``:
        start with ``Masking(mask_value=masking)``, Keras' form of ``lengths``.
        Needs Keras (``pip install "rnnkit[keras]"``); see ``docs/keras.md``."""
        from rnnkit.sequence.keras import estimator_to_keras

        self._check_fitted()
        return estimator_to_keras(self, masking)

    # -- save / load -----------------------------------------------------------

    def _shapes(self) -> dict[str, Any]:
        return {"estimator": type(self).__name__, "n_features_in": self.n_features_in_}

    def _artifacts(self) -> dict[str, Any]:
        return {"shapes.json": self._shapes()}

    def _restore_fitted(self, directory: Path, shapes: dict[str, Any]) -> int:
        """Set the learned attributes from the folder; return K (the outputs)."""
        raise NotImplementedError

    def _restore(self, directory: Path) -> None:
        shapes = read_json(directory / "shapes.json")
        name = type(self).__name__
        if shapes.get("estimator") != name:
            other = shapes.get("estimator")
            raise UserError(f"{directory} holds a {other}, not a {name}; load it with {other}.load")
        cfg = self.config  # built from config.json by _from_config
        K = self._restore_fitted(directory, shapes)
        model = SequenceNet(cfg.model, int(shapes["n_features_in"]), K)
        load_model_weights(model, directory)
        self.n_features_in_ = int(shapes["n_features_in"])
        self.model_ = model.eval()
        self._fitted_config = cfg

    # -- scikit-learn tags ------------------------------------------------------

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import ClassifierTags, InputTags, RegressorTags, Tags, TargetTags

        regressor = self._estimator_type == "regressor"
        return Tags(
            estimator_type=self._estimator_type,
            target_tags=TargetTags(required=True, multi_output=regressor),
            classifier_tags=None if regressor else ClassifierTags(),
            regressor_tags=RegressorTags() if regressor else None,
            input_tags=InputTags(two_d_array=True, three_d_array=True),
            non_deterministic=self.seed is None,
        )

    def _more_tags(self) -> dict[str, Any]:  # scikit-learn < 1.6
        return {"X_types": ["2darray", "3darray"], "non_deterministic": self.seed is None}
