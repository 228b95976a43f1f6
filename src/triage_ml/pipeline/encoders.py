"""The encoders training uses, as the settings configure them."""

from __future__ import annotations

from triage_ml.features.cache import EmbeddingCache
from triage_ml.features.encoder import Encoder, resolve_encoder_path
from triage_ml.features.finetune import FineTunedEncoders
from triage_ml.features.onnx_backend import OnnxExports
from triage_ml.settings import Settings


def make_encoder(name: str, settings: Settings, batch_size: int) -> Encoder:
    """A base encoder (a packaged model name or a folder) with the shared embedding cache."""
    cache = EmbeddingCache(settings.cache_dir / "embeddings.sqlite3")
    return Encoder(resolve_encoder_path(name), cache=cache, batch_size=batch_size, threads=settings.torch_threads)


def finetuned_encoders(settings: Settings) -> FineTunedEncoders:
    """Where fine-tuned encoders are kept between trainings (same inputs: reused, not trained again)."""
    return FineTunedEncoders(settings.cache_dir / "encoders")


def onnx_exports(settings: Settings) -> OnnxExports:
    """Where encoders' ONNX exports are kept between trainings (one export per encoder fingerprint)."""
    return OnnxExports(settings.cache_dir / "onnx")
