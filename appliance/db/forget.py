"""After rows with personal data or key material are deleted, nothing of them may stay in the
database's files. SQLite overwrites deleted cells (secure_delete, set on every connection)
but its write-ahead log keeps earlier copies of each page until a checkpoint; PostgreSQL
keeps dead tuples until a VACUUM. (The search index has its own step: search.compact.)"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import Engine, inspect

log = logging.getLogger(__name__)


def forget(engine: Engine, tables: Iterable[str]) -> None:
    """Leave no copy of deleted rows of `tables` in the database's files."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        if engine.dialect.name == "sqlite":
            busy = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").scalar()
            if busy:
                log.warning("the write-ahead log is in use; it is emptied at the next checkpoint")
        elif engine.dialect.name == "postgresql":
            names = sorted(set(tables) & set(inspect(connection).get_table_names()))
            if names:
                connection.exec_driver_sql("VACUUM " + ", ".join(names))
