"""Connecting to the label store: SQLite (default, WAL) or PostgreSQL by URL, migrated with Alembic."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from triage_ml.errors import ConfigError, StoreUnavailableError

MIGRATIONS = Path(__file__).parent / "migrations"
T = TypeVar("T")
IN_CHUNK = 500  # values bound in one IN (...): SQLite's default limit on bound parameters is 999


def chunks(values: Sequence[T], size: int = IN_CHUNK) -> list[Sequence[T]]:
    """``values`` in slices small enough for one ``IN (...)``."""
    return [values[i:i + size] for i in range(0, len(values), size)]


def page(key: str, items: list[Any], limit: int, offset: int, total: int) -> dict[str, Any]:
    """One page of a listing as the API answers it: {key: items, limit, offset, total, next_offset}; the next
    page starts at ``next_offset``, None after the last."""
    following = offset + len(items)
    return {key: items, "limit": limit, "offset": offset, "total": total,
            "next_offset": following if items and following < total else None}


def make_engine(url: str) -> Engine:
    """An engine for ``url``. SQLite gets WAL, a busy timeout, foreign keys and ``BEGIN IMMEDIATE``
    transactions (writers queue instead of failing on a lock upgrade)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"TRIAGE_DATABASE_URL '{url}' is not a database URL; use sqlite:///path/to/file.db "
                          "or postgresql+psycopg://user@host:5432/dbname") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _: Any) -> None:
            dbapi_conn.isolation_level = None  # let the "begin" hook below open transactions
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: Any) -> None:  # a lookup (``Store.reading``) takes no write lock
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("read_only") else "BEGIN IMMEDIATE")

        return engine
    return create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=30, pool_timeout=30)


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` with Alembic (creates every table on an empty database)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    except OperationalError as exc:
        raise StoreUnavailableError(_reason(engine, exc)) from None


def current_revision(engine: Engine) -> str | None:
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _reason(engine: Engine, exc: DBAPIError) -> str:
    first = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
    return f"label store {engine.url.render_as_string(hide_password=True)} unreachable: {first}"


class Store:
    """Sessions on one database. ``write`` runs a function in one transaction and retries it when a
    concurrent writer won a race (unique key, deadlock, lock timeout): the function must be idempotent
    given the database state, which every caller here is (it re-reads what it needs)."""

    def __init__(self, url: str, *, auto_migrate: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.auto_migrate = auto_migrate
        self._schema_ready = not auto_migrate

    def ensure_schema(self) -> None:
        """Migrate once (when auto_migrate); a store that was down at start is migrated when it is back."""
        if not self._schema_ready:
            migrate(self.engine)
            self._schema_ready = True

    @contextmanager
    def session(self) -> Iterator[Session]:
        self.ensure_schema()
        try:
            with self.sessions() as session:
                yield session
        except OperationalError as exc:
            raise StoreUnavailableError(_reason(self.engine, exc)) from None

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for lookups that need no snapshot: on PostgreSQL each statement runs on its own
        (autocommit), which saves the BEGIN and ROLLBACK round trips; on SQLite a plain (deferred) BEGIN, so a
        lookup never holds the write lock that writers queue for."""
        self.ensure_schema()
        try:
            with self.engine.connect() as conn:
                if self.engine.dialect.name == "postgresql":
                    conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                else:
                    conn = conn.execution_options(read_only=True)
                yield conn
        except OperationalError as exc:
            raise StoreUnavailableError(_reason(self.engine, exc)) from None

    def write(self, fn: Callable[[Session], T], *, attempts: int = 8) -> T:
        self.ensure_schema()
        for attempt in range(attempts):
            try:
                with self.sessions() as session, session.begin():
                    return fn(session)
            except IntegrityError:
                if attempt == attempts - 1:
                    raise
            except OperationalError as exc:
                if not _retryable(exc) or attempt == attempts - 1:
                    raise StoreUnavailableError(_reason(self.engine, exc)) from None
        raise AssertionError("unreachable")

    def reachable(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def dispose(self) -> None:
        self.engine.dispose()


def _retryable(exc: OperationalError) -> bool:
    """Deadlocks, serialization failures and SQLite's busy lock: try again. A lost connection: do not."""
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if code in {"40001", "40P01", "55P03"}:
        return True
    return "database is locked" in str(exc.orig)
