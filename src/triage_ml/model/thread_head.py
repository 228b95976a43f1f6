"""``ThreadHead``: judges a follow-up with the turn it answers.

A reply inside a support exchange carries its meaning in the turn before it: "nope" after "did the replacement
card arrive?" moves a case along (tier 1), after "anything else we can help with?" it closes it (noise). The
model's own heads read the text alone; for a message sent with its thread, this head reads, per head, a logistic
regression over the message's embedding, the answered turn's embedding, their element-wise product, the
model's own three logits for the text alone, and whether the brand wrote the answered turn.

Its probabilities are mapped, monotonically and piecewise linearly, so that its own threshold (chosen on
held-out threads) falls on the model's: a service that compares ``crisis_risk`` with the model's crisis threshold
decides as the thread head does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression

from triage_ml.taxonomy import HEADS

_EPS = 1e-6


def thread_features(message: np.ndarray, answered: np.ndarray, base: dict[str, np.ndarray],
                    from_brand: np.ndarray) -> np.ndarray:
    """(n, 3 * dim + len(HEADS) + 1) features for n follow-ups: embeddings (n, dim) of the messages and of the
    turns they answer, the model's own probabilities per head (n,), and 1 where the brand wrote the answered turn."""
    logits = [np.log(np.clip(base[h], _EPS, 1 - _EPS) / np.clip(1 - base[h], _EPS, 1)) for h in HEADS]
    return np.hstack([message, answered, message * answered, np.column_stack(logits),
                      np.asarray(from_brand, dtype=float)[:, None]])


def fit_logistic(x: np.ndarray, y: np.ndarray, c: float, seed: int) -> LogisticRegression:
    return LogisticRegression(C=c, class_weight="balanced", max_iter=2000, random_state=seed).fit(x, y)


def onto(prob: np.ndarray, own: float, target: float) -> np.ndarray:
    """``prob`` mapped monotonically so that ``own`` lands on ``target`` (0 stays 0, 1 stays 1)."""
    own = float(np.clip(own, _EPS, 1 - _EPS))
    low = prob * (target / own)
    high = target + (prob - own) * ((1 - target) / (1 - own))
    return np.where(prob < own, low, high)


@dataclass
class ThreadHead:
    """Per head: a fitted logistic regression on ``thread_features`` and the threshold chosen for it on
    held-out threads. Heads without enough follow-ups of both classes are absent: the model's own head answers."""

    heads: dict[str, LogisticRegression]
    thresholds: dict[str, float]

    def probabilities(self, message: np.ndarray, answered: np.ndarray, base: dict[str, np.ndarray],
                      from_brand: np.ndarray, model_thresholds: dict[str, float]) -> dict[str, np.ndarray]:
        """Each head's probability for n follow-ups, on the model's threshold scale (``onto``)."""
        x = thread_features(message, answered, base, from_brand)
        out = dict(base)
        for h, head in self.heads.items():
            positive = list(head.classes_).index(1)
            out[h] = onto(head.predict_proba(x)[:, positive], self.thresholds[h], model_thresholds[h])
        return out
