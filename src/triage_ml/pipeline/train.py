"""Training without tracking: embed, cross-validate, choose thresholds, fit the final heads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from triage_ml.data.schema import dataset_hash
from triage_ml.features.encoder import Encoder
from triage_ml.features.frame import embedding_columns, feature_frame
from triage_ml.model.thresholds import choose_threshold
from triage_ml.model.triage_model import EXEMPLAR_COLUMNS, TriageModel
from triage_ml.pipeline.config import TrainConfig
from triage_ml.pipeline.cv import HeadTarget, fit_heads, head_targets, make_folds, out_of_fold
from triage_ml.pipeline.metrics import head_metrics
from triage_ml.taxonomy import HEADS, TAXONOMY_VERSION


@dataclass
class CrossValidation:
    """Out-of-fold results: fold per row, OOF probability per head, thresholds and metrics."""

    folds: np.ndarray
    oof: dict[str, np.ndarray]
    targets: dict[str, HeadTarget]
    thresholds: dict[str, float]
    metrics: dict[str, dict[str, float]]

    def macro_f1(self) -> dict[str, float]:
        return {h: self.metrics[h]["macro_f1"] for h in HEADS}

    def table(self, data: pd.DataFrame) -> pd.DataFrame:
        """One row per message: id, text, fold, each head's label (or <NA>) and OOF probability."""
        out = pd.DataFrame({"message_id": data["message_id"].to_numpy(), "text": data["text"].to_numpy(),
                            "fold": self.folds})
        for h in HEADS:
            labels = self.targets[h].labels
            out[f"{h}_label"] = pd.array(np.where(labels >= 0, labels, None), dtype="Int64")
            out[f"{h}_prob"] = self.oof[h]
            out[f"{h}_pred"] = pd.array(np.where(np.isnan(self.oof[h]), None,
                                                 (self.oof[h] >= self.thresholds[h]).astype(int)), dtype="Int64")
        return out


@dataclass
class TrainingResult:
    model: TriageModel
    cv: CrossValidation
    data_hash: str
    n_rows: int
    extras: dict = field(default_factory=dict)


def cross_validate(features: pd.DataFrame, data: pd.DataFrame, config: TrainConfig, *,
                   folds: np.ndarray | None = None, progress: bool = True) -> CrossValidation:
    """OOF probabilities on ``folds`` (made from the config's seed when None), thresholds, metrics."""
    targets = head_targets(data)
    if folds is None:
        folds = make_folds(data, config.cv_folds, config.seed)
    oof = out_of_fold(features, targets, folds, config, progress=progress)
    thresholds, metrics = {}, {}
    for h in HEADS:
        mask = targets[h].mask
        rule = config.thresholds[h]
        thresholds[h] = choose_threshold(targets[h].y, oof[h][mask], rule.policy, min_recall=rule.min_recall)
        metrics[h] = head_metrics(h, targets[h].y, oof[h][mask], thresholds[h])
    return CrossValidation(folds, oof, targets, thresholds, metrics)


def embed(data: pd.DataFrame, encoder: Encoder, *, progress: bool = True) -> pd.DataFrame:
    texts = data["text"].tolist()
    return feature_frame(texts, encoder.encode(texts, progress=progress))


def train(data: pd.DataFrame, config: TrainConfig, encoder: Encoder, *, progress: bool = True,
          features: pd.DataFrame | None = None) -> TrainingResult:
    """Cross-validate for thresholds and metrics, then fit every head on all labeled rows."""
    if features is None:
        features = embed(data, encoder, progress=progress)
    cv = cross_validate(features, data, config, progress=progress)
    heads = fit_heads(features, cv.targets, config)
    digest = dataset_hash(data)
    metadata = {"trained_at": datetime.now(UTC).isoformat(timespec="seconds"), "data_hash": digest,
                "n_rows": len(data), "config": config.to_dict(),
                "metrics": {h: {k: cv.metrics[h][k] for k in ("macro_f1", "pr_auc", "brier")} for h in HEADS}}
    exemplars = (data[list(EXEMPLAR_COLUMNS)].astype({"actionable": "boolean", "crisis": "boolean"})
                 .reset_index(drop=True))
    vectors = features[embedding_columns(features)].to_numpy(dtype=np.float32)
    model = TriageModel(encoder, heads, cv.thresholds, taxonomy_version=TAXONOMY_VERSION, metadata=metadata,
                        exemplars=exemplars, exemplar_vectors=vectors)
    return TrainingResult(model, cv, digest, len(data))
