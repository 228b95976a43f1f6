"""A model folder written by ``TriageModel.save`` comes back from ``load`` with the same answers: the heads as a
compressed pickle, and a folder saved before (joblib's heads file) still loads."""

import joblib
import numpy as np
import pandas as pd
import pytest

from triage_ml.errors import ModelNotFoundError
from triage_ml.features.frame import feature_frame
from triage_ml.model.heads import TextEmbeddingClassifier
from triage_ml.model.triage_model import TriageModel
from triage_ml.taxonomy import HEADS


@pytest.fixture(scope="module")
def model(seed, seed_embeddings, encoder):
    rows = np.arange(0, len(seed), 4)
    X = feature_frame(seed["text"].iloc[rows].tolist(), seed_embeddings[rows])
    labels = {"actionable": seed["actionable"].fillna(False), "priority_tier": seed["priority_tier"].fillna(2) == 1,
              "crisis": seed["crisis"].fillna(False)}
    heads = {h: TextEmbeddingClassifier().fit(X, labels[h].iloc[rows].astype(int).to_numpy()) for h in HEADS}
    kind = TextEmbeddingClassifier().fit(X, np.where(labels["crisis"].iloc[rows], "safety", "other"))
    return TriageModel(encoder, heads, dict.fromkeys(HEADS, 0.5), kind_head=kind)


TEXTS = ["@Munchly my order never came", "RT to win!!", "the battery caught fire in my garage"]


def test_saved_folder_loads_with_the_same_answers(model, tmp_path):
    folder = model.save(tmp_path / "model")
    assert (folder / "heads.pickle.zlib").is_file() and not list(folder.glob("*.joblib"))
    again = TriageModel.load(folder)
    pd.testing.assert_frame_equal(again.predict_frame(TEXTS), model.predict_frame(TEXTS))
    assert list(again.kind_head.classes_) == list(model.kind_head.classes_)


def test_a_folder_saved_with_joblib_still_loads(model, tmp_path):
    folder = model.save(tmp_path / "model")
    for name, value in (("heads", model.heads), ("crisis_kind", model.kind_head)):
        (folder / f"{name}.pickle.zlib").unlink()
        joblib.dump(value, folder / f"{name}.joblib", compress=3)
    again = TriageModel.load(folder)
    pd.testing.assert_frame_equal(again.predict_frame(TEXTS), model.predict_frame(TEXTS))
    assert again.kind_head is not None


def test_a_folder_without_heads_is_a_clear_error(model, tmp_path):
    folder = model.save(tmp_path / "model")
    (folder / "heads.pickle.zlib").unlink()
    with pytest.raises(ModelNotFoundError, match="holds no heads"):
        TriageModel.load(folder)
