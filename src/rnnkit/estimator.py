"""The one estimator contract that every rnnkit application follows.

:class:`Estimator` is the base of ``Forecaster``, ``SentimentClassifier``,
``TextGenerator``, ``Translator`` and ``SpeechRecognizer``. It holds what is
the same for all five, so a user learns it once:

- **Construction** from keyword arguments and/or a preset, scikit-learn style
  (nothing is trained or loaded in ``__init__``)::

      SentimentClassifier(preset="sst2", epochs=3, hidden_size=128, seed=1)
      SentimentClassifier(config=cfg)                  # a config object
      SentimentClassifier(model__hidden_size=128)      # a dotted key, '__' for '.'

  Values come from the config defaults <- ``preset`` <- ``config`` (instead of
  both) <- keyword overrides. An override names a leaf of the config tree: its
  full dotted key (``model.hidden_size`` or ``model__hidden_size``), or its
  last part when that is unique (``epochs``, ``hidden_size``); an unknown or
  ambiguous name is a one-line :class:`~rnnkit.errors.UserError` at once.
- **Runtime options**, the same everywhere: ``device`` (``"cpu"``, ``"cuda"``,
  ``"cuda:1"``; checked before any data is loaded), ``threads`` (torch CPU
  threads while this estimator works; ``None`` or ``"auto"``: the load-aware
  policy of :mod:`rnnkit.runtime`),
  ``seed`` (the training seed) and ``verbose`` (``False`` silences progress
  bars and messages).
- ``fit(...)`` returns ``self`` and leaves ``history_`` (one dict per
  evaluation), ``metrics_`` (the validation metrics of the kept model) and
  ``result_`` (the training loop's result). Called without data, it trains
  on the source named in the config (``data.source``).
- ``evaluate(...)`` returns a plain dict of metrics; ``predict(...)`` (and the
  application's own verb: ``generate``, ``translate``, ``transcribe``).
- ``save(dir)`` / ``Cls.load(dir)``: one folder layout for every application
  (``config.json``, ``model.safetensors``, the fitted tokenizer/labels/scalers
  as JSON, a ``README.md`` model card and ``manifest.json`` with checksums; see
  :mod:`rnnkit.training.checkpoint`). Saving never deletes what it did not
  write; loading verifies every file and refuses another application's folder.
- Use before ``fit``/``load`` raises :class:`~rnnkit.errors.NotFittedError`.
- ``get_params()`` / ``set_params(**params)`` as in scikit-learn, so
  ``sklearn.base.clone`` works.

A subclass sets ``app`` and ``config_class`` and implements ``fit``,
``evaluate`` and ``predict``, plus three small hooks for saving:
``_artifacts()`` (the JSON files beside the weights), ``_restore(directory)``
(the inverse, building ``model_``) and, if its module is not ``model_``,
``_module()``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import difflib
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch

from rnnkit import config as config_lib
from rnnkit.errors import NotFittedError, UserError
from rnnkit.runtime import check_threads, resolve_device, use_threads

__all__ = ["Estimator", "resolve_device", "use_threads"]


def _leaf_keys(config_class: type) -> list[str]:
    return [key for key, _, _ in config_lib.config_fields(config_class)]


def resolve_override_key(config_class: type, name: str) -> str:
    """The dotted config key that a keyword override ``name`` means (see the module doc)."""
    keys = _leaf_keys(config_class)
    dotted = name.replace("__", ".")
    if dotted in keys:
        return dotted
    if "." not in dotted:
        matches = [k for k in keys if k.rsplit(".", 1)[-1] == dotted]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            options = " or ".join(m.replace(".", "__") for m in matches)
            raise UserError(f"{name} is ambiguous; pass {options}")
    close = difflib.get_close_matches(dotted, keys + [k.rsplit(".", 1)[-1] for k in keys], n=1)
    hint = f"did you mean {close[0].replace('.', '__')}? " if close else ""
    raise UserError(
        f"unknown option {name} for {config_class.__name__}; {hint}"
        "options are the config's keys (dotted with '__', or their last part when unique)"
    )


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


class Estimator:
    """Base class of the five application estimators (see the module docstring)."""

    app: ClassVar[str] = ""
    config_class: ClassVar[type] = type(None)
    # Files a saved folder must hold besides config.json and model.safetensors.
    artifact_files: ClassVar[tuple[str, ...]] = ()
    # Where the runtime options live in the config tree (None: not in the config).
    device_key: ClassVar[str | None] = "train.device"
    seed_key: ClassVar[str | None] = "train.seed"
    progress_key: ClassVar[str | None] = "train.progress"

    def __init__(
        self,
        config: Any = None,
        *,
        preset: str | None = None,
        device: str | None = None,
        threads: int | str | None = None,
        seed: int | None = None,
        verbose: bool = True,
        **overrides: Any,
    ) -> None:
        if config is not None and preset is not None:
            raise UserError("pass config or preset, not both (a config already holds its preset)")
        if config is None:
            cfg = config_lib.load_config(self.config_class, app=self.app, preset=preset)
        elif isinstance(config, self.config_class):
            cfg = config  # stored as given (sklearn's clone checks identity); never mutated
        elif isinstance(config, Mapping):
            cfg = config_lib.from_dict(self.config_class, config)
        else:
            raise UserError(
                f"config must be a {self.config_class.__name__} or a dict, "
                f"got {type(config).__name__}"
            )
        self.config = cfg
        self.device = device
        self.threads = threads
        self.seed = seed
        self.verbose = verbose
        self.set_params(**overrides)
        check_threads(threads)  # validates the value now, not at fit time

    # -- scikit-learn parameter protocol ---------------------------------------

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments that rebuild this estimator (``sklearn.base.clone``)."""
        return {
            "config": copy.deepcopy(self.config) if deep else self.config,
            "device": self.device,
            "threads": self.threads,
            "seed": self.seed,
            "verbose": self.verbose,
        }

    def set_params(self, **params: Any) -> Estimator:
        """Set runtime options, ``config``, or config keys (as in the constructor)."""
        overrides: dict[str, Any] = {}
        for name, value in params.items():
            if name in ("device", "threads", "seed", "verbose"):
                setattr(self, name, value)
            elif name == "config":
                self.config = value
            else:
                overrides[resolve_override_key(self.config_class, name)] = value
        sections = {f.name for f in dataclasses.fields(self.config_class)}
        for key, value in overrides.items():
            if key in sections and dataclasses.is_dataclass(value):
                self.config = dataclasses.replace(self.config, **{key: copy.deepcopy(value)})
            else:
                self.config = config_lib.apply_overrides(self.config, {key: value})
        return self

    def __repr__(self) -> str:
        changed = _flat(config_lib.to_dict(self.config))
        default = _flat(config_lib.to_dict(self.config_class()))
        parts = [
            f"{k.replace('.', '__')}={v!r}"
            for k, v in changed.items()
            if default.get(k) != v and k not in (self.device_key, self.seed_key)
        ]
        for name in ("device", "threads", "seed"):
            if getattr(self, name) is not None:
                parts.append(f"{name}={getattr(self, name)!r}")
        if not self.verbose:
            parts.append("verbose=False")
        return f"{type(self).__name__}({', '.join(parts)})"

    # -- runtime ----------------------------------------------------------------

    def _runtime_config(self) -> Any:
        """``self.config`` with ``device``/``seed``/``verbose`` applied, device checked."""
        cfg = self.config
        values: dict[str, Any] = {}
        if self.device is not None and self.device_key:
            values[self.device_key] = str(self.device)
        if self.seed is not None and self.seed_key:
            values[self.seed_key] = int(self.seed)
        if not self.verbose and self.progress_key:
            values[self.progress_key] = "none"
        cfg = config_lib.apply_overrides(cfg, values) if values else cfg
        resolve_device(self._device_name(cfg))
        return cfg

    def _device_name(self, cfg: Any = None) -> str:
        if self.device is not None:
            return str(self.device)
        if self.device_key:
            value: Any = cfg if cfg is not None else self.config
            for part in self.device_key.split("."):
                value = getattr(value, part)
            return str(value)
        return "cpu"

    def _threads(self) -> contextlib.AbstractContextManager[None]:
        """``with self._threads():`` around work that should use ``threads`` (and the
        allocator tuning; both in :func:`rnnkit.runtime.use_threads`)."""
        return use_threads(self.threads)

    @contextlib.contextmanager
    def _quiet(self) -> Iterator[None]:
        """Silence stdout/stderr chatter of the work inside when ``verbose=False``."""
        if self.verbose:
            yield
            return
        with (
            open(os.devnull, "w") as null,
            contextlib.redirect_stderr(null),
            contextlib.redirect_stdout(null),
        ):
            yield

    def _say(self, message: str) -> None:
        """A progress message on stderr (silent with ``verbose=False``)."""
        if self.verbose:
            print(message, file=sys.stderr)

    def _trainer_meta(self) -> dict[str, str]:
        """What a training run's checkpoints record in their manifest: who loads them."""
        return {"app": self.app, "estimator": type(self).__name__}

    # -- fitted state --------------------------------------------------------------

    def _is_fitted(self) -> bool:
        return getattr(self, "model_", None) is not None

    def _check_fitted(self) -> None:
        if not self._is_fitted():
            name = type(self).__name__
            raise NotFittedError(
                f"this {name} is not fitted yet; call fit() first or {name}.load(directory)"
            )

    # -- save / load ---------------------------------------------------------------

    def _module(self) -> torch.nn.Module:
        """The module whose weights go to ``model.safetensors``."""
        return self.model_  # type: ignore[attr-defined, no-any-return]

    def _artifacts(self) -> dict[str, Any]:
        """JSON files saved beside the weights (tokenizer, labels, scalers)."""
        return {}

    def _restore(self, directory: Path) -> None:
        """Rebuild the fitted state (``model_`` and friends) from a verified folder."""
        raise NotImplementedError(f"{type(self).__name__} must implement _restore")

    def _card(self) -> str:
        """The ``README.md`` model card written by :meth:`save`."""
        from rnnkit.model_card import model_card

        return model_card(self)

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the fitted model to ``directory`` and return its path.

        ``directory`` is created if needed; an earlier saved model there is
        replaced atomically, the user's other files are kept, and a non-empty
        directory that holds no rnnkit model is refused (nothing is deleted).
        """
        from rnnkit.training.checkpoint import write_checkpoint

        self._check_fitted()
        return write_checkpoint(
            directory,
            model=self._module(),
            config=config_lib.to_dict(self.config),
            extra_json=self._artifacts(),
            meta={
                "app": self.app,
                "estimator": type(self).__name__,
                "metrics": dict(getattr(self, "metrics_", {}) or {}),
            },
            card=self._card(),
        )

    def export_onnx(self, path: str | os.PathLike[str], *, streaming: bool = False) -> Path:
        """Write the fitted network as an ONNX graph to ``path``; return the path.

        ``streaming=True`` exports the step (or chunk) graph with the recurrent
        state as an input and an output, where the application has one. A JSON
        sidecar beside it (``<name>.json``) names the inputs and outputs, their
        shapes, and what the graph does not cover (tokenisers, feature extraction,
        beam search stay in Python). Needs ``pip install "rnnkit[onnx]"``; see
        docs/export.md and ``rnnkit.<app>.export``.
        """
        import importlib

        self._check_fitted()
        try:  # by name: the core never imports an application
            exporter = importlib.import_module(f"rnnkit.{self.app}.export")
        except ModuleNotFoundError as exc:
            if exc.name != f"rnnkit.{self.app}.export":
                raise
            raise UserError(f"{type(self).__name__} models have no ONNX export") from None
        from rnnkit.export.onnx import require_onnx

        require_onnx()
        with self._threads():
            return Path(exporter.export_onnx(self, path, streaming=streaming))

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike[str],
        *,
        device: str | None = None,
        threads: int | None = None,
        verbose: bool = True,
    ) -> Estimator:
        """Load a folder written by :meth:`save`, or a run directory (its ``best/``,
        else ``checkpoint/``). Every file is checked against the manifest first."""
        from rnnkit.training.checkpoint import read_json, read_manifest, resolve_checkpoint

        d = resolve_checkpoint(directory, required=("config.json", "model.safetensors"))
        manifest = read_manifest(d) or {}
        app = manifest.get("app")
        if app and app != cls.app:
            owner = manifest.get("estimator", app)
            raise UserError(
                f"{d} holds a {app} model ({owner}), not a {cls.app} model; "
                f"load it with rnnkit.{owner}.load"
            )
        missing = [name for name in cls.artifact_files if not (d / name).is_file()]
        if missing:
            raise UserError(
                f"{d} is not a saved {cls.app} model (missing {', '.join(missing)}); pass a "
                f"folder written by {cls.__name__}.save() or a run directory of "
                f"'rnnkit {cls.app} train'"
            )
        try:
            raw = cls._upgrade_config(read_json(d / "config.json"))
            cfg = config_lib.from_dict(cls.config_class, raw)
        except UserError as exc:
            raise UserError(f"{d / 'config.json'} is not a {cls.app} config ({exc})") from exc
        est = cls._from_config(cfg, device=device, threads=threads, verbose=verbose)
        with est._threads():
            try:
                est._restore(d)
            except UserError:
                raise
            except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
                # A file that parses but does not hold what was saved (e.g. an emptied
                # JSON file in a folder written before manifests existed).
                raise UserError(
                    f"damaged: {d} does not hold a complete {cls.app} model "
                    f"({type(exc).__name__}: {exc}); save or train again"
                ) from exc
        est.metrics_ = dict(manifest.get("metrics") or {})
        if device is not None:
            est._to_device()
        return est

    @classmethod
    def _from_config(cls, cfg: Any, **runtime: Any) -> Estimator:
        """The estimator that ``load`` fills in: override if ``__init__`` takes no config."""
        return cls(config=cfg, **runtime)

    @classmethod
    def _upgrade_config(cls, raw: Any) -> Any:
        """``config.json`` of an earlier rnnkit as this version reads it (renamed or
        dropped keys); the default changes nothing."""
        return raw

    def _to_device(self) -> None:
        """Move the fitted model to ``self.device`` (after ``load(device=...)``)."""
        self._module().to(resolve_device(self._device_name()))
