"""``triage-ml report drift``: recent messages against the champion's training set.

Per head, the distribution of the model's probability on recent messages against its out-of-fold
probabilities on the training set, as a population stability index (PSI: < 0.1 stable, 0.1-0.25 moderate,
> 0.25 major). Per channel and brand, the centroid of recent embeddings against the training centroid of
the same group (the whole training set when the group is new), as a cosine distance, with the share of
recent messages predicted actionable and crisis beside the training share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from triage_ml.model.triage_model import TriageModel
from triage_ml.store.db import Store
from triage_ml.store.tables import MessageRow
from triage_ml.taxonomy import HEADS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MIN_GROUP = 5  # messages a channel or brand needs before its centroid is compared


def recent_messages(store: Store, since: datetime, until: datetime, limit: int) -> pd.DataFrame:
    """Messages the store saw posted (``created_at``, else when first seen) in [since, until), newest first,
    at most ``limit``: columns message_id, text, channel, brand."""
    from sqlalchemy import func, select

    when = func.coalesce(MessageRow.created_at, MessageRow.first_seen)
    with store.session() as session:
        rows = session.execute(select(MessageRow.id, MessageRow.text, MessageRow.channel, MessageRow.brand)
                               .where(when >= since, when < until).order_by(when.desc()).limit(limit)).all()
    return pd.DataFrame(rows, columns=["message_id", "text", "channel", "brand"])


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """Population stability index of ``actual`` against ``expected`` over ``expected``'s quantile bins."""
    expected, actual = np.asarray(expected, float), np.asarray(actual, float)
    if not len(expected) or not len(actual):
        return float("nan")
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)))
    if len(edges) < 3:
        edges = np.linspace(0, 1, bins + 1)
    edges[0], edges[-1] = -np.inf, np.inf
    e = np.histogram(expected, edges)[0] / len(expected)
    a = np.histogram(actual, edges)[0] / len(actual)
    e, a = np.clip(e, 1e-4, None), np.clip(a, 1e-4, None)
    return float(np.sum((a - e) * np.log(a / e)))


def level(value: float) -> str:
    if not np.isfinite(value):
        return "n/a"
    return "major" if value > 0.25 else "moderate" if value >= 0.1 else "stable"


def _centroid(vectors: np.ndarray) -> np.ndarray:
    c = vectors.mean(axis=0)
    return c / max(float(np.linalg.norm(c)), 1e-12)


@dataclass
class DriftReport:
    n_train: int
    n_recent: int
    heads: dict[str, dict[str, float | str]]
    groups: list[dict[str, Any]]
    probabilities: dict[str, tuple[np.ndarray, np.ndarray]] = field(repr=False, default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"n_train": self.n_train, "n_recent": self.n_recent, "heads": self.heads, "groups": self.groups}


def drift_report(model: TriageModel, train: pd.DataFrame, recent: pd.DataFrame) -> DriftReport:
    """``train``: the training run's OOF table (text, channel, brand, ``<head>_prob``); ``recent``: text,
    channel, brand of the messages to compare."""
    recent_texts = recent["text"].tolist()
    recent_vec = model.encoder.encode(recent_texts)
    recent_probs = model.probabilities(recent_texts, recent_vec)
    actionable_now = recent_probs["actionable"] >= model.thresholds["actionable"]
    heads: dict[str, dict[str, float | str]] = {}
    probabilities = {}
    for head in HEADS:
        reference = train[f"{head}_prob"].dropna().to_numpy(float)
        now = recent_probs[head][actionable_now] if head == "priority_tier" else recent_probs[head]
        value = psi(reference, now)
        t = model.thresholds[head]
        heads[head] = {"psi": round(value, 4), "level": level(value), "train_mean": round(float(reference.mean()), 4)
                       if len(reference) else float("nan"), "recent_mean": round(float(now.mean()), 4) if len(now)
                       else float("nan"), "train_positive": round(float((reference >= t).mean()), 4)
                       if len(reference) else float("nan"),
                       "recent_positive": round(float((now >= t).mean()), 4) if len(now) else float("nan")}
        probabilities[head] = (reference, now)

    train_vec = model.encoder.encode(train["text"].tolist())
    overall = _centroid(train_vec)
    groups = [{"group": "all", "n_recent": len(recent), "n_train": len(train),
               "centroid_distance": round(1 - float(_centroid(recent_vec) @ overall), 4) if len(recent) else None,
               "recent_actionable": round(float(actionable_now.mean()), 4) if len(recent) else None,
               "recent_crisis": round(float((recent_probs["crisis"] >= model.thresholds["crisis"]).mean()), 4)
               if len(recent) else None}]
    for column in ("channel", "brand"):
        if column not in recent:
            continue
        for value, idx in recent.groupby(recent[column].astype("string").fillna("(none)")).indices.items():
            if len(idx) < MIN_GROUP:
                continue
            in_train = (train[column].astype("string") == value).to_numpy() if column in train else np.zeros(0, bool)
            reference = _centroid(train_vec[in_train]) if in_train.sum() >= MIN_GROUP else overall
            groups.append({"group": f"{column}={value}", "n_recent": len(idx), "n_train": int(in_train.sum()),
                           "centroid_distance": round(1 - float(_centroid(recent_vec[idx]) @ reference), 4),
                           "recent_actionable": round(float(actionable_now[idx].mean()), 4),
                           "recent_crisis": round(float((recent_probs["crisis"][idx] >=
                                                         model.thresholds["crisis"]).mean()), 4)})
    return DriftReport(len(train), len(recent), heads, groups, probabilities)


def drift_figure(report: DriftReport) -> Figure:
    """Probability histograms per head (training vs recent) and centroid distances per group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(13, 7.5), gridspec_kw={"height_ratios": [1, 1.1]})
    bins = np.linspace(0, 1, 21)
    for ax, head in zip(axes[0], HEADS, strict=True):
        reference, now = report.probabilities[head]
        ax.hist(reference, bins=bins, density=True, alpha=0.55, label=f"training (out of fold, n={len(reference)})")
        ax.hist(now, bins=bins, density=True, alpha=0.55, label=f"recent (n={len(now)})")
        ax.set_title(f"{head}: PSI {report.heads[head]['psi']} ({report.heads[head]['level']})")
        ax.set_xlabel("probability")
        ax.legend(fontsize=7)
    gs = axes[1, 0].get_gridspec()
    for ax in axes[1]:
        ax.remove()
    bar = fig.add_subplot(gs[1, :])
    groups = [g for g in report.groups if g["centroid_distance"] is not None]
    bar.barh([g["group"] for g in groups], [g["centroid_distance"] for g in groups], color="slateblue")
    bar.invert_yaxis()
    bar.set_xlabel("cosine distance of the recent centroid to the training centroid")
    bar.set_title("embedding drift by channel and brand")
    fig.tight_layout()
    return fig
