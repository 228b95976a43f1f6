"""A Platt sigmoid refitted on out-of-fold probabilities, per head.

Each head is calibrated on inner folds of its own training rows. With a fine-tuned encoder those rows'
embeddings were seen in fine-tuning, so they separate better than new messages do and the inner
calibration comes out overconfident: on the seed data the out-of-fold logit slope was 0.74-0.81, and a
sigmoid refitted on the out-of-fold probabilities halved the expected calibration error (cross-fitted:
0.025 -> 0.012 actionable, 0.032 -> 0.013 tier, 0.023 -> 0.013 crisis). With a frozen encoder the slope
is ~1 and the refit is close to the identity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression

_EPS = 1e-6


@dataclass(frozen=True)
class Platt:
    """p -> sigmoid(slope * logit(p) + intercept)."""

    slope: float
    intercept: float

    @classmethod
    def fit(cls, y: np.ndarray, p: np.ndarray) -> Platt:
        """Fit on labels ``y`` (n,) in {0, 1} and probabilities ``p`` (n,). A degenerate fit (one class,
        or a slope <= 0) gives the identity."""
        if np.unique(y).size < 2:
            return cls(1.0, 0.0)
        z = logit(np.clip(p, _EPS, 1 - _EPS))[:, None]
        fitted = LogisticRegression(C=1e6, max_iter=1000).fit(z, y)
        slope, intercept = float(fitted.coef_[0, 0]), float(fitted.intercept_[0])
        return cls(slope, intercept) if slope > 0 else cls(1.0, 0.0)

    def __call__(self, p: np.ndarray) -> np.ndarray:
        if self.slope == 1.0 and self.intercept == 0.0:
            return np.asarray(p, dtype=np.float64)
        return expit(self.slope * logit(np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)) + self.intercept)

    def to_list(self) -> list[float]:
        return [self.slope, self.intercept]
