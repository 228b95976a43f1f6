"""Features: sentence embeddings (cached on disk) and the frame the heads consume."""

from triage_ml.features.cache import EmbeddingCache
from triage_ml.features.encoder import Encoder, resolve_encoder_path
from triage_ml.features.frame import EMBEDDING_PREFIX, embedding_columns, feature_frame

__all__ = ["EMBEDDING_PREFIX", "EmbeddingCache", "Encoder", "embedding_columns", "feature_frame",
           "resolve_encoder_path"]
