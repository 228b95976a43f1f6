"""Decision-threshold policies, applied to out-of-fold probabilities of a binary head."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import precision_recall_curve

from triage_ml.errors import ConfigError

POLICIES = ("best_f1", "best_macro_f1", "max_precision_at_recall")


def choose_threshold(y_true: np.ndarray, prob: np.ndarray, policy: str, *, min_recall: float = 0.9) -> float:
    """The probability at or above which a message is predicted positive.

    ``best_f1``: the threshold with the highest F1 for the positive class.
    ``best_macro_f1``: the threshold with the highest mean of both classes' F1.
    ``max_precision_at_recall``: the highest precision among thresholds whose recall is at least
    ``min_recall`` (ties go to the higher threshold).
    """
    y_true = np.asarray(y_true).astype(int)
    if y_true.min() == y_true.max():
        return 0.5
    precision, recall, thresholds = precision_recall_curve(y_true, prob)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    if policy == "best_f1":
        f1 = np.divide(2 * precision * recall, precision + recall,
                       out=np.zeros_like(precision), where=(precision + recall) > 0)
        best = np.flatnonzero(f1 == f1.max())
    elif policy == "best_macro_f1":
        n_pos, n_neg = int(y_true.sum()), int(len(y_true) - y_true.sum())
        tp = recall * n_pos
        fp = np.divide(tp, precision, out=np.zeros_like(tp), where=precision > 0) - tp
        fn, tn = n_pos - tp, n_neg - fp
        f1_pos = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=(2 * tp + fp + fn) > 0)
        f1_neg = np.divide(2 * tn, 2 * tn + fn + fp, out=np.zeros_like(tn), where=(2 * tn + fn + fp) > 0)
        macro = np.round((f1_pos + f1_neg) / 2, 12)  # float noise must not pick between equal thresholds
        best = np.flatnonzero(macro == macro.max())
    elif policy == "max_precision_at_recall":
        ok = np.flatnonzero(recall >= min_recall)
        if ok.size == 0:
            return float(thresholds[0])
        best = ok[precision[ok] == precision[ok].max()]
    else:
        raise ConfigError(f"unknown threshold policy '{policy}'; use one of {', '.join(POLICIES)}")
    return float(thresholds[best[-1]])
