"""Folds, per-head targets and out-of-fold predictions."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import StratifiedGroupKFold
from tqdm.auto import tqdm

from triage_ml.errors import ConfigError
from triage_ml.model.heads import TextEmbeddingClassifier
from triage_ml.pipeline.config import HeadConfig, TrainConfig
from triage_ml.taxonomy import HEADS, SENTIMENTS


@dataclass(frozen=True)
class HeadTarget:
    """A head's labels over all rows: ``labels`` (n,) is 0/1 where known and -1 where unknown."""

    labels: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        return self.labels >= 0

    @property
    def y(self) -> np.ndarray:
        return self.labels[self.mask]


def head_targets(data: pd.DataFrame) -> dict[str, HeadTarget]:
    """Positive class: actionable; tier 1 (on actionable rows only); crisis."""
    actionable = data["actionable"]
    tier = data["priority_tier"]
    crisis = data["crisis"]
    masks = {
        "actionable": actionable.notna().to_numpy(),
        "priority_tier": ((actionable == True) & tier.notna()).fillna(False).to_numpy(dtype=bool),  # noqa: E712
        "crisis": crisis.notna().to_numpy(),
    }
    values = {"actionable": actionable, "priority_tier": tier == 1, "crisis": crisis}
    return {h: HeadTarget(np.where(masks[h], values[h].fillna(False).astype(int).to_numpy(), -1))
            for h in HEADS}


def make_folds(data: pd.DataFrame, n_splits: int, seed: int) -> np.ndarray:
    """Fold number per row: stratified on the label combination, grouped by conversation."""
    key = (data["actionable"].astype("string").fillna("?") + "|" + data["priority_tier"].astype("string")
           .fillna("?") + "|" + data["crisis"].astype("string").fillna("?"))
    groups = data["conversation_id"] if "conversation_id" in data else data["message_id"]
    groups = groups.astype("string").fillna("").mask(lambda g: g == "", data["message_id"])
    folds = np.full(len(data), -1)
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # rare label combinations: fewer members than folds
        for k, (_, test) in enumerate(splitter.split(np.zeros(len(data)), key, groups)):
            folds[test] = k
    return folds


def build_head(head: HeadConfig, config: TrainConfig) -> CalibratedClassifierCV:
    """An unfitted, calibrated head."""
    params = head.model_dump()
    base = TextEmbeddingClassifier(**params, random_state=config.seed)
    return CalibratedClassifierCV(base, method=config.calibration.method, cv=config.calibration.folds,
                                  ensemble=config.calibration.ensemble)


def check_trainable(targets: dict[str, HeadTarget], min_per_class: int) -> None:
    for name, target in targets.items():
        counts = np.bincount(target.y, minlength=2) if target.y.size else np.zeros(2, dtype=int)
        if counts.min() < min_per_class:
            raise ConfigError(
                f"head '{name}' has {counts[1]} positive and {counts[0]} negative labeled rows; it needs at "
                f"least {min_per_class} of each for cross-validation (add labeled data or lower cv_folds)")


class FoldFeatures(Protocol):
    """Features for fold ``k`` given its training rows (see ``pipeline.fold_features``)."""

    def fold(self, k: int, train: np.ndarray) -> pd.DataFrame: ...


def out_of_fold(source: FoldFeatures, targets: dict[str, HeadTarget], folds: np.ndarray,
                config: TrainConfig, *, weights: np.ndarray | None = None,
                progress: bool = True) -> dict[str, np.ndarray]:
    """Out-of-fold positive-class probability per head, shape (n,), NaN where the head has no label.
    ``weights`` (n,) are the rows' sample weights in the heads' fits (None: all 1)."""
    check_trainable(targets, min_per_class=config.cv_folds * config.calibration.folds)
    oof = {h: np.full(len(folds), np.nan) for h in HEADS}
    n_folds = int(folds.max()) + 1
    steps = tqdm(total=n_folds * len(HEADS), desc="cross-validation", unit="fit", disable=not progress)
    for k in range(n_folds):
        features = source.fold(k, folds != k)
        for name in HEADS:
            target = targets[name]
            train = target.mask & (folds != k)
            test = target.mask & (folds == k)
            head = build_head(config.heads[name], config)
            head.fit(features[train], target.labels[train], **_weights(weights, train))
            oof[name][test] = head.predict_proba(features[test])[:, list(head.classes_).index(1)]
            steps.update()
    steps.close()
    return oof


def fit_heads(features: pd.DataFrame, targets: dict[str, HeadTarget], config: TrainConfig, *,
              weights: np.ndarray | None = None) -> dict:
    """Each head fitted on every row where its label is known."""
    heads = {}
    for name in HEADS:
        head = build_head(config.heads[name], config)
        mask = targets[name].mask
        heads[name] = head.fit(features[mask], targets[name].y, **_weights(weights, mask))
    return heads


def fit_kind_head(features: pd.DataFrame, data: pd.DataFrame, config: TrainConfig, *,
                  weights: np.ndarray | None = None, min_rows: int = 10) -> TextEmbeddingClassifier | None:
    """A multi-class head over the crisis kinds (docs/taxonomy.md), fitted on the crisis rows that name a
    kind, with the crisis head's settings and no calibration (it names the likeliest kind and its
    probability; it decides nothing). None when there are fewer than ``min_rows`` such rows or one kind."""
    if "crisis_kind" not in data:
        return None
    rows = ((data["crisis"] == True) & data["crisis_kind"].notna()).fillna(False).to_numpy(dtype=bool)  # noqa: E712
    kinds = data["crisis_kind"].to_numpy(dtype=object)[rows].astype(str)
    if rows.sum() < min_rows or np.unique(kinds).size < 2:
        return None
    head = TextEmbeddingClassifier(**config.heads["crisis"].model_dump(), random_state=config.seed)
    return head.fit(features[rows], kinds, **_weights(weights, rows))


def fit_sentiment_head(features: pd.DataFrame, data: pd.DataFrame, config: TrainConfig, *,
                       weights: np.ndarray | None = None, min_rows: int = 30) -> TextEmbeddingClassifier | None:
    """A multi-class head over SENTIMENTS, fitted on the rows whose ``sentiment`` is known (the real tweets carry
    their source's label), with the default head settings and no calibration: it decides nothing. None when
    there are fewer than ``min_rows`` such rows or a sentiment has none."""
    if "sentiment" not in data:
        return None
    rows = data["sentiment"].notna().to_numpy(dtype=bool)
    labels = data["sentiment"].to_numpy(dtype=object)[rows].astype(str)
    if rows.sum() < min_rows or set(labels) != set(SENTIMENTS):
        return None
    head = TextEmbeddingClassifier(**HeadConfig().model_dump(), random_state=config.seed)
    return head.fit(features[rows], labels, **_weights(weights, rows))


def _weights(weights: np.ndarray | None, rows: np.ndarray) -> dict[str, np.ndarray]:
    """``sample_weight`` for a fit on ``rows`` (a mask), or nothing when every row weighs the same."""
    return {} if weights is None else {"sample_weight": weights[rows]}
