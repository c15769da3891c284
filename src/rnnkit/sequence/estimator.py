"""SequenceRegressor and SequenceClassifier: recurrent networks on plain arrays.

The Keras model ``Sequential([SimpleRNN(50, input_shape=(10, 1)), Dense(1)])``
compiled with ``optimizer="adam", loss="mse"`` and fitted for 10 epochs is::

    SequenceRegressor(cell="rnn", hidden_size=50, epochs=10).fit(X, y)   # X (N, 10, 1)

``X`` is (N, T, D) or (N, T) (one feature per step), a NumPy array or a torch
tensor; ``lengths`` (N,) marks shorter rows (the rest is padding and does not
change any prediction). Nothing is scaled: scale features and targets
yourself (e.g. in a scikit-learn Pipeline). See ``docs/sequence.md``.

scikit-learn compatible without depending on it: explicit constructor
arguments, ``get_params``/``set_params``, ``clone``, ``Pipeline``,
``GridSearchCV``, ``cross_val_score``, ``score`` (R^2 / accuracy). 2-D ``X``
is read as (N, T) with one feature per step, which is how
``tests/sequence/test_sequence_sklearn.py`` runs scikit-learn's estimator
checks on both classes. The checks skipped there, and why:

- ``check_n_features_in``, ``check_n_features_in_after_fitting``: they expect
  ``n_features_in_ == X.shape[1]`` and an error when predicting with fewer
  columns; for a sequence model ``X.shape[1]`` is T, the number of steps, and
  any T is accepted at predict time; ``n_features_in_`` is D, per step.
- ``check_classifiers_train``: it expects ``predict(X.T)`` to fail; for
  sequences X.T (2 rows of 300 steps) is a valid input.
- ``check_estimators_unfitted``: it wants scikit-learn's own
  ``NotFittedError`` class; rnnkit raises ``rnnkit.NotFittedError`` (a
  ``ValueError`` and an ``AttributeError``, as scikit-learn's).
- ``check_estimators_empty_data_messages``: X of shape (12, 0) raises a
  ``ValueError`` that names the shape, but not in scikit-learn's words.
- ``check_supervised_y_2d`` (classifier only): labels of shape (N, 1) are
  accepted and ravelled without scikit-learn's ``DataConversionWarning``.

The sample-weight checks skip themselves (``fit`` takes no ``sample_weight``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from rnnkit.errors import UserError
from rnnkit.sequence.base import SequenceEstimator
from rnnkit.sequence.config import CLASSIFIER_LOSSES, REGRESSOR_LOSSES
from rnnkit.sequence.data import (
    encode_labels,
    label_codes,
    labels_from_json,
    labels_to_json,
    regression_targets,
)
from rnnkit.sequence.keras import estimator_from_keras, sorted_classes
from rnnkit.sequence.metrics import accuracy, classification_metrics, r2, regression_metrics
from rnnkit.training import read_json

__all__ = ["SequenceClassifier", "SequenceRegressor"]

_PARAMS_DOC = """
    Args:
        cell: the recurrent module: ``"rnn"`` (Elman, tanh), ``"lstm"``, ``"gru"``,
            ``"mingru"``, ``"minlstm"`` (``rnnkit.nn.CELL_NAMES``).
        hidden_size: H, features of the hidden state.
        num_layers: stacked recurrent layers.
        bidirectional: also read every row backwards; the head sees both final states.
        dropout: dropout between stacked layers and on the last hidden state.
        epochs: passes over the training rows (``fit(epochs=...)`` overrides it once).
        batch_size: rows per optimizer step (``fit(batch_size=...)`` overrides it once).
        lr: learning rate (constant).
        optimizer: ``"adam"`` (weight_decay as L2), ``"adamw"`` (decoupled) or ``"sgd"``.
        weight_decay: weight decay of the optimizer.
        grad_clip: clip the global gradient norm to this; 0 turns clipping off.
        validation_split: fraction of the rows, the last ones as in Keras, held out
            to report ``val_loss`` every epoch (ignored when ``validation_data`` is given).
        early_stopping_patience: stop after this many epochs without a lower
            ``val_loss`` (0: off; needs validation data); the last weights are kept.
        loss: see the class.
        warm_start: ``fit`` continues from the fitted weights (same architecture,
            features and outputs) instead of new random ones, with a fresh optimizer,
            as scikit-learn's ``warm_start`` and as Keras' ``fit``; ``from_keras`` sets it.
        device: ``"cpu"`` (None), ``"cuda"``, ``"cuda:1"``, ``"mps"``.
        threads: torch CPU threads while fitting and predicting (None: torch's setting).
        seed: makes ``fit`` deterministic (weights, shuffling, dropout); None draws a
            fresh seed each fit. ``fit`` leaves the global random state as it found it.
        verbose: False silences the progress output.

    Attributes (after ``fit`` or ``load``):
        model_: the ``torch.nn.Module`` (``SequenceNet``), in eval mode.
        n_features_in_: D, the features per step seen in ``fit``.
        history_: ``{"loss": [...], "val_loss": [...]}``, one value per epoch, as
            Keras' ``History.history`` (after ``fit`` only).
        metrics_: ``evaluate`` on the validation data (else the training data),
            with ``measured_on``; saved in the model folder.
        result_: the training loop's ``TrainResult`` (after ``fit`` only).
"""


class SequenceRegressor(SequenceEstimator):
    """Predict a number (or K numbers) from each sequence.

    ``y`` is (N,) or (N, K); ``predict`` returns the same shape (float64).
    ``loss`` is ``"mse"`` (default), ``"mae"`` or ``"huber"`` (delta 1).
    ``score`` is R^2 as ``sklearn.metrics.r2_score`` (averaged over outputs).
    """

    __doc__ = (__doc__ or "") + _PARAMS_DOC
    _losses = REGRESSOR_LOSSES
    _estimator_type: ClassVar[str] = "regressor"

    def __init__(
        self,
        *,
        cell: str = "rnn",
        hidden_size: int = 50,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        epochs: int = 10,
        batch_size: int = 32,
        lr: float = 1e-3,
        optimizer: str = "adam",
        weight_decay: float = 0.0,
        grad_clip: float = 1.0,
        validation_split: float = 0.0,
        early_stopping_patience: int = 0,
        loss: str = "mse",
        warm_start: bool = False,
        device: str | None = None,
        threads: int | None = None,
        seed: int | None = None,
        verbose: bool = True,
    ) -> None:
        self._store_params(locals())

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        lengths: Any = None,
        epochs: int | None = None,
        batch_size: int | None = None,
        validation_data: tuple[Any, ...] | None = None,
    ) -> SequenceRegressor:
        """Train on ``X`` (N, T, D) or (N, T) and targets ``y`` (N,) or (N, K); returns self.

        ``validation_data``: ``(X_val, y_val)`` or ``(X_val, y_val, lengths_val)``.
        """
        self._fit(X, y, lengths, epochs, batch_size, validation_data)
        return self

    def _fit_targets(self, y: Any, n: int) -> tuple[Tensor, int, dict[str, Any]]:
        arr, ndim = regression_targets(y, n)  # (N, K)
        return torch.from_numpy(arr), arr.shape[1], {"n_outputs_": arr.shape[1], "y_ndim_": ndim}

    def _targets(self, y: Any, n: int, fitted: dict[str, Any]) -> Tensor:
        arr, _ = regression_targets(y, n)
        if arr.shape[1] != fitted["n_outputs_"]:
            raise UserError(
                f"y_val has {arr.shape[1]} targets per row but y has {fitted['n_outputs_']}"
            )
        return torch.from_numpy(arr)

    def _metrics(self, outputs: Tensor, targets: Tensor) -> dict[str, Any]:
        return regression_metrics(targets.numpy(), outputs.numpy())

    def predict(self, X: Any, *, lengths: Any = None) -> np.ndarray:
        """Predictions for ``X``: (N,) or (N, K) as ``y`` was in ``fit``, float64."""
        out = self._outputs(*self._inputs(X, lengths)).numpy().astype(np.float64)  # (N, K)
        return out[:, 0] if self.y_ndim_ == 1 else out

    def score(self, X: Any, y: Any, *, lengths: Any = None) -> float:
        """R^2 of the predictions (1 is perfect, 0 is predicting the mean of ``y``)."""
        pred = self.predict(X, lengths=lengths)
        return r2(regression_targets(y, len(pred))[0], pred)

    def evaluate(self, X: Any, y: Any, *, lengths: Any = None) -> dict[str, Any]:
        """``{"mse", "rmse", "mae", "r2", "n"}`` on ``(X, y)``."""
        pred = self.predict(X, lengths=lengths)
        return regression_metrics(regression_targets(y, len(pred))[0], pred)

    def _shapes(self) -> dict[str, Any]:
        return {**super()._shapes(), "n_outputs": self.n_outputs_, "y_ndim": self.y_ndim_}

    def _restore_fitted(self, directory: Path, shapes: dict[str, Any]) -> int:
        self.n_outputs_ = int(shapes["n_outputs"])
        self.y_ndim_ = int(shapes["y_ndim"])
        return self.n_outputs_

    _keras_heads = ("linear",)

    @classmethod
    def from_keras(cls, model: Any, **params: Any) -> SequenceRegressor:
        """A fitted regressor holding a Keras 3 model's weights (a model or a ``.keras``
        path): ``SimpleRNN``/``LSTM``/``GRU`` layers (stacked, ``Bidirectional``) and a
        linear ``Dense(K)``; ``predict`` gives the Keras predictions ((N,) for K=1).
        ``params``: the other constructor arguments (``epochs``, ``lr``, ...);
        ``warm_start`` is True, so ``fit`` trains the Keras weights on (docs/keras.md)."""
        return estimator_from_keras(cls, model, params)  # type: ignore[no-any-return]

    def _keras_outputs(self, K: int) -> np.ndarray:
        self.n_outputs_, self.y_ndim_ = K, 1 if K == 1 else 2
        return np.arange(K)


class SequenceClassifier(SequenceEstimator):
    """Predict a class for each sequence.

    ``y`` holds any labels (ints, strings, bools), one per row; ``classes_`` is
    their sorted set, ``predict_proba`` returns (N, C) probabilities in that
    order, ``predict`` the most probable label. ``loss`` is ``"cross_entropy"``
    (softmax over C outputs, also for two classes). ``score`` is accuracy.
    """

    __doc__ = (__doc__ or "") + _PARAMS_DOC
    _losses = CLASSIFIER_LOSSES
    _estimator_type: ClassVar[str] = "classifier"

    def __init__(
        self,
        *,
        cell: str = "rnn",
        hidden_size: int = 50,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        epochs: int = 10,
        batch_size: int = 32,
        lr: float = 1e-3,
        optimizer: str = "adam",
        weight_decay: float = 0.0,
        grad_clip: float = 1.0,
        validation_split: float = 0.0,
        early_stopping_patience: int = 0,
        loss: str = "cross_entropy",
        warm_start: bool = False,
        device: str | None = None,
        threads: int | None = None,
        seed: int | None = None,
        verbose: bool = True,
    ) -> None:
        self._store_params(locals())

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        lengths: Any = None,
        epochs: int | None = None,
        batch_size: int | None = None,
        validation_data: tuple[Any, ...] | None = None,
    ) -> SequenceClassifier:
        """Train on ``X`` (N, T, D) or (N, T) and labels ``y`` (N,); returns self.

        ``validation_data``: ``(X_val, y_val)`` or ``(X_val, y_val, lengths_val)``.
        """
        self._fit(X, y, lengths, epochs, batch_size, validation_data)
        return self

    def _fit_targets(self, y: Any, n: int) -> tuple[Tensor, int, dict[str, Any]]:
        classes, codes = encode_labels(y, n)
        return torch.from_numpy(codes), len(classes), {"classes_": classes}

    def _targets(self, y: Any, n: int, fitted: dict[str, Any]) -> Tensor:
        return torch.from_numpy(label_codes(y, fitted["classes_"], n))

    def _metrics(self, outputs: Tensor, targets: Tensor) -> dict[str, Any]:
        proba = torch.softmax(outputs.double(), dim=-1).numpy()
        return classification_metrics(targets.numpy(), proba)

    def predict_proba(self, X: Any, *, lengths: Any = None) -> np.ndarray:
        """Class probabilities (N, C), columns in the order of ``classes_``, float64."""
        logits = self._outputs(*self._inputs(X, lengths))  # (N, C)
        return torch.softmax(logits.double(), dim=-1).numpy()

    def predict(self, X: Any, *, lengths: Any = None) -> np.ndarray:
        """The most probable label of each row (N,), of the labels' type."""
        proba = self.predict_proba(X, lengths=lengths)
        return self.classes_[proba.argmax(axis=1)]

    def score(self, X: Any, y: Any, *, lengths: Any = None) -> float:
        """Accuracy: the fraction of rows whose predicted label equals ``y``."""
        pred = self.predict(X, lengths=lengths)
        labels = np.asarray(y.detach().cpu() if isinstance(y, Tensor) else y)
        return accuracy(labels.reshape(len(pred)) if labels.size == len(pred) else labels, pred)

    def evaluate(self, X: Any, y: Any, *, lengths: Any = None) -> dict[str, Any]:
        """``{"accuracy", "log_loss", "n"}`` on ``(X, y)`` (labels must be known classes)."""
        proba = self.predict_proba(X, lengths=lengths)
        return classification_metrics(label_codes(y, self.classes_, len(proba)), proba)

    def _artifacts(self) -> dict[str, Any]:
        return {**super()._artifacts(), "labels.json": labels_to_json(self.classes_)}

    def _restore_fitted(self, directory: Path, shapes: dict[str, Any]) -> int:
        # labels.json is listed in the manifest, so load() has verified it is there
        self.classes_ = labels_from_json(read_json(directory / "labels.json"))
        return len(self.classes_)

    _keras_heads = ("softmax", "linear")
    _keras_output = "softmax"

    @classmethod
    def from_keras(cls, model: Any, *, classes: Any = None, **params: Any) -> SequenceClassifier:
        """A fitted classifier holding a Keras 3 model's weights (a model or a ``.keras``
        path) ending in ``Dense(C, "softmax")`` (or linear logits); ``classes``: the
        label of each output column (default 0..C-1). ``warm_start`` is True."""
        return estimator_from_keras(cls, model, params, classes=classes)  # type: ignore[no-any-return]

    def _keras_outputs(self, K: int, classes: Any = None) -> np.ndarray:
        self.classes_, order = sorted_classes(classes, K)
        return order
