"""Training and judging the thread-aware head (``model.thread_head``) on labeled threads (``data.threads``).

Judged on held-out threads: the follow-ups are split into folds by thread, and each fold's follow-ups are
scored by a head (and a threshold, chosen by inner folds) that never saw their thread. Beside it, the model
alone on each follow-up's text: the single-message figure the thread head must beat. A head that does not beat
it is left out, and the model's own head answers for follow-ups too.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from triage_ml.data.schema import dataset_hash
from triage_ml.model.thread_head import ThreadHead, fit_logistic, onto, thread_features
from triage_ml.model.thresholds import choose_threshold
from triage_ml.model.triage_model import TriageModel
from triage_ml.pipeline.config import ThreadsConfig, TrainConfig
from triage_ml.pipeline.cv import head_targets
from triage_ml.pipeline.metrics import head_metrics
from triage_ml.taxonomy import HEADS

MIN_PER_CLASS = 8  # a head needs this many follow-ups of each class, or the model's own head answers


@dataclass
class ThreadEvaluation:
    """Held-out-thread metrics per head: ``single`` (the model on the text alone) and ``thread`` (the thread
    head), on the same follow-ups."""

    threads: int
    follow_ups: int
    data_hash: str  # of the follow-ups and their labels (data.schema.dataset_hash)
    single: dict[str, dict[str, float]] = field(default_factory=dict)
    thread: dict[str, dict[str, float]] = field(default_factory=dict)
    used: tuple[str, ...] = ()  # the heads the thread head answers for: those that beat the text alone

    def metrics(self) -> dict[str, float]:
        """Flat, for MLflow: ``threads.{single|thread}.{head}.{metric}``."""
        out = {"threads.threads": float(self.threads), "threads.follow_ups": float(self.follow_ups)}
        for kind, table in (("single", self.single), ("thread", self.thread)):
            for head, values in table.items():
                out.update({f"threads.{kind}.{head}.{k}": v for k, v in values.items() if np.isfinite(v)})
        return out

    def summary(self) -> dict[str, Any]:
        """Macro F1 per head, side by side (the README's table)."""
        return {"threads": self.threads, "follow_ups": self.follow_ups, "data_hash": self.data_hash,
                "macro_f1": {h: {"single": self.single[h]["macro_f1"], "thread": self.thread[h]["macro_f1"],
                                 "thread_head_used": h in self.used} for h in self.thread}}


def thread_inputs(model: TriageModel, follow: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray],
                                                                    np.ndarray]:
    """Embeddings of the follow-ups and of the turns they answer (one encoder pass), the model's probabilities
    for the text alone, and whether the brand wrote the answered turn."""
    texts, answered = follow["text"].tolist(), follow["answered_text"].tolist()
    vectors = model.encoder.encode(texts + answered)
    message, turn = vectors[:len(texts)], vectors[len(texts):]
    base = model.probabilities(texts, message)
    return message, turn, base, (follow["answered_from"] == "brand").to_numpy()


def _folds(follow: pd.DataFrame, n_splits: int, seed: int) -> np.ndarray:
    key = follow["actionable"].astype("string").fillna("?") + "|" + follow["priority_tier"].astype("string").fillna("?")
    folds = np.full(len(follow), -1)
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for k, (_, test) in enumerate(splitter.split(np.zeros(len(follow)), key, follow["thread_id"])):
            folds[test] = k
    return folds


def _oof(x: np.ndarray, y: np.ndarray, folds: np.ndarray, c: float, seed: int) -> np.ndarray:
    """Out-of-fold positive-class probabilities over ``folds``."""
    out = np.full(len(y), np.nan)
    for k in np.unique(folds):
        test = folds == k
        if np.unique(y[~test]).size < 2:
            out[test] = y[~test].mean()
            continue
        out[test] = fit_logistic(x[~test], y[~test], c, seed).predict_proba(x[test])[:, 1]
    return out


def _held_out(x: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: np.ndarray, config: ThreadsConfig,
              policy: dict[str, Any], seed: int) -> np.ndarray:
    """Each follow-up's probability from a head fitted without its thread, put on a 0.5 threshold by the
    threshold that head's own inner folds chose (nested: no follow-up chooses its own threshold)."""
    out = np.full(len(y), np.nan)
    for k in np.unique(folds):
        test = folds == k
        inner = _inner_folds(groups[~test], seed)
        threshold = choose_threshold(y[~test], _oof(x[~test], y[~test], inner, config.C, seed), **policy)
        prob = fit_logistic(x[~test], y[~test], config.C, seed).predict_proba(x[test])[:, 1]
        out[test] = onto(prob, threshold, 0.5)
    return out


def _inner_folds(groups: np.ndarray, seed: int, n_splits: int = 3) -> np.ndarray:
    ids = pd.Series(groups).astype(str)
    order = np.random.default_rng(seed).permutation(ids.unique())
    return ids.map({g: i % n_splits for i, g in enumerate(order)}).to_numpy()


def train_thread_head(model: TriageModel, follow: pd.DataFrame, config: TrainConfig) -> tuple[ThreadHead,
                                                                                              ThreadEvaluation]:
    """The thread head on every labeled follow-up, and its held-out-thread evaluation beside the model alone."""
    threads_config = config.threads or ThreadsConfig()
    message, turn, base, from_brand = thread_inputs(model, follow)
    x = thread_features(message, turn, base, from_brand)
    targets = head_targets(follow)
    folds = _folds(follow, threads_config.folds, config.seed)
    groups = follow["thread_id"].to_numpy()
    evaluation = ThreadEvaluation(threads=int(follow["thread_id"].nunique()), follow_ups=len(follow),
                                  data_hash=dataset_hash(follow))
    heads, thresholds = {}, {}
    for h in HEADS:
        mask, y = targets[h].mask, targets[h].y
        if y.size == 0 or min((y == 0).sum(), (y == 1).sum()) < MIN_PER_CLASS:
            continue
        rule = config.thresholds[h]
        policy = {"policy": rule.policy, "min_recall": rule.min_recall}
        held_out = _held_out(x[mask], y, groups[mask], folds[mask], threads_config, policy, config.seed)
        evaluation.thread[h] = head_metrics(h, y, held_out, 0.5)
        evaluation.single[h] = head_metrics(h, y, base[h][mask], model.thresholds[h])
        if evaluation.thread[h]["macro_f1"] <= evaluation.single[h]["macro_f1"]:
            continue  # no better than the text alone on held-out threads: the model's own head answers
        thresholds[h] = choose_threshold(y, _oof(x[mask], y, folds[mask], threads_config.C, config.seed), **policy)
        heads[h] = fit_logistic(x[mask], y, threads_config.C, config.seed)
    evaluation.used = tuple(heads)
    return ThreadHead(heads, thresholds), evaluation
