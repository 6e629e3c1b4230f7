"""Alembic environment: run by :func:`conform_registry._db.upgrade` and friends.

The caller puts an open connection (inside a transaction it commits) into
``config.attributes["connection"]``. Without one (the ``alembic`` command line), the URL
comes from the ``sqlalchemy.url`` option or ``$CONFORM_REGISTRY_DB_URL``.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection

from conform_registry._db.models import Base
from conform_registry._db.session import make_engine

# Any constant: concurrent servers starting on one PostgreSQL database migrate one at a time.
_PG_LOCK_KEY = 0x636F6E666F726D  # "conform"

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("CONFORM_REGISTRY_DB_URL")
    if not url:
        raise RuntimeError("No database: set sqlalchemy.url or CONFORM_REGISTRY_DB_URL")
    return url


def _migrate(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=True,  # SQLite cannot ALTER most things: copy tables
                      compare_type=True)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
        context.run_migrations()


def run() -> None:
    """Run the migrations online (a connection) or offline (print SQL)."""
    if context.is_offline_mode():
        context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                          render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    engine = make_engine(_url())
    try:
        with engine.begin() as connection:
            _migrate(connection)
    finally:
        engine.dispose()


run()
