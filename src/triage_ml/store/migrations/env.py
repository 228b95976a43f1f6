"""Alembic environment: runs on the connection ``triage_ml.store.db.migrate`` passes in, or on the URL in
``TRIAGE_DATABASE_URL`` when run from the alembic command line."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from triage_ml.store.tables import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    from triage_ml.settings import Settings
    from triage_ml.store.db import make_engine

    with make_engine(Settings().database_url).connect() as conn:
        _run(conn)
