"""After rows with personal data or key material are deleted, nothing of them may stay in the
database's files. SQLite overwrites deleted cells (secure_delete, set on every connection)
but the write-ahead log keeps earlier copies of each page until a checkpoint, and the FTS5
index keeps a deleted turn's words in older segments until they are merged; PostgreSQL
keeps dead tuples until a VACUUM."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import Engine, inspect

log = logging.getLogger(__name__)

FTS = "transcript_search"  # made by migration 0015 on SQLite
MERGE = "INSERT INTO transcript_search(transcript_search) VALUES ('optimize')"


def forget(engine: Engine, tables: Iterable[str], search_index: bool = False) -> None:
    """Leave no copy of deleted rows of `tables` in the database's files; `search_index`:
    transcript turns were deleted, so the search index is merged too."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        if engine.dialect.name == "sqlite":
            if search_index and inspect(connection).has_table(FTS):
                connection.exec_driver_sql(MERGE)
            busy = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").scalar()
            if busy:
                log.warning("the write-ahead log is in use; it is emptied at the next checkpoint")
        elif engine.dialect.name == "postgresql":
            names = sorted(set(tables) & set(inspect(connection).get_table_names()))
            if names:
                connection.exec_driver_sql("VACUUM " + ", ".join(names))
