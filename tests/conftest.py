"""Shared fixtures. The embedding cache lives in .cache/ (git-ignored) so repeated runs embed once."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "data" / "seed" / "messages.csv"
XCI = ROOT.parent / "shared" / "data" / "public" / "xci_complaints.csv"
CACHE_DIR = ROOT / ".cache" / "tests"


@pytest.fixture(scope="session")
def seed() -> pd.DataFrame:
    from triage_ml.data import load_labeled

    return load_labeled(SEED)


@pytest.fixture(scope="session")
def encoder():
    from triage_ml.features import EmbeddingCache, Encoder, resolve_encoder_path

    return Encoder(resolve_encoder_path("all-MiniLM-L6-v2"),
                   cache=EmbeddingCache(CACHE_DIR / "embeddings.sqlite3"))


@pytest.fixture(scope="session")
def seed_embeddings(seed, encoder):
    return encoder.encode(seed["text"].tolist())


@pytest.fixture
def settings(tmp_path, monkeypatch):
    """Settings pointing at a fresh MLflow store under tmp_path and the shared embedding cache."""
    from triage_ml.settings import Settings

    monkeypatch.chdir(ROOT)
    return Settings(mlruns_dir=tmp_path / "mlruns", cache_dir=CACHE_DIR, experiment_name="test")


SMALL_CONFIG = {"cv_folds": 3, "calibration": {"folds": 2}}


@pytest.fixture(scope="session")
def seed_subset(tmp_path_factory, seed) -> Path:
    """Every second seed row (776 messages): enough for every head, quick to cross-validate."""
    from triage_ml.data import write_table

    raw = pd.read_csv(SEED, dtype=str, keep_default_na=False).iloc[::2]
    return write_table(raw, tmp_path_factory.mktemp("data") / "subset.csv")


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory, seed_subset):
    """A real MLflow store (SQLite + artifacts) with one registered, champion model trained on the subset."""
    from triage_ml.pipeline.config import TrainConfig
    from triage_ml.pipeline.tracking import train_and_log
    from triage_ml.settings import Settings

    store = tmp_path_factory.mktemp("store")
    settings = Settings(mlruns_dir=store / "mlruns", cache_dir=CACHE_DIR, experiment_name="test")
    outcome = train_and_log([seed_subset], TrainConfig.from_dict(SMALL_CONFIG), settings, progress=False)
    return settings, outcome
