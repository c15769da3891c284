"""Arrays in, tensors out: the input checks and mini-batches of the sequence estimators.

Inputs are used as given: nothing is standardised, scaled or centred (scale
features and targets yourself, e.g. with a scikit-learn transformer in a
Pipeline). ``X`` may be a NumPy array, a torch tensor or anything
``numpy.asarray`` reads, of shape (N, T, D) (N sequences of T steps of D
features) or (N, T) (one feature per step). ``lengths`` (N,) marks rows that
are shorter than T: steps at and past a row's length are padding, set to 0
here (so NaN padding is fine) and skipped by the recurrent modules.

Every bad input is a one-line :class:`~rnnkit.errors.UserError` (a
``ValueError``) that names the shape or value and says what to do; values
that are not numbers at all raise ``TypeError`` as NumPy does.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor

from rnnkit.errors import UserError

__all__ = [
    "Batches",
    "as_sequences",
    "encode_labels",
    "label_codes",
    "labels_from_json",
    "labels_to_json",
    "regression_targets",
]


def _to_numpy(a: Any, name: str) -> np.ndarray:
    if isinstance(a, Tensor):
        a = a.detach().cpu()
        if a.is_floating_point() and a.dtype not in (torch.float32, torch.float64):
            a = a.float()  # bfloat16/float16: NumPy has no bfloat16
        return a.numpy()
    if hasattr(a, "nnz") and hasattr(a, "toarray"):
        raise UserError(
            f"{name} is a sparse matrix; recurrent models need dense arrays: pass {name}.toarray()"
        )
    try:
        return np.asarray(a)
    except ValueError as exc:  # ragged nested lists
        raise UserError(
            f"{name} is not a rectangular array ({exc}); pad the rows to one length T and "
            "pass lengths=(N,) to mark the padding"
        ) from None


def _as_numbers(arr: np.ndarray, name: str) -> np.ndarray:
    """``arr`` as float32, or an error for complex, text or other non-numbers."""
    if arr.dtype.kind == "c":
        raise UserError(
            f"Complex data not supported: {name} has dtype {arr.dtype}; pass real "
            "numbers (e.g. split real and imaginary parts into two features)"
        )
    if arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(np.float64)
        except TypeError as exc:  # e.g. a dict in an object array
            raise TypeError(f"{name} must hold numbers: {exc}") from None
        except ValueError as exc:  # e.g. a string that is not a number
            raise UserError(
                f"{name} must hold numbers ({exc}); encode text or categories as numbers first"
            ) from None
    return arr.astype(np.float32)


def _first_bad(finite: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(~finite)[0])


def as_sequences(
    X: Any,
    lengths: Any = None,
    *,
    n_features: int | None = None,
    owner: str = "this estimator",
) -> tuple[Tensor, Tensor | None]:
    """``X`` as a float32 tensor (N, T, D) and ``lengths`` as int64 (N,) or None.

    ``n_features``: the D seen in ``fit``, to check ``X`` at predict time.
    """
    arr = _as_numbers(_to_numpy(X, "X"), "X")
    shape = tuple(arr.shape)
    if arr.ndim == 2:
        arr = arr[:, :, None]  # (N, T) -> (N, T, 1): one feature per step
    elif arr.ndim == 1:
        raise UserError(
            f"X must have shape (N, T, D) or (N, T), got a 1-D array of shape {shape}. "
            f"Reshape your data: X[None, :] is one sequence of {shape[0]} steps, X[:, None] "
            f"is {shape[0]} sequences of one step"
        )
    elif arr.ndim != 3:
        raise UserError(
            f"X must have shape (N, T, D) (N sequences, T steps, D features) or (N, T) for "
            f"one feature, got shape {shape}; reshape it, e.g. X.reshape(N, T, D)"
        )
    N, T, D = arr.shape
    if N == 0:
        raise UserError(f"X holds 0 sequences (shape {shape}); pass at least one")
    if T == 0 or D == 0:
        raise UserError(
            f"X has no time steps or no features (shape {shape}); "
            "each sequence needs at least one step of at least one feature"
        )
    if n_features is not None and n_features != D:
        raise UserError(
            f"X has D={D} features per step (shape {shape}) but {owner} was fitted with "
            f"D={n_features}; pass X of shape (N, T, {n_features})"
        )
    lens = None
    if lengths is not None:
        lens = _to_numpy(lengths, "lengths")
        if lens.dtype.kind not in "iu":
            raise UserError(
                f"lengths must hold integers, got dtype {lens.dtype}; pass the "
                "number of real steps of each row, e.g. lengths.astype(int)"
            )
        if lens.shape != (N,):
            raise UserError(
                f"lengths must have shape ({N},), one per sequence of X "
                f"(shape {shape}), got shape {tuple(lens.shape)}"
            )
        bad = np.flatnonzero((lens < 1) | (lens > T))
        if bad.size:
            i = int(bad[0])
            raise UserError(
                f"lengths must be between 1 and T={T} (the steps of X), got "
                f"lengths[{i}]={int(lens[i])}"
            )
        valid = np.arange(T) < lens[:, None]  # (N, T): True at real steps
        arr = np.where(valid[:, :, None], arr, np.float32(0.0))  # padding -> 0, even NaN
    finite = np.isfinite(arr)
    if not finite.all():
        n, t, d = _first_bad(finite)
        raise UserError(
            f"X contains NaN or infinity (X[{n}, {t}, {d}] of the (N, T, D) array); fill or "
            "drop those values, or mark trailing padding with lengths="
        )
    x = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    return x, None if lens is None else torch.from_numpy(lens.astype(np.int64))


def _require_y(y: Any) -> None:
    if y is None:
        raise UserError(
            "this estimator requires y to be passed, but the target y is None; "
            "pass one target per sequence: fit(X, y)"
        )


def regression_targets(y: Any, n: int) -> tuple[np.ndarray, int]:
    """``y`` (N,) or (N, K) as float32 (N, K), and ``y``'s ndim (1 or 2)."""
    _require_y(y)
    arr = _as_numbers(_to_numpy(y, "y"), "y")
    ndim = arr.ndim
    shape = tuple(arr.shape)
    if arr.ndim == 1:
        arr = arr[:, None]
    elif arr.ndim != 2 or arr.shape[1] == 0:
        raise UserError(f"y must have shape (N,) or (N, K) for K targets, got shape {shape}")
    if arr.shape[0] != n:
        raise UserError(
            f"y has {arr.shape[0]} rows (shape {shape}) but X has {n} sequences; "
            "pass one target row per sequence"
        )
    finite = np.isfinite(arr)
    if not finite.all():
        raise UserError(
            f"y contains NaN or infinity (at row {_first_bad(finite)[0]}); "
            "drop those rows or fill them"
        )
    return arr, ndim


def _label_array(y: Any) -> np.ndarray:
    _require_y(y)
    arr = _to_numpy(y, "y")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.ravel()  # a column vector of labels
    if arr.ndim != 1:
        raise UserError(
            f"y must have shape (N,), one label per sequence, got shape "
            f"{tuple(arr.shape)}; for one-hot rows pass y.argmax(axis=1)"
        )
    kind = arr.dtype.kind
    if kind == "c":
        raise UserError(f"Complex data not supported: y has dtype {arr.dtype}; pass class labels")
    if kind == "O":
        items = list(arr)
        if all(isinstance(v, str) for v in items):
            return arr
        if all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in items):
            return arr.astype(np.int64)
        if all(isinstance(v, numbers.Real) for v in items):
            arr = arr.astype(np.float64)
            kind = "f"
        else:
            raise UserError(
                "Unknown label type: y mixes types (e.g. strings and numbers); "
                "pass labels of one type: all ints or all strings"
            )
    if kind == "f":
        if not np.isfinite(arr).all():
            raise UserError("y contains NaN or infinity; drop those rows or give them a label")
        if np.any(arr != np.round(arr)):
            raise UserError(
                "Unknown label type: y holds continuous values (e.g. "
                f"{float(arr[arr != np.round(arr)][0])!r}); a classifier needs class labels: "
                "use SequenceRegressor for numeric targets"
            )
    elif kind not in "biuU":
        raise UserError(f"Unknown label type: y has dtype {arr.dtype}; pass ints or strings")
    return arr


def encode_labels(y: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(classes, codes)``: the sorted distinct labels and each row's index into them."""
    arr = _label_array(y)
    if arr.shape[0] != n:
        raise UserError(
            f"y has {arr.shape[0]} labels but X has {n} sequences; pass one label per sequence"
        )
    classes, codes = np.unique(arr, return_inverse=True)
    if len(classes) < 2:
        raise UserError(
            f"y has only one class ({classes[:1].tolist()[0]!r}); a classifier needs at "
            "least two classes in the training data"
        )
    return classes, codes.astype(np.int64)


def label_codes(y: Any, classes: np.ndarray, n: int) -> np.ndarray:
    """The index of each label of ``y`` in ``classes``, or an error naming an unknown label."""
    arr = _label_array(y)
    if arr.shape[0] != n:
        raise UserError(
            f"y has {arr.shape[0]} labels but X has {n} sequences; pass one label per sequence"
        )
    codes = np.searchsorted(classes, arr)
    codes = np.clip(codes, 0, len(classes) - 1)
    unknown = classes[codes] != arr
    if unknown.any():
        raise UserError(
            f"y holds label {arr[unknown][:1].tolist()[0]!r}, not seen in fit (classes: "
            f"{classes[:10].tolist()}); evaluate on known labels only"
        )
    return codes.astype(np.int64)


def labels_to_json(classes: np.ndarray) -> dict[str, Any]:
    return {"classes": classes.tolist(), "dtype": classes.dtype.str}


def labels_from_json(data: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(data["dtype"])
    if dtype.kind == "O":
        out = np.empty(len(data["classes"]), dtype=object)
        out[:] = data["classes"]
        return out
    return np.asarray(data["classes"], dtype=dtype)


class Batches:
    """Mini-batches ``(x, y, lengths)`` of rows; reshuffled each epoch from ``(seed, epoch)``.

    Iterating again gives the same batches for the same epoch (the training
    loop's contract for a deterministic run).
    """

    def __init__(
        self,
        x: Tensor,
        y: Tensor,
        lengths: Tensor | None,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
    ) -> None:
        self.x, self.y, self.lengths = x, y, lengths
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def sizes(self) -> list[int]:
        """The number of rows of each batch of an epoch."""
        n, b = len(self.x), self.batch_size
        return [min(b, n - i) for i in range(0, n, b)]

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor | None]]:
        n = len(self.x)
        if self.shuffle:
            order = torch.from_numpy(np.random.default_rng([self.seed, self.epoch]).permutation(n))
        else:
            order = torch.arange(n)
        for i in range(0, n, self.batch_size):
            idx = order[i : i + self.batch_size]
            lens = None if self.lengths is None else self.lengths[idx]
            yield self.x[idx], self.y[idx], lens
