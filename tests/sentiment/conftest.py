"""Shared fixtures of the sentiment tests: a tiny labelled set, a tiny config, a fitted model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from rnnkit import SentimentClassifier
from rnnkit.sentiment import SentimentConfig, load_config

POS = [
    "a gripping , funny film",
    "great acting and a lovely story",
    "wonderful , warm and moving",
    "i loved every minute",
    "funny , smart and great fun",
    "a lovely , gripping story",
]
NEG = [
    "a dull , boring mess",
    "terrible acting and a weak story",
    "awful , cold and tedious",
    "i hated every minute",
    "boring , dumb and no fun",
    "a weak , dull story",
]


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny models: thread hand-offs cost more than they bring on a shared 2-core box.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def pos() -> list[str]:
    return list(POS)


@pytest.fixture
def neg() -> list[str]:
    return list(NEG)


def _tiny_config(**over) -> SentimentConfig:
    base = {
        "model.embed_dim": 16,
        "model.hidden_size": 16,
        "model.dropout": 0.0,
        "model.embed_dropout": 0.0,
        "epochs": 40,
        "data.batch_size": 4,
        "train.lr": 1e-2,
        "train.warmup_steps": 5,
        "train.progress": "none",
        "train.plot": False,
        "train.early_stopping_patience": 0,
    }
    base.update(over)
    return load_config(overrides=base)


@pytest.fixture
def tiny_config() -> Callable[..., SentimentConfig]:
    """``tiny_config(**{"dotted.key": value})``: a small, fast config (no plots, no bars)."""
    return _tiny_config


@pytest.fixture(scope="session")
def fitted() -> SentimentClassifier:
    """A classifier fitted on the 12 tiny texts (shared: do not modify it)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        texts, labels = POS + NEG, ["pos"] * 6 + ["neg"] * 6
        clf = SentimentClassifier(_tiny_config(), verbose=False)
        return clf.fit(texts, labels, val_texts=texts, val_labels=labels)
    finally:
        torch.set_num_threads(n)


@pytest.fixture
def tiny_tsv(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.tsv"
    rows = [f"{t}\tpositive" for t in POS] + [f"{t}\tnegative" for t in NEG]
    p.write_text("text\tlabel\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return p
