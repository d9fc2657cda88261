"""Engines and sessions for SQLite (embedded) and PostgreSQL (scale-out)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from appliance.config import ConfigError


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"database.url: {url!r} is not a database URL") from None
    # errors never carry the values of a statement (words of a transcript, a caller's number)
    kwargs: dict[str, Any] = {"pool_pre_ping": True, "hide_parameters": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).parent
            if not folder.is_dir():
                raise ConfigError(
                    f"database.url: directory {folder} does not exist (run 'appliance init')"
                )
            _private(Path(parsed.database))
        kwargs["connect_args"] = {"timeout": 15}
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise ConfigError(f"database.url: no driver for {parsed.drivername} ({exc})") from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _private(database: Path) -> None:
    """The database file and its journals are readable by the appliance's user only (SQLite
    gives the journals the database file's mode).

    An existing database is never opened here: closing any descriptor of a file drops every
    POSIX lock the process holds on it, SQLite's included, and another engine of this process
    may have the database open."""
    try:
        os.close(os.open(database, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    except FileExistsError:
        seen = os.lstat(database)
        if stat.S_ISLNK(seen.st_mode):
            raise ConfigError(f"database.url: {database} is a symbolic link") from None
        if stat.S_IMODE(seen.st_mode) & 0o077:
            os.chmod(database, 0o600)
    for journal in (
        database.with_name(database.name + "-wal"),
        database.with_name(database.name + "-shm"),
    ):
        if journal.exists() and not journal.is_symlink():
            journal.chmod(0o600)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA secure_delete=ON")  # deleted wrapped keys are overwritten
    cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def ping(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
