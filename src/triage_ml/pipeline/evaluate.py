"""Evaluate a model on labeled data at its stored thresholds (the gold set, or any labeled file)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from triage_ml.model.triage_model import TriageModel
from triage_ml.pipeline.cv import HeadTarget, head_targets
from triage_ml.pipeline.metrics import head_metrics, sentiment_metrics
from triage_ml.registry import load
from triage_ml.taxonomy import HEADS

if TYPE_CHECKING:
    from mlflow import MlflowClient


@dataclass(frozen=True)
class Evaluation:
    """Per-head metrics, and what they were computed from: labels and probabilities on labeled rows."""

    metrics: dict[str, dict[str, float]]
    targets: dict[str, HeadTarget]
    probs: dict[str, np.ndarray]  # (n,) per head over all rows
    thresholds: dict[str, float]
    sentiment: dict[str, float] | None = None  # the sentiment head's, where rows carry a sentiment and it has one


def evaluate_frame(model: TriageModel, data: pd.DataFrame) -> Evaluation:
    """Metrics per head on the rows where its label is known; heads without labels are left out."""
    texts = data["text"].tolist()
    embeddings = model.encoder.encode(texts)
    probs = model.probabilities(texts, embeddings)
    targets = head_targets(data)
    metrics = {h: head_metrics(h, targets[h].y, probs[h][targets[h].mask], model.thresholds[h])
               for h in HEADS if targets[h].mask.any()}
    sentiment = None
    if "sentiment" in data and data["sentiment"].notna().any() and model.sentiment_head is not None:
        known = data["sentiment"].notna().to_numpy()
        proba = model.sentiments([t for t, k in zip(texts, known, strict=True) if k], embeddings[known])
        sentiment = sentiment_metrics(data["sentiment"][known].astype(str).to_numpy(), proba)
    return Evaluation(metrics, targets, probs, dict(model.thresholds), sentiment)


def evaluate(model: TriageModel, data: pd.DataFrame) -> dict[str, dict[str, float]]:
    return evaluate_frame(model, data).metrics


def evaluate_model(client: MlflowClient, model_uri: str, data: pd.DataFrame) -> dict[str, dict[str, float]]:
    return evaluate(load(client, model_uri), data)
