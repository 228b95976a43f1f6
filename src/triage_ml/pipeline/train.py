"""Training without tracking: (fine-tune and) embed, cross-validate, choose thresholds, fit the final heads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from triage_ml.data.real import is_real
from triage_ml.data.schema import dataset_hash
from triage_ml.data.threads import follow_ups, load_threads
from triage_ml.features.encoder import Encoder
from triage_ml.features.finetune import FineTunedEncoders
from triage_ml.features.frame import embedding_columns
from triage_ml.model.recalibration import Platt
from triage_ml.model.thresholds import choose_threshold
from triage_ml.model.triage_model import EXEMPLAR_COLUMNS, TriageModel
from triage_ml.pipeline.config import TrainConfig
from triage_ml.pipeline.cv import (
    FoldFeatures,
    HeadTarget,
    fit_heads,
    fit_kind_head,
    fit_sentiment_head,
    head_targets,
    make_folds,
    out_of_fold,
)
from triage_ml.pipeline.fold_features import FineTunedFeatures, FrozenFeatures, embed
from triage_ml.pipeline.metrics import head_metrics
from triage_ml.pipeline.threads import ThreadEvaluation, train_thread_head
from triage_ml.taxonomy import HEADS, TAXONOMY_VERSION


@dataclass
class CrossValidation:
    """Out-of-fold results: fold per row, OOF probability per head (after ``recalibration``, the sigmoid
    refitted on them when the config asks), thresholds and metrics on every row; ``real_metrics`` on the
    real rows alone (empty without them); ``selected_on`` says which rows chose the thresholds."""

    folds: np.ndarray
    oof: dict[str, np.ndarray]
    targets: dict[str, HeadTarget]
    thresholds: dict[str, float]
    metrics: dict[str, dict[str, float]]
    recalibration: dict[str, Platt] = field(default_factory=dict)
    real_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    selected_on: str = "all"

    def macro_f1(self) -> dict[str, float]:
        return {h: self.metrics[h]["macro_f1"] for h in HEADS}

    def table(self, data: pd.DataFrame) -> pd.DataFrame:
        """One row per message: id, text, channel and brand (when known), fold, each head's label (or <NA>)
        and OOF probability."""
        out = pd.DataFrame({"message_id": data["message_id"].to_numpy(), "text": data["text"].to_numpy()})
        for column in ("channel", "brand"):
            out[column] = data[column].astype("string").to_numpy() if column in data else pd.NA
        out["fold"] = self.folds
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
    threads: ThreadEvaluation | None = None  # the thread head's held-out-thread figures, when it was fitted


def row_weights(data: pd.DataFrame, config: TrainConfig) -> np.ndarray | None:
    """Each row's sample weight in the heads' fits: ``real_data.weight`` for real rows, 1 for the rest;
    None when every row weighs 1."""
    if config.real_data is None or config.real_data.weight == 1.0:
        return None
    return np.where(is_real(data["message_id"]), config.real_data.weight, 1.0)


def _both_classes(y: np.ndarray, at_least: int) -> bool:
    return y.size > 0 and int(min((y == 0).sum(), (y == 1).sum())) >= at_least


def cross_validate(source: FoldFeatures | pd.DataFrame, data: pd.DataFrame, config: TrainConfig, *,
                   folds: np.ndarray | None = None, progress: bool = True) -> CrossValidation:
    """OOF probabilities on ``folds`` (made from the config's seed when None), thresholds, metrics.
    ``source`` gives each fold its features; a DataFrame is one frozen feature frame for every fold.

    With ``real_data.select_on_real``, each head's recalibration and threshold are fitted on the real rows'
    OOF probabilities (when they hold at least 5 of each class), so that they follow real traffic's class
    balance rather than the seed set's; the metrics cover every row, and ``real_metrics`` the real rows."""
    if isinstance(source, pd.DataFrame):
        source = FrozenFeatures(source)
    targets = head_targets(data)
    if folds is None:
        folds = make_folds(data, config.cv_folds, config.seed)
    oof = out_of_fold(source, targets, folds, config, weights=row_weights(data, config), progress=progress)
    real = is_real(data["message_id"])
    select_on_real = config.real_data is not None and config.real_data.select_on_real
    thresholds, metrics, real_metrics, recalibration = {}, {}, {}, {}
    selected = set()
    for h in HEADS:
        mask = targets[h].mask
        on_real = select_on_real and _both_classes(targets[h].labels[mask & real], 5)
        rows = mask & real if on_real else mask
        selected.add("real" if on_real else "all")
        if config.calibration.refit_on_oof:
            recalibration[h] = Platt.fit(targets[h].labels[rows], oof[h][rows])
            oof[h] = np.where(mask, recalibration[h](np.nan_to_num(oof[h], nan=0.5)), np.nan)
        rule = config.thresholds[h]
        thresholds[h] = choose_threshold(targets[h].labels[rows], oof[h][rows], rule.policy,
                                         min_recall=rule.min_recall)
        metrics[h] = head_metrics(h, targets[h].y, oof[h][mask], thresholds[h])
        if _both_classes(targets[h].labels[mask & real], 1):
            real_metrics[h] = head_metrics(h, targets[h].labels[mask & real], oof[h][mask & real], thresholds[h])
    return CrossValidation(folds, oof, targets, thresholds, metrics, recalibration, real_metrics,
                           selected_on="+".join(sorted(selected)))


def feature_source(data: pd.DataFrame, config: TrainConfig, encoder: Encoder, *,
                   encoders: FineTunedEncoders | None, progress: bool = True) -> FoldFeatures:
    """Frozen features, or per-fold fine-tuned ones when ``config.finetune.enabled``."""
    if not config.finetune.enabled:
        return FrozenFeatures.of(data, encoder, progress=progress)
    if encoders is None:
        raise ValueError("fine-tuning needs encoders=FineTunedEncoders(folder) to keep the encoders it trains")
    return FineTunedFeatures(data, head_targets(data), encoder, config.finetune, encoders, config.seed,
                             progress=progress)


def train(data: pd.DataFrame, config: TrainConfig, encoder: Encoder, *, progress: bool = True,
          encoders: FineTunedEncoders | None = None) -> TrainingResult:
    """Cross-validate for thresholds and metrics, then fit every head on all labeled rows.

    ``encoder`` is the base encoder; with ``config.finetune.enabled`` each fold and the final model
    fine-tune it (kept in ``encoders``), and the model carries the final fine-tuned encoder."""
    source = feature_source(data, config, encoder, encoders=encoders, progress=progress)
    cv = cross_validate(source, data, config, progress=progress)
    features, final_encoder = source.final()
    weights = row_weights(data, config)
    heads = fit_heads(features, cv.targets, config, weights=weights)
    kind_head = None
    if config.crisis_kind_head:  # on the base encoder's embeddings, as TriageModel.crisis_kinds reads them
        base = features if final_encoder is encoder else embed(data, encoder, progress=progress)
        kind_head = fit_kind_head(base, data, config, weights=weights)
    sentiment_head = fit_sentiment_head(features, data, config, weights=weights) if config.sentiment_head else None
    digest = dataset_hash(data)
    metadata = {"trained_at": datetime.now(UTC).isoformat(timespec="seconds"), "data_hash": digest,
                "n_rows": len(data), "config": config.to_dict(),
                "metrics": {h: {k: cv.metrics[h][k] for k in ("macro_f1", "pr_auc", "brier")} for h in HEADS}}
    exemplars = (data[list(EXEMPLAR_COLUMNS)].astype({"actionable": "boolean", "crisis": "boolean"})
                 .reset_index(drop=True))
    vectors = features[embedding_columns(features)].to_numpy(dtype=np.float32)
    model = TriageModel(final_encoder, heads, cv.thresholds, taxonomy_version=TAXONOMY_VERSION,
                        metadata=metadata, exemplars=exemplars, exemplar_vectors=vectors,
                        recalibration=cv.recalibration, kind_head=kind_head, sentiment_head=sentiment_head,
                        similarity_encoder=encoder if final_encoder is not encoder else None)
    extras = source.summary() if isinstance(source, FineTunedFeatures) else {}
    threads = None
    if config.threads is not None:  # the thread head reads the final model's embeddings and its heads' answers
        head, threads = train_thread_head(model, follow_ups(load_threads(config.threads.path)), config)
        model.thread_head = head if head.heads else None  # None: no head beat the text alone
        model.metadata["threads"] = threads.summary()
    return TrainingResult(model, cv, digest, len(data), extras, threads)
