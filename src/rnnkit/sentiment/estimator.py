"""SentimentClassifier: a recurrent text classifier with its tokenizer and labels.

It follows the estimator contract of :mod:`rnnkit.estimator` (scikit-learn
style)::

    from rnnkit import SentimentClassifier

    clf = SentimentClassifier(preset="tiny", epochs=3)
    clf.fit(texts, labels, val_texts=dev_texts, val_labels=dev_labels)   # -> clf
    clf.predict(["a gripping, funny film"])        # -> ['pos']
    clf.predict_proba(["a gripping, funny film"])  # -> array (N, C), columns = clf.classes_
    clf.evaluate(dev_texts, dev_labels)            # -> accuracy, macro_f1, per_class, confusion
    clf.explain("a gripping, funny film")          # tokens and how much each moved it
    clf.save("models/mine"); clf = SentimentClassifier.load("models/mine")

    SentimentClassifier(preset="sst2").fit(run_dir="runs/sst2", jobs=2)  # data.source, 3 members

``fit()`` without data trains on the config's ``data.source``. With
``ensemble = N > 1`` (the ``sst2`` preset uses 3) it trains N members
(:mod:`rnnkit.sentiment.ensemble`); the classifier then holds them in
``members_`` and averages their probabilities. A run directory holds
``best/`` (the best dev accuracy) and ``checkpoint/`` (the last step), plus
``metrics.jsonl`` and ``curves.png``; an ensemble's holds ``ensemble.json``
and one such run per member.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.data.tokenizers import Tokenizer, tokenizer_from_dict
from rnnkit.errors import UserError
from rnnkit.estimator import Estimator
from rnnkit.sentiment.config import RESUME_KEYS, SentimentConfig, check_config
from rnnkit.sentiment.data import (
    BucketBatches,
    FitData,
    LabelEncoder,
    check_texts,
    eval_examples,
    fit_data,
    truncate,
)
from rnnkit.sentiment.ensemble import (
    average_explanations,
    check_ensemble_run_dir,
    is_ensemble,
    read_ensemble,
    train_members,
    write_ensemble,
)
from rnnkit.sentiment.model import TextClassifier, predict_batches
from rnnkit.sentiment.report import Explanation, classification_report
from rnnkit.sentiment.train import encode, fit_classifier
from rnnkit.training import check_run_dir, load_model_weights, read_json
from rnnkit.training.resume import check_resume_config

__all__ = ["SentimentClassifier"]


class SentimentClassifier(Estimator):
    """A recurrent text classifier (see the module docstring).

    Attributes (after ``fit`` or ``load``): ``model_`` (the :class:`TextClassifier`),
    ``tokenizer_``, ``labels_`` (:class:`~rnnkit.sentiment.data.LabelEncoder`),
    ``classes_``, ``members_`` (the fitted members of an ensemble; empty for one
    model) and after ``fit`` ``result_``, ``history_`` and ``metrics_``.
    """

    app = "sentiment"
    config_class = SentimentConfig
    artifact_files = ("tokenizer.json", "labels.json")

    model_: TextClassifier | None
    tokenizer_: Tokenizer
    labels_: LabelEncoder
    members_: list[SentimentClassifier]

    @property
    def classes_(self) -> list[Any]:
        """The labels, in the order of ``predict_proba``'s columns."""
        self._check_fitted()
        return list(self.labels_.classes_)

    # -- fit -------------------------------------------------------------------

    def fit(
        self,
        texts: Sequence[str] | None = None,
        labels: Sequence[Any] | None = None,
        *,
        val_texts: Sequence[str] | None = None,
        val_labels: Sequence[Any] | None = None,
        run_dir: str | os.PathLike[str] | None = None,
        resume: bool = False,
        overwrite: bool = False,
        jobs: int = 1,
    ) -> SentimentClassifier:
        """Fit tokenizer, labels and model(s) on ``texts``/``labels``; return ``self``.

        Without ``texts`` the config's ``data.source`` is read (validation: its
        ``val_source``, the dataset's dev split, or a held-out ``val_fraction``; on
        SST-2 with ``data.select_on = "train"``, held-out training sentences and, for
        ``sst2-phrases``, without the phrases inside them: :mod:`rnnkit.sentiment.selection`).
        Validation (``val_*``, else a seeded ``data.val_fraction`` of the data)
        picks the best evaluation (``train.eval_metric``, dev accuracy by default),
        whose weights the classifier keeps. ``run_dir``: where metrics and
        checkpoints go (a temporary directory when None); ``resume``: continue
        ``run_dir/checkpoint`` (the same data gives the same tokenizer, so the
        weights fit); ``overwrite``: replace a run already there. ``jobs``: ensemble
        members trained at a time, each in its own process with one torch thread.
        """
        cfg = self._runtime_config()
        check_config(cfg)  # the whole config, before any data is read
        if jobs < 1:
            raise UserError(f"jobs must be >= 1, got {jobs}")
        if cfg.ensemble > 1 or (run_dir is not None and is_ensemble(run_dir) and not resume):
            check_ensemble_run_dir(run_dir, resume=resume, overwrite=overwrite)
        else:
            check_run_dir(run_dir, resume=resume, overwrite=overwrite)
        if resume and run_dir is not None:
            saved = read_ensemble(run_dir)["config"] if is_ensemble(run_dir) else None
            check_resume_config(run_dir, cfg, RESUME_KEYS, saved=saved)
        with self._threads():
            data, measured_on = fit_data(
                cfg.data, texts, labels, val_texts, val_labels, seed=cfg.train.seed, say=self._say
            )
            if cfg.ensemble > 1:
                self._fit_ensemble(cfg, data, measured_on, run_dir, resume, overwrite, jobs)
            else:
                self._fit_one(cfg, data, measured_on, run_dir, resume, overwrite)
        return self

    def _fit_one(
        self,
        cfg: SentimentConfig,
        data: FitData,
        measured_on: str,
        run_dir: str | os.PathLike[str] | None,
        resume: bool,
        overwrite: bool,
    ) -> None:
        fitted = fit_classifier(
            cfg, *data, run_dir=run_dir, resume=resume, overwrite=overwrite, verbose=self.verbose
        )
        self.model_, self.tokenizer_, self.labels_ = fitted.model, fitted.tokenizer, fitted.labels
        self.config = fitted.config
        self.members_ = []
        self.result_ = fitted.result
        self.history_ = list(fitted.result.evals)
        self.metrics_ = {**fitted.metrics, "measured_on": measured_on}

    def _fit_ensemble(
        self,
        cfg: SentimentConfig,
        data: FitData,
        measured_on: str,
        run_dir: str | os.PathLike[str] | None,
        resume: bool,
        overwrite: bool,
        jobs: int,
    ) -> None:
        with tempfile.TemporaryDirectory(prefix="rnnkit-sentiment-") as tmp:
            root = Path(run_dir) if run_dir is not None else Path(tmp)
            t0 = time.perf_counter()
            figures = train_members(
                cfg, data, root, resume=resume, overwrite=overwrite, jobs=jobs, verbose=self.verbose
            )
            seconds = time.perf_counter() - t0
            names = [Path(f["run_dir"]).name for f in figures]
            device = cfg.train.device
            members = [self.load(root / n, device=device, verbose=self.verbose) for n in names]
        self._set_members(members)
        self.config = replace(cfg, model=members[0].config.model)
        report = self.evaluate(data[2], data[3], where="the validation data")
        self.result_ = {
            "members": figures,
            "seconds": seconds,
            "jobs": jobs,
            "val_accuracy": report["accuracy"],
            "val_macro_f1": report["macro_f1"],
        }
        self.history_ = [{"member": k + 1, **e} for k, f in enumerate(figures) for e in f["evals"]]
        self.metrics_ = {
            "val_accuracy": report["accuracy"],
            "val_macro_f1": report["macro_f1"],
            "measured_on": measured_on,
        }
        if run_dir is not None:
            write_ensemble(root, cfg, names, result=self.result_, metrics=self.metrics_)

    # -- ensembles -------------------------------------------------------------

    @classmethod
    def from_members(cls, members: Sequence[SentimentClassifier]) -> SentimentClassifier:
        """An ensemble of fitted classifiers (of the same labels): predictions average
        their probabilities, explanations their token scores."""
        if not members:
            raise UserError("an ensemble needs at least one member")
        first = members[0]
        ens = cls(
            config=replace(first.config, ensemble=len(members)),
            device=first.device,
            threads=first.threads,
            verbose=first.verbose,
        )
        ens._set_members(members)
        return ens

    def _set_members(self, members: Sequence[SentimentClassifier]) -> None:
        for m in members:
            m._check_fitted()
            if m.members_:
                raise UserError("ensemble members must be single models, not ensembles")
            if m.classes_ != members[0].classes_:
                raise UserError(
                    f"ensemble members disagree on the classes ({m.classes_} vs "
                    f"{members[0].classes_})"
                )
        self.members_ = list(members)
        first = self.members_[0]
        self.model_, self.tokenizer_, self.labels_ = first.model_, first.tokenizer_, first.labels_

    # -- predict -----------------------------------------------------------------

    def predict_proba(self, texts: Sequence[str], *, batch_size: int = 128) -> np.ndarray:
        """Class probabilities (N, C), columns in the order of ``classes_``."""
        self._check_fitted()
        texts = [texts] if isinstance(texts, str) else list(texts)
        if self.members_:
            probs = [m.predict_proba(texts, batch_size=batch_size) for m in self.members_]
            return np.mean(probs, axis=0)
        if len(texts) == 0:
            return np.zeros((0, len(self.classes_)), dtype=np.float32)
        check_texts(texts)
        with self._threads():
            ids = encode(self.tokenizer_, texts, self.config.data.max_len)
            batches = BucketBatches(ids, None, batch_size, shuffle=False)
            probs_t, _ = predict_batches(self.model_, batches)
        return probs_t.numpy()

    def predict(self, texts: Sequence[str], *, batch_size: int = 128) -> list[Any]:
        """The most probable label of each text."""
        proba = self.predict_proba(texts, batch_size=batch_size)
        return [self.labels_.classes_[i] for i in proba.argmax(1)]

    def evaluate(
        self,
        texts: Sequence[str] | None = None,
        labels: Sequence[Any] | None = None,
        *,
        batch_size: int = 128,
        where: str = "the evaluation data",
    ) -> dict[str, Any]:
        """Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix
        (:func:`~rnnkit.sentiment.report.classification_report`) as a JSON-ready dict.

        Without ``texts``: ``data.val_source``, else the dataset's dev/test split
        (``sst2:dev`` also when training selected on held-out training sentences,
        ``data.select_on = "train"``). A label not seen in training is an error.
        """
        self._check_fitted()
        if texts is None:
            if labels is not None:
                raise UserError("pass texts with the labels")
            where, examples = eval_examples(self.config.data)
            texts, labels = [e.text for e in examples], [e.label for e in examples]
        if labels is None or len(texts) != len(labels):
            n = 0 if labels is None else len(labels)
            raise UserError(f"{len(texts)} texts but {n} labels; pass one label each")
        y = self.labels_.transform(labels, where=where)
        pred = self.predict_proba(texts, batch_size=batch_size).argmax(1)
        return classification_report(y, pred, self.classes_)

    def explain(self, text: str, *, method: str = "grad_input", target: Any = None) -> Explanation:
        """Which tokens moved the prediction for ``text`` (shown highlighted in a notebook).

        ``grad_input`` (Shrikumar et al. 2016; Denil et al. 2014): score_t =
        sum_d e_td * d log p(y | x) / d e_td for the embedding e_t of token t and
        the predicted (or ``target``) class y: positive pushes towards y.
        ``attention``: the attention weights a_t (needs ``model.pooling=attention``).
        An ensemble averages its members' scores for its own label.
        """
        self._check_fitted()
        if self.members_:
            if target is None:
                label = self.predict([text])[0]
            else:
                label = self.classes_[self.labels_.transform([target], where="target")[0]]
            exps = [m.explain(text, method=method, target=label) for m in self.members_]
            prob = float(self.predict_proba([text])[0][self.classes_.index(label)])
            return average_explanations(exps, label, prob)
        check_texts([text])
        model = self.model_
        max_len = self.config.data.max_len
        ids, spans = self.tokenizer_.encode_with_spans(text)
        ids, spans = truncate(ids, max_len), truncate(spans, max_len)
        with self._threads():
            device = next(model.parameters()).device
            x = torch.tensor([ids], dtype=torch.long, device=device)  # (1, T)
            with torch.no_grad():
                out = model(x)
            probs = out.logits.float().softmax(-1)[0]  # (C,)
            y = int(probs.argmax()) if target is None else self.labels_.transform([target])[0]
            if method == "attention":
                if model.config.pooling != "attention":
                    raise UserError(
                        "method attention needs a model trained with model.pooling=attention; "
                        "use method grad_input"
                    )
                scores = out.attention[0].tolist()
            elif method == "grad_input":
                e = model.embed_tokens(x).detach().requires_grad_(True)  # (1, T, D)
                # cuDNN's RNN backward needs train mode; the CPU kernels do not care.
                with torch.backends.cudnn.flags(enabled=False):
                    logp = model(x, embeddings=e).logits.log_softmax(-1)[0, y]
                    (grad,) = torch.autograd.grad(logp, e)
                scores = (grad * e).sum(-1)[0].tolist()  # (T,)
            else:
                raise UserError(
                    f"explanation method must be grad_input or attention, got {method!r}"
                )
        tokens = [text[a:b] for a, b in spans]
        return Explanation(
            text, self.labels_.classes_[y], float(probs[y]), tokens, spans, scores, method
        )

    # -- save / load ---------------------------------------------------------------

    def _artifacts(self) -> dict[str, Any]:
        return {"tokenizer.json": self.tokenizer_.to_dict(), "labels.json": self.labels_.to_dict()}

    def _restore(self, directory: Path) -> None:
        self.tokenizer_ = tokenizer_from_dict(read_json(directory / "tokenizer.json"))
        self.labels_ = LabelEncoder.from_dict(read_json(directory / "labels.json"))
        model = TextClassifier(self.config.model)
        load_model_weights(model, directory)
        self.model_ = model.eval()
        self.members_ = []

    def _module(self) -> torch.nn.Module:
        if self.members_:
            return torch.nn.ModuleList([m.model_ for m in self.members_])
        return super()._module()

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the fitted model to ``directory`` (see :meth:`Estimator.save`); an
        ensemble writes ``ensemble.json`` and one saved model per member, ``member<k>/``."""
        self._check_fitted()
        if not self.members_:
            return super().save(directory)
        d = Path(directory)
        if d.exists() and not d.is_dir():
            raise UserError(f"{d} is a file, not a directory; pass a directory path to save into")
        if d.exists() and any(d.iterdir()) and not is_ensemble(d):
            raise UserError(
                f"{d} is not empty and is not an rnnkit ensemble directory; nothing was "
                "written - pass a new or empty directory"
            )
        names = [f"member{k + 1}" for k in range(len(self.members_))]
        for name, m in zip(names, self.members_, strict=True):
            m.save(d / name)
        write_ensemble(d, self.config, names, metrics=dict(getattr(self, "metrics_", {}) or {}))
        return d

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike[str],
        *,
        device: str | None = None,
        threads: int | None = None,
        verbose: bool = True,
    ) -> SentimentClassifier:
        """Load a folder written by :meth:`save` or a run directory (its ``best/``, else
        ``checkpoint/``); a directory with ``ensemble.json`` loads as an ensemble."""
        if not is_ensemble(directory):
            return super().load(directory, device=device, threads=threads, verbose=verbose)
        info = read_ensemble(directory)
        members = []
        for name in info["members"]:
            path = Path(directory) / name
            members.append(super().load(path, device=device, threads=threads, verbose=verbose))
        ens = cls.from_members(members)
        ens.device, ens.threads, ens.verbose = device, threads, verbose
        result = info.get("result") or {}  # ensembles trained before "metrics" was written
        old = {k: result[k] for k in ("val_accuracy", "val_macro_f1") if k in result}
        ens.metrics_ = dict(info.get("metrics") or old)
        return ens
