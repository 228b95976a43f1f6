"""The compiled heads must give scikit-learn's numbers: same probabilities, same term weights."""

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression

from triage_ml.features.frame import feature_frame
from triage_ml.model.compiled import CompiledHeads
from triage_ml.model.heads import TextEmbeddingClassifier

ODD = ["", "   ", "\x00\x07\x1b[31m", "☃ 🔥🔥 ñandú ÀÉÎ", "a" * 3000, "RT RT RT @brand @brand"]


@pytest.fixture(scope="module")
def split(seed, seed_embeddings):
    train = np.arange(0, len(seed), 3)
    test = np.arange(1, len(seed), 7)
    return seed, seed_embeddings, train, test


def _fit(split, target: str, **calibration):
    seed, emb, train, _ = split
    X = feature_frame(seed["text"].iloc[train].tolist(), emb[train])
    y = seed[target].iloc[train].fillna(False).astype(int).to_numpy()
    base = TextEmbeddingClassifier(text_weight=calibration.pop("text_weight", 0.5), max_features=5000)
    return CalibratedClassifierCV(base, cv=2, **calibration).fit(X, y)


@pytest.mark.parametrize("calibration", [
    {"method": "sigmoid", "ensemble": False},
    {"method": "sigmoid", "ensemble": True},
    {"method": "isotonic", "ensemble": False},
    {"method": "sigmoid", "ensemble": False, "text_weight": 0.0},
    {"method": "sigmoid", "ensemble": False, "text_weight": 1.0},
])
def test_probabilities_match_sklearn(split, encoder, calibration):
    seed, emb, _, test = split
    head = _fit(split, "crisis", **calibration)
    compiled = CompiledHeads.from_heads({"crisis": head})
    assert compiled is not None
    texts = seed["text"].iloc[test].tolist() + ODD
    vectors = np.vstack([emb[test], encoder.encode(ODD)])
    expected = head.predict_proba(feature_frame(texts, vectors))[:, 1]
    got = compiled.probabilities(texts, vectors)["crisis"]
    # The text regression agrees to 1e-12; the embedding regression runs in float32 as scikit-learn's does,
    # whose expit may round differently in the last float32 bit.
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert np.isfinite(got).all()


def test_positive_class_first_is_flipped(split):
    seed, emb, train, test = split
    X = feature_frame(seed["text"].iloc[train].tolist(), emb[train])
    y = np.where(seed["actionable"].iloc[train].astype(bool), 1, 7)  # classes_ = [1, 7]: class 1 comes first
    head = CalibratedClassifierCV(TextEmbeddingClassifier(max_features=5000), cv=2, ensemble=False).fit(X, y)
    texts = seed["text"].iloc[test].tolist()
    expected = head.predict_proba(feature_frame(texts, emb[test]))[:, 0]
    got = CompiledHeads.from_heads({"actionable": head}).probabilities(texts, emb[test])["actionable"]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_term_contributions_are_the_regression_weights(split):
    seed, _, _, test = split
    head = _fit(split, "actionable", method="sigmoid", ensemble=False)
    est = head.calibrated_classifiers_[0].estimator
    text = seed["text"].iloc[test[0]]
    row = est.text_features([text])
    names = est.vectorizer_.get_feature_names_out()
    coef = est.text_model_.coef_[0]
    expected = {names[i].removeprefix("word__"): row[0, i] * coef[i] for i in row.indices
                if names[i].startswith("word__") and row[0, i] * coef[i] != 0}
    got = CompiledHeads.from_heads({"actionable": head}).term_contributions("actionable", text)
    assert got.keys() == expected.keys() and got
    for term, value in expected.items():
        assert got[term] == pytest.approx(value, abs=1e-12)


def test_unknown_layouts_fall_back(split):
    seed, emb, train, _ = split
    X = emb[train]
    y = seed["actionable"].iloc[train].astype(int).to_numpy()
    assert CompiledHeads.from_heads({"actionable": LogisticRegression().fit(X, y)}) is None
    calibrated_lr = CalibratedClassifierCV(LogisticRegression(), cv=2).fit(X, y)
    assert CompiledHeads.from_heads({"actionable": calibrated_lr}) is None
