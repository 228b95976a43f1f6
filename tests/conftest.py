"""Shared fixtures. The embedding cache lives in .cache/ (git-ignored) so repeated runs embed once."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "data" / "seed" / "messages.csv"
XCI = ROOT / "data" / "public" / "xci_complaints.csv"
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


# The default path (fine-tuning on) made small: one epoch of fine-tuning per fold on a few hundred messages.
SMALL_CONFIG = {"cv_folds": 3, "calibration": {"folds": 2}, "finetune": {"epochs": 1}}
FROZEN_CONFIG = {**SMALL_CONFIG, "finetune": {"enabled": False}}


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


# -- label store databases ---------------------------------------------------------------------------------
PG_ADMIN_URL = os.environ.get("TRIAGE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _postgres_or_skip() -> None:
    """PostgreSQL must be there in CI (fail loudly); elsewhere its tests are skipped when it is not."""
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        message = f"PostgreSQL at {PG_ADMIN_URL} is unreachable ({type(exc).__name__}); .ci/run starts it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def postgres_url():
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    import uuid

    import sqlalchemy as sa

    _postgres_or_skip()
    name = f"triage_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield str(sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False))
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """Each label-store test runs on both backends."""
    if request.param == "sqlite":
        return f"sqlite:///{(tmp_path / 'triage.db').as_posix()}"
    return request.getfixturevalue("postgres_url")


# -- Label Studio ------------------------------------------------------------------------------------------
LABEL_STUDIO_BIN = Path(os.environ.get("TRIAGE_TEST_LABEL_STUDIO", ROOT / ".venv-labelstudio" / "bin" / "label-studio"))


class LabelStudioServer:
    """A real Label Studio on loopback: ``url``, the admin lead's ``email`` and API ``token``."""

    def __init__(self, url: str, email: str, token: str, log: Path) -> None:
        self.url, self.email, self.token, self.log = url, email, token, log

    def sdk(self):
        from label_studio_sdk import LabelStudio

        return LabelStudio(base_url=self.url, api_key=self.token)


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory):
    """Label Studio (its own virtual environment, `make test` installs it) started for the session."""
    import secrets
    import signal
    import subprocess

    from tests.integration.service_fixtures import free_port, wait_until_up

    if not LABEL_STUDIO_BIN.is_file():
        message = f"Label Studio not installed at {LABEL_STUDIO_BIN}; `make test` installs it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    data = tmp_path_factory.mktemp("label-studio")
    port, token, email = free_port(), secrets.token_hex(20), "lead.one@example.com"
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data), "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
           "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
           # its SSRF guard refuses webhooks to private addresses; the service under test is on loopback
           "USE_DEFAULT_BANNED_SUBNETS": "false"}
    log = data / "label-studio.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(LABEL_STUDIO_BIN), "start", "--no-browser", "--host", "127.0.0.1", "--port",
                                 str(port), "--username", email,
                                 # one argument: a token_urlsafe password may begin with "-"
                                 f"--password={secrets.token_urlsafe(12)}",
                                 "--user-token", token], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(proc, f"{url}/health", log, timeout=240, interval=1)
        yield LabelStudioServer(url, email, token, log)
    finally:
        with contextlib.suppress(ProcessLookupError):  # it may have exited already (the error above says why)
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
