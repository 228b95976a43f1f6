"""Evaluate a registered model on labeled data at its stored thresholds."""

from __future__ import annotations

import pandas as pd

from triage_ml.features.frame import feature_frame
from triage_ml.model.pyfunc import load_registered
from triage_ml.model.triage_model import TriageModel
from triage_ml.pipeline.cv import head_targets
from triage_ml.pipeline.metrics import head_metrics
from triage_ml.taxonomy import HEADS


def evaluate(model: TriageModel, data: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per-head metrics on the rows where each head's label is known; heads with no labels are left out."""
    texts = data["text"].tolist()
    probs = model.head_probabilities(feature_frame(texts, model.encoder.encode(texts)))
    targets = head_targets(data)
    return {h: head_metrics(h, targets[h].y, probs[h][targets[h].mask], model.thresholds[h])
            for h in HEADS if targets[h].mask.any()}


def evaluate_model(model_uri: str, data: pd.DataFrame) -> dict[str, dict[str, float]]:
    return evaluate(load_registered(model_uri), data)
