"""Shared fixtures. The embedding cache lives in .cache/ (git-ignored) so repeated runs embed once."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Two test workers (and the services and commands they start) share the cores: OpenMP threads that spin while
# they wait for work took them from each other (two processes encoding at once: 7.6 s each, 3.4 s with passive
# waiting, 2.1 s alone). Set before torch is imported; subprocesses inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# A test never writes to the developer's own label store (data/triage.db, the default): a training that promotes a
# model records it in the audit trail of the store its settings name, so unless a test names one, this run's own.
os.environ.setdefault("TRIAGE_DATABASE_URL", f"sqlite:///{tempfile.mkdtemp(prefix='triage-test-store-')}/triage.db")

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "data" / "seed" / "messages.csv"
XCI = ROOT / "data" / "public" / "xci_complaints.csv"
CACHE_DIR = ROOT / ".cache" / "tests"


# Under pytest-xdist (`make test` runs two workers) tests are dealt out a module at a time, so that a module's
# fixtures (a service, a Spark session) start once per run; the modules that need Label Studio are one unit,
# dealt first (the server's start, then the loop and the review tests: the longest chain), on one server.
LABEL_STUDIO_MODULES = ("tests/integration/test_loop.py", "tests/integration/test_review.py")


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ByModule(LoadScopeScheduling):
        def __init__(self, config, log=None) -> None:
            super().__init__(config, log)
            config.option.loadscopereorder = False  # deal in collection order: Label Studio's unit first

        def _split_scope(self, nodeid: str) -> str:
            module = _module(nodeid)
            return "label-studio" if module in LABEL_STUDIO_MODULES else module

    return ByModule(config, log)


def pytest_collection_modifyitems(config, items) -> None:
    """TRIAGE_TEST_REVERSE=1 runs the collected tests in reverse order: no test may lean on what another
    left behind (a store's versions, a service's state). The Label Studio modules go first (see above)."""
    strays = [i.nodeid for i in items if "label_studio" in getattr(i, "fixturenames", ())
              and _module(i.nodeid) not in LABEL_STUDIO_MODULES]
    if strays:
        raise pytest.UsageError(f"{strays[0]} needs Label Studio: add its module to LABEL_STUDIO_MODULES")
    if os.environ.get("TRIAGE_TEST_REVERSE") == "1":
        items.reverse()
    items.sort(key=lambda i: _module(i.nodeid) not in LABEL_STUDIO_MODULES)  # stable


def shared(tmp_path_factory, name: str, build):
    """``build(folder)`` once per test run, its answer kept beside ``folder``: under pytest-xdist the first
    worker to ask builds while the others wait for it, then every worker reads the same folder and answer
    (a session fixture alone would build once per worker)."""
    import pickle

    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, above each worker's own
    answer = root / f"{name}.pickle"
    with FileLock(str(root / f"{name}.lock")):
        if answer.is_file():
            return pickle.loads(answer.read_bytes())
        value = build(root / name)
        answer.write_bytes(pickle.dumps(value))
        return value


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
# (Two folds would save a third of the fine-tuning, but the drift report's reference, the out-of-fold
# probabilities, then drifts from the final model's: PSI 0.33 on familiar traffic, measured 2026-12-01.)
SMALL_CONFIG = {"cv_folds": 3, "calibration": {"folds": 2}, "finetune": {"epochs": 1}}
FROZEN_CONFIG = {**SMALL_CONFIG, "finetune": {"enabled": False}}


@pytest.fixture(scope="session")
def seed_subset(tmp_path_factory, seed) -> Path:
    """Every second seed row (776 messages): enough for every head, quick to cross-validate."""
    from triage_ml.data import write_table

    raw = pd.read_csv(SEED, dtype=str, keep_default_na=False).iloc[::2]
    return write_table(raw, tmp_path_factory.mktemp("data") / "subset.csv")


@pytest.fixture(scope="session")
def seed_half(tmp_path_factory, seed) -> Path:
    """Every fourth seed row (388 messages, every class of every head, 52 crises): for the trainings whose
    subject is not the model (the store's export, the real rows, the loop's retrain)."""
    from triage_ml.data import write_table

    raw = pd.read_csv(SEED, dtype=str, keep_default_na=False).iloc[::4]
    return write_table(raw, tmp_path_factory.mktemp("data") / "half.csv")


def _train_store(folder: Path, data: Path, config: dict):
    """A real MLflow store (SQLite + artifacts) in ``folder`` whose version 1, trained with ``config``, is champion."""
    from triage_ml.pipeline.config import TrainConfig
    from triage_ml.pipeline.tracking import train_and_log
    from triage_ml.settings import Settings

    settings = Settings(mlruns_dir=folder / "mlruns", cache_dir=CACHE_DIR, experiment_name="test")
    return settings, train_and_log([data], TrainConfig.from_dict(config), settings, progress=False)


def registry_state(settings) -> dict[str, list[tuple]]:
    """What a test could change in a store and another test asserts: runs, model versions, aliases, tags."""
    import sqlite3

    queries = {"runs": "SELECT run_uuid, experiment_id, status, lifecycle_stage FROM runs",
               "versions": "SELECT name, version, run_id, source, status FROM model_versions",
               "aliases": "SELECT name, alias, version FROM registered_model_aliases",
               "version tags": "SELECT name, version, key, value FROM model_version_tags"}
    with contextlib.closing(sqlite3.connect(settings.mlruns_dir / "mlflow.db")) as db:
        return {what: sorted(db.execute(sql).fetchall()) for what, sql in queries.items()}


@contextlib.contextmanager
def unchanged(settings):
    """A shared store must come back as it was: a test that registers, promotes or logs works on a copy
    (``own_store``), so every module sees the same champion in any order."""
    before = registry_state(settings)
    yield
    after = registry_state(settings)
    changed = {k: (sorted(set(after[k]) - set(before[k])), sorted(set(before[k]) - set(after[k])))
               for k in before if after[k] != before[k]}
    assert not changed, f"a test changed the shared store {settings.mlruns_dir} (added, removed): {changed}"


def copy_store(settings, dest: Path):
    """A copy of ``settings``' store (SQLite DB + artifacts) under ``dest``, its absolute artifact locations
    rewritten to the copy, and Settings for it. Nothing in the copy points at the original."""
    import shutil
    import sqlite3

    source, target = settings.mlruns_dir.resolve(), (dest / "mlruns").resolve()
    shutil.copytree(source, target)
    old, new = source.as_posix(), target.as_posix()
    with contextlib.closing(sqlite3.connect(target / "mlflow.db")) as db:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        columns = [(t, c) for t in tables for (_, c, *_) in db.execute(f'PRAGMA table_info("{t}")')]
        for table, column in columns:
            db.execute(f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) '
                       f'WHERE typeof("{column}") = \'text\' AND instr("{column}", ?) > 0', (old, new, old))
        db.commit()
        left = [(t, c) for t, c in columns
                if db.execute(f'SELECT count(*) FROM "{t}" WHERE instr("{c}", ?) > 0', (old,)).fetchone()[0]]
    assert not left, f"the copy still names the original store in {left}"
    return settings.model_copy(update={"mlruns_dir": target})


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory, seed_subset):
    """A real MLflow store with one registered, champion model (fine-tuned, the default path, with a thread
    head on the bundled threads) trained on the subset. Shared and read-only: a test that changes a store takes
    ``own_store``."""
    from triage_ml.data.threads import THREADS

    config = {**SMALL_CONFIG, "threads": {"path": str(ROOT / THREADS), "folds": 3}}
    settings, outcome = shared(tmp_path_factory, "store", lambda folder: _train_store(folder, seed_subset, config))
    with unchanged(settings):
        yield settings, outcome


@pytest.fixture(scope="session")
def frozen_store(tmp_path_factory, seed_subset):
    """Like ``trained_store``, its champion trained with the frozen encoder (no fine-tuning): for the tests
    about where labels and models travel. Shared and read-only: ``own_frozen_store`` is a copy to change."""
    settings, outcome = shared(tmp_path_factory, "frozen-store",
                               lambda folder: _train_store(folder, seed_subset, FROZEN_CONFIG))
    with unchanged(settings):
        yield settings, outcome


@pytest.fixture
def own_store(trained_store, tmp_path):
    """A copy of ``trained_store`` for one test to register, promote and log in: (settings, outcome)."""
    settings, outcome = trained_store
    return copy_store(settings, tmp_path / "own-store"), outcome


@pytest.fixture
def own_frozen_store(frozen_store, tmp_path):
    """A copy of ``frozen_store`` for one test to change: (settings, outcome)."""
    settings, outcome = frozen_store
    return copy_store(settings, tmp_path / "own-store"), outcome


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

    def __init__(self, url: str, email: str, token: str, log: Path, password: str) -> None:
        self.url, self.email, self.token, self.log, self.password = url, email, token, log, password

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
    password = secrets.token_urlsafe(12)  # the browser test signs in with it
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data), "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
           "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
           # its SSRF guard refuses webhooks to private addresses; the service under test is on loopback
           "USE_DEFAULT_BANNED_SUBNETS": "false"}
    log = data / "label-studio.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(LABEL_STUDIO_BIN), "start", "--no-browser", "--host", "127.0.0.1", "--port",
                                 str(port), "--username", email,
                                 # one argument: a token_urlsafe password may begin with "-"
                                 f"--password={password}",
                                 "--user-token", token], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(proc, f"{url}/health", log, timeout=240, interval=1)
        yield LabelStudioServer(url, email, token, log, password)
    finally:
        with contextlib.suppress(ProcessLookupError):  # it may have exited already (the error above says why)
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
