"""Sentiment analysis and any text classification with recurrent networks.

    from rnnkit import SentimentClassifier
    from rnnkit.sentiment import SentimentConfig, load_config

The application reads top to bottom: ``config`` (the config tree) ->
``readers`` (files, SST-2, IMDB) -> ``selection`` (model selection on held-out
SST-2 training sentences) -> ``data`` (splits, labels, batches) ->
``model`` (the network) -> ``train`` (loss, optimizer, fitting one model) ->
``ensemble`` (N members, averaged) -> ``estimator`` (:class:`SentimentClassifier`)
-> ``cli`` (``rnnkit sentiment ...``); ``report`` holds the metrics, the
confusion-matrix plot and the rendering of explanations.
"""

from __future__ import annotations

from rnnkit.sentiment.config import (
    SentimentConfig,
    SentimentDataConfig,
    TextClassifierConfig,
    load_config,
)
from rnnkit.sentiment.estimator import SentimentClassifier

__all__ = [
    "SentimentClassifier",
    "SentimentConfig",
    "SentimentDataConfig",
    "TextClassifierConfig",
    "load_config",
]
