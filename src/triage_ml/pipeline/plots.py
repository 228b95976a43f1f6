"""Figures people would rather look at than read: confusion matrix, PR curve, reliability diagram."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: figures are written to files, never shown

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import confusion_matrix, precision_recall_curve

from triage_ml.pipeline.metrics import CLASS_NAMES


def _confusion(ax: Axes, head: str, y: np.ndarray, prob: np.ndarray, threshold: float, title: str,
               ylabel: str = "label") -> None:
    matrix = confusion_matrix(y, (prob >= threshold).astype(int), labels=[0, 1])
    ax.imshow(matrix, cmap="Blues")
    names = CLASS_NAMES[head]
    ax.set_xticks([0, 1], names)
    ax.set_yticks([0, 1], names)
    ax.set_xlabel("predicted")
    ax.set_ylabel(ylabel)
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center", color="white" if v > matrix.max() / 2 else "black")
    ax.set_title(title)


def _pr_curve(ax: Axes, y: np.ndarray, prob: np.ndarray, threshold: float, label: str | None,
              dot_color: str | None = None) -> None:
    precision, recall, thresholds = precision_recall_curve(y, prob)
    line = ax.plot(recall, precision, lw=1.5, label=label)[0]
    at = int(np.clip(np.searchsorted(thresholds, threshold), 0, len(thresholds) - 1))
    ax.scatter([recall[at]], [precision[at]], color=dot_color or line.get_color(), zorder=3,
               label=None if label else f"threshold {threshold:.2f}")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.01)
    ax.set_ylim(0, 1.01)


def confusion_figure(head: str, y: np.ndarray, prob: np.ndarray, threshold: float) -> Figure:
    fig, ax = plt.subplots(figsize=(4, 3.6))
    _confusion(ax, head, y, prob, threshold, f"{head} (threshold {threshold:.2f})")
    fig.tight_layout()
    return fig


def pr_figure(head: str, y: np.ndarray, prob: np.ndarray, threshold: float) -> Figure:
    fig, ax = plt.subplots(figsize=(4, 3.6))
    _pr_curve(ax, y, prob, threshold, None, dot_color="crimson")
    ax.set_title(f"{head}: precision-recall (out of fold)")
    ax.legend(loc="lower left")
    fig.tight_layout()
    return fig


def reliability_figure(head: str, y: np.ndarray, prob: np.ndarray) -> Figure:
    frac_pos, mean_pred = calibration_curve(y, prob, n_bins=10, strategy="quantile")
    fig, ax = plt.subplots(figsize=(4, 3.6))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect")
    ax.plot(mean_pred, frac_pos, marker="o", lw=1.5, label="model")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("fraction positive")
    ax.set_title(f"{head}: reliability (out of fold)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def head_figures(head: str, y: np.ndarray, prob: np.ndarray, threshold: float) -> dict[str, Figure]:
    """File name -> figure, for one head."""
    return {f"plots/{head}_confusion.png": confusion_figure(head, y, prob, threshold),
            f"plots/{head}_pr_curve.png": pr_figure(head, y, prob, threshold),
            f"plots/{head}_reliability.png": reliability_figure(head, y, prob)}


def comparison_figures(head: str, y: np.ndarray, ours: tuple[np.ndarray, float, str],
                       theirs: tuple[np.ndarray, float, str] | None) -> dict[str, Figure]:
    """Gold-set plots of a challenger (``ours``: probabilities, threshold, name) beside the champion
    (``theirs``, when there is one): confusion matrices side by side, PR curves on one axis."""
    models = [ours] if theirs is None else [ours, theirs]
    fig, axes = plt.subplots(1, len(models), figsize=(4 * len(models), 3.6), squeeze=False)
    for ax, (prob, threshold, label) in zip(axes[0], models, strict=True):
        _confusion(ax, head, y, prob, threshold, f"{label} (threshold {threshold:.2f})", ylabel="gold label")
    fig.suptitle(f"{head}: gold set")
    fig.tight_layout()
    out = {f"plots/gold_{head}_confusion.png": fig}
    if y.min() != y.max():
        pr, ax = plt.subplots(figsize=(4.4, 3.8))
        for prob, threshold, label in models:
            _pr_curve(ax, y, prob, threshold, label)
        ax.set_title(f"{head}: gold-set PR (dots: thresholds)", fontsize=10)
        ax.legend(loc="lower left")
        pr.tight_layout()
        out[f"plots/gold_{head}_pr_curve.png"] = pr
    return out
