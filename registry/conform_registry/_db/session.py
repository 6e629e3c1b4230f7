"""Engines, sessions and schema migrations of the registry database.

:func:`make_engine` configures each connection for the registry's needs: on SQLite, foreign
keys on, write-ahead logging, a busy timeout and ``BEGIN IMMEDIATE`` transactions (so two
writers wait for each other instead of failing with "database is locked" when a read
transaction tries to become a write one); on PostgreSQL, the psycopg (v3) driver and
pre-ping on checkout.

The schema is managed by the Alembic scripts shipped inside this package (``migrations/``):
:func:`upgrade` brings a database to the newest revision (the server runs it at start),
:func:`downgrade` goes back, :func:`current_revision` reports where a database is. No
``alembic.ini`` is needed: the configuration is built in code.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from conform_core.exceptions import ParameterError

__all__ = [
    "BUSY_TIMEOUT_S", "MIGRATIONS", "alembic_config", "current_revision", "downgrade",
    "head_revision", "make_engine", "make_session_factory", "normalize_url", "upgrade",
]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
"""The folder of the Alembic environment and its ``versions/`` scripts."""

BUSY_TIMEOUT_S = 30.0
"""How long a SQLite connection waits for another writer before failing."""


def normalize_url(url: str | URL) -> URL:
    """Parse a database URL; plain ``postgresql://`` gets the psycopg (v3) driver.

    Parameters
    ----------
    url : str or sqlalchemy.engine.URL
        E.g. ``sqlite:////srv/registry.sqlite3`` or ``postgresql://user@host/db``.

    Returns
    -------
    sqlalchemy.engine.URL
        The parsed URL.

    Raises
    ------
    ParameterError
        If ``url`` cannot be parsed or names a database other than SQLite or PostgreSQL.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise ParameterError(param="db_url", value=str(url), allowed="a database URL",
                             fix="For example sqlite:////srv/conform/registry.sqlite3 or "
                                 "postgresql+psycopg://user@host/db.") from exc
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ParameterError(param="db_url", value=parsed.render_as_string(hide_password=True),
                             allowed="a sqlite:// or postgresql:// URL",
                             fix="The registry supports SQLite (one server) and PostgreSQL.")
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or "mode=memory" in str(url.query)


def make_engine(url: str | URL, *, echo: bool = False, **kwargs: Any) -> Engine:
    """Create an engine configured for the registry.

    Parameters
    ----------
    url : str or sqlalchemy.engine.URL
        The database URL (see :func:`normalize_url`). The folder of a SQLite file is created.
    echo : bool, default=False
        Log every SQL statement.
    **kwargs
        Passed on to :func:`sqlalchemy.create_engine`.

    Returns
    -------
    sqlalchemy.Engine
        The engine.

    Raises
    ------
    ParameterError
        If the URL is invalid or its driver is not installed.
    """
    parsed = normalize_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite:
        memory = _is_memory(parsed)
        if not memory:
            Path(parsed.database or "").expanduser().absolute().parent.mkdir(parents=True,
                                                                             exist_ok=True)
        connect_args = {"check_same_thread": False, "timeout": BUSY_TIMEOUT_S,
                        **kwargs.pop("connect_args", {})}
        kwargs["connect_args"] = connect_args
    else:
        kwargs.setdefault("pool_pre_ping", True)
    try:
        engine = create_engine(parsed, echo=echo, **kwargs)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise ParameterError(f"No database driver for {parsed.drivername!r}: {exc}. "
                             "Install it: pip install 'psycopg[binary]' for PostgreSQL.") from exc
    if sqlite:
        _configure_sqlite(engine, wal=not memory)
    return engine


def _configure_sqlite(engine: Engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy, not the sqlite3 module, begin transactions (see "begin" below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            if wal:
                cursor.execute("PRAGMA journal_mode = WAL")
                # FULL: a committed transaction survives a power cut, not only a crash.
                cursor.execute("PRAGMA synchronous = FULL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory bound to ``engine``.

    Objects stay readable after commit (``expire_on_commit=False``), so a service can
    return what it just wrote. Use it as ``with factory.begin() as session: ...`` to commit
    on success and roll back on error.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        From :func:`make_engine`.

    Returns
    -------
    sqlalchemy.orm.sessionmaker
        The factory.
    """
    return sessionmaker(bind=engine, expire_on_commit=False)


# ----------------------------------------------------------------------- migrations
def alembic_config(connection: Connection | None = None) -> Any:
    """Return an Alembic configuration of the shipped migrations (no ``alembic.ini``).

    Use it with :mod:`alembic.command` to write a new migration after changing a model::

        with make_engine(url).begin() as connection:  # a database at the current head
            command.revision(alembic_config(connection), message="add x", autogenerate=True,
                             rev_id="0002")

    then edit the generated script: spell out plain SQLAlchemy types
    (``sa.DateTime(timezone=True)`` for :class:`~conform_registry._db.models.UTCDateTime`).

    Parameters
    ----------
    connection : sqlalchemy.Connection or None, default=None
        The connection the migrations run on (``None``: only read the scripts).

    Returns
    -------
    alembic.config.Config
        The configuration.
    """
    from alembic.config import Config

    config = Config()
    # ConfigParser interpolates "%": escape it in the path.
    config.set_main_option("script_location", os.fspath(MIGRATIONS).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


@contextlib.contextmanager
def _connect(url: str | URL | Engine) -> Iterator[Connection]:
    engine = url if isinstance(url, Engine) else make_engine(url)
    try:
        with engine.begin() as connection:  # commits the migration on success
            yield connection
    finally:
        if engine is not url:
            engine.dispose()


def upgrade(url: str | URL | Engine, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision`` (default: the newest).

    Creates the tables of an empty database. Safe to run on every start: an up-to-date
    database is left as it is. On PostgreSQL an advisory lock makes concurrent starts wait
    for each other.

    Parameters
    ----------
    url : str, sqlalchemy.engine.URL or sqlalchemy.Engine
        The database (an engine is used as it is and not disposed).
    revision : str, default="head"
        The target revision id.
    """
    from alembic import command

    with _connect(url) as connection:
        command.upgrade(alembic_config(connection), revision)


def downgrade(url: str | URL | Engine, revision: str = "base") -> None:
    """Migrate the database at ``url`` down to ``revision``; ``"base"`` drops every table.

    Parameters
    ----------
    url : str, sqlalchemy.engine.URL or sqlalchemy.Engine
        The database.
    revision : str, default="base"
        The target revision id, ``"base"``, or a relative step such as ``"-1"``.
    """
    from alembic import command

    with _connect(url) as connection:
        command.downgrade(alembic_config(connection), revision)


def current_revision(url: str | URL | Engine) -> str | None:
    """Return the revision the database at ``url`` is at (``None``: never migrated).

    Parameters
    ----------
    url : str, sqlalchemy.engine.URL or sqlalchemy.Engine
        The database.

    Returns
    -------
    str or None
        The revision id.
    """
    from alembic.runtime.migration import MigrationContext

    with _connect(url) as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    """Return the newest revision id of the shipped migrations.

    Returns
    -------
    str
        The head revision id (``upgrade`` brings a database there).
    """
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the registry ships at least one migration"
    return head
