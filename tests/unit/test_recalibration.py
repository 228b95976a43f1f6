import numpy as np
from scipy.special import expit

from triage_ml.model.recalibration import Platt


def test_an_overconfident_score_is_pulled_back():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 20_000)
    y = (rng.random(z.size) < expit(z)).astype(int)
    overconfident = expit(1.6 * z)  # what the head says: the true logit, stretched
    platt = Platt.fit(y, overconfident)
    assert 0.55 < platt.slope < 0.7  # ~1/1.6
    fixed = platt(overconfident)
    assert np.mean((fixed - y) ** 2) < np.mean((overconfident - y) ** 2)
    order = np.argsort(overconfident)
    assert np.all(np.diff(fixed[order]) >= 0)  # monotone: the ranking (PR-AUC) is unchanged


def test_degenerate_fits_are_the_identity():
    p = np.array([0.1, 0.4, 0.9])
    assert Platt.fit(np.array([1, 1, 1]), p) == Platt(1.0, 0.0)
    assert Platt.fit(np.array([1, 0, 0]), p) == Platt(1.0, 0.0)  # anti-correlated: refuse to flip the head
    assert np.array_equal(Platt(1.0, 0.0)(p), p)
