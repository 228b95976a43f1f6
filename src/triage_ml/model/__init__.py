"""The model: sklearn heads over sentence embeddings and TF-IDF, wrapped in one ``TriageModel``."""

from triage_ml.model.heads import TextEmbeddingClassifier
from triage_ml.model.triage_model import TriageModel

__all__ = ["TextEmbeddingClassifier", "TriageModel"]
