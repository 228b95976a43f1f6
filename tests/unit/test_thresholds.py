import numpy as np
import pytest

from triage_ml.errors import ConfigError
from triage_ml.model.thresholds import choose_threshold


def test_best_f1_separates_clean_classes():
    y = np.array([0, 0, 0, 1, 1, 1])
    prob = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.9])
    assert choose_threshold(y, prob, "best_f1") == pytest.approx(0.6)


def test_precision_at_recall_keeps_recall():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    prob = np.clip(y * 0.3 + rng.normal(0.35, 0.2, 2000), 0, 1)
    t = choose_threshold(y, prob, "max_precision_at_recall", min_recall=0.9)
    pred = prob >= t
    recall = (pred & (y == 1)).sum() / (y == 1).sum()
    assert recall >= 0.9
    # any higher threshold candidate would lose the recall floor
    assert ((prob >= t + 0.02) & (y == 1)).sum() / (y == 1).sum() < 0.9 + 0.02


def test_unknown_policy_is_refused():
    with pytest.raises(ConfigError, match="unknown threshold policy"):
        choose_threshold(np.array([0, 1]), np.array([0.2, 0.8]), "vibes")


def test_single_class_falls_back_to_half():
    assert choose_threshold(np.array([1, 1]), np.array([0.2, 0.8]), "best_f1") == 0.5


def test_best_macro_f1_is_the_best_of_every_threshold():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(1)
    y = (rng.random(500) < 0.15).astype(int)
    prob = np.clip(y * 0.35 + rng.normal(0.3, 0.18, 500), 0, 1)
    t = choose_threshold(y, prob, "best_macro_f1")
    best = max(f1_score(y, prob >= c, average="macro") for c in np.unique(prob))
    assert f1_score(y, prob >= t, average="macro") == pytest.approx(best)
