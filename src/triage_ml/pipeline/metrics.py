"""Per-head metrics on out-of-fold predictions at a decision threshold."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    f1_score,
    precision_recall_curve,
    precision_recall_fscore_support,
)

from triage_ml.taxonomy import SENTIMENTS

CLASS_NAMES = {"actionable": ("noise", "actionable"), "priority_tier": ("tier2", "tier1"),
               "crisis": ("no_crisis", "crisis")}


def head_metrics(head: str, y: np.ndarray, prob: np.ndarray, threshold: float) -> dict[str, float]:
    """macro F1, per-class precision/recall/F1, PR-AUC, Brier; for crisis also recall/precision at the
    threshold. ``y``: (n,) 0/1; ``prob``: (n,) positive-class probability."""
    y = np.asarray(y).astype(int)
    pred = (np.asarray(prob) >= threshold).astype(int)
    precision, recall, f1, support = precision_recall_fscore_support(y, pred, labels=[0, 1], zero_division=0)
    out = {"macro_f1": float(f1_score(y, pred, average="macro", labels=[0, 1], zero_division=0)),
           "pr_auc": float(average_precision_score(y, prob)) if y.min() != y.max() else float("nan"),
           "brier": float(brier_score_loss(y, prob, labels=[0, 1])),
           "threshold": float(threshold), "n": float(len(y))}
    for i, name in enumerate(CLASS_NAMES[head]):
        out[f"{name}.precision"] = float(precision[i])
        out[f"{name}.recall"] = float(recall[i])
        out[f"{name}.f1"] = float(f1[i])
        out[f"{name}.support"] = float(support[i])
    if head == "crisis":
        out["recall_at_threshold"] = float(recall[1])
        out["precision_at_threshold"] = float(precision[1])
        out["best_recall_at_precision_0.5"] = best_recall_at_precision(y, prob, 0.5)
    return out


def best_recall_at_precision(y: np.ndarray, prob: np.ndarray, min_precision: float) -> float:
    """The highest recall of any threshold whose precision is at least ``min_precision`` (0 when none)."""
    if y.min() == y.max():
        return float("nan")
    precision, recall, _ = precision_recall_curve(y, prob)
    ok = precision[:-1] >= min_precision
    return float(recall[:-1][ok].max()) if ok.any() else 0.0


def sentiment_metrics(labels: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Macro F1 and per-class F1 of the likeliest sentiment. ``labels`` (n,) in SENTIMENTS; ``proba`` (n, 3) in
    SENTIMENTS' order."""
    predicted = np.array(SENTIMENTS)[proba.argmax(axis=1)]
    f1 = f1_score(labels, predicted, labels=list(SENTIMENTS), average=None, zero_division=0)
    return {"macro_f1": float(f1.mean()), **{f"{s}.f1": float(v) for s, v in zip(SENTIMENTS, f1, strict=True)},
            "accuracy": float((predicted == labels).mean()), "n": float(len(labels))}
