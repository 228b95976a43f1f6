import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from triage_ml.features.frame import feature_frame
from triage_ml.model.heads import TextEmbeddingClassifier


@pytest.fixture(scope="module")
def small(seed, seed_embeddings):
    rows = np.arange(0, len(seed), 3)
    X = feature_frame(seed["text"].iloc[rows].tolist(), seed_embeddings[rows])
    y = seed["actionable"].iloc[rows].astype(int).to_numpy()
    return X, y


def test_sklearn_conventions(small):
    head = TextEmbeddingClassifier(text_C=3.0)
    assert head.get_params()["text_C"] == 3.0
    assert clone(head).get_params() == head.get_params()
    with pytest.raises(NotFittedError):
        head.predict_proba(small[0])


def test_fits_and_beats_chance(small):
    X, y = small
    head = TextEmbeddingClassifier().fit(X[::2], y[::2])
    proba = head.predict_proba(X[1::2])
    assert proba.shape == (len(X[1::2]), 2)
    assert np.allclose(proba.sum(axis=1), 1)
    assert (head.predict(X[1::2]) == y[1::2]).mean() > 0.8


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_single_view(small, weight):
    X, y = small
    head = TextEmbeddingClassifier(text_weight=weight).fit(X, y)
    assert hasattr(head, "text_model_") == (weight > 0)
    assert hasattr(head, "embedding_model_") == (weight < 1)


def test_multiclass(small):
    X, _ = small
    y = np.arange(len(X)) % 3
    assert TextEmbeddingClassifier().fit(X, y).predict_proba(X).shape == (len(X), 3)
