"""The database as rows, whatever the backend: every table of the schema (as the database has
it, so an older schema dumps too) in dependency order, parents first, as gzipped JSON lines.
Loaded back into an empty schema at the same revision, on SQLite or PostgreSQL alike.

    {"format": 1, "revision": "0015"}
    {"table": "accounts", "columns": ["id", "parent_id", ...]}
    [1, null, ...]                        one line a row, values as in rows.encode
    ...
    {"end": true}

Alembic's own table is not dumped (the restore makes the schema at the revision), nor the
full-text index (SQLite's FTS5 tables are filled by their triggers as turns are inserted;
PostgreSQL's is an expression index)."""

from __future__ import annotations

import gzip
import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from sqlalchemy import Connection, Integer, MetaData, Table, func, insert, select
from sqlalchemy import exc as sa_exc

from appliance.backup import BackupError
from appliance.backup.rows import decode, encode, parents_first
from appliance.db.migrate import modelled

FORMAT = 1
BATCH = 1000
Row = dict[str, Any]


@dataclass
class Dumped:
    revision: str
    counts: dict[str, int] = field(default_factory=dict)
    recordings: list[tuple[str, str]] = field(default_factory=list)  # (file name, master key)


def tables(connection: Connection) -> list[Table]:
    """The schema's tables as the database has them, parents first."""
    metadata = MetaData()
    with warnings.catch_warnings():  # PostgreSQL's expression index cannot be reflected
        warnings.simplefilter("ignore", sa_exc.SAWarning)
        metadata.reflect(
            connection, only=lambda name, _: name != "alembic_version" and modelled(name, "table")
        )
    return list(metadata.sorted_tables)


def revision(connection: Connection) -> str:
    from alembic.runtime.migration import MigrationContext

    found = MigrationContext.configure(connection).get_current_revision()
    if found is None:
        raise BackupError("the database has no schema yet (run 'appliance init')")
    return found


def dump(connection: Connection, out: BinaryIO) -> Dumped:
    """Write every row readable on `connection` (in the caller's transaction, which makes it
    one consistent snapshot) to `out`."""
    dumped = Dumped(revision(connection))
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        _line(gz, {"format": FORMAT, "revision": dumped.revision})
        for table in tables(connection):
            columns = [c.name for c in table.columns]
            _line(gz, {"table": table.name, "columns": columns})
            count = 0
            query = select(table).order_by(*table.primary_key.columns)
            for row in connection.execution_options(yield_per=BATCH).execute(query):
                _line(gz, [encode(v) for v in row])
                count += 1
                if table.name == "recordings":
                    dumped.recordings.append((row.file_name, row.key_id))
            dumped.counts[table.name] = count
        _line(gz, {"end": True})
    return dumped


def _line(out: gzip.GzipFile, value: object) -> None:
    out.write(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")


@dataclass
class Loaded:
    counts: dict[str, int] = field(default_factory=dict)
    file_names: set[str] = field(default_factory=set)


def load(connection: Connection, source: BinaryIO, expected_revision: str) -> Loaded:
    """Insert a dump's rows into the empty schema on `connection` (at the dump's revision)."""
    target = {t.name: t for t in tables(connection)}
    lines = _lines(source)
    header = next(lines, None)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise BackupError("the database dump is in a form this version does not read")
    if header.get("revision") != expected_revision:
        raise BackupError("the database dump is not of the schema revision the manifest names")
    loaded = Loaded()
    table: Table | None = None
    rows: list[dict[str, Any]] = []
    columns: list[str] = []
    for item in lines:
        if isinstance(item, list):
            if table is None or len(item) != len(columns):
                raise BackupError("the database dump is damaged (a row out of place)")
            rows.append(_row(columns, item))
            if len(rows) >= BATCH and not _self_parent(table):
                _insert(connection, table, rows, loaded)
                rows = []
            continue
        if table is not None:
            _insert(connection, table, rows, loaded)
            rows = []
        if item.get("end") is True:
            break
        table, columns = _start(target, item, loaded)
    else:
        raise BackupError("the database dump is incomplete")
    if set(loaded.counts) != set(target):
        missing = ", ".join(sorted(set(target) - set(loaded.counts)))
        raise BackupError(f"the database dump lacks tables of its schema: {missing}")
    if connection.dialect.name == "postgresql":
        _continue_sequences(connection, list(target.values()))
    return loaded


def _lines(source: BinaryIO) -> Iterator[Any]:
    try:
        with gzip.GzipFile(fileobj=source, mode="rb") as gz:
            for raw in gz:
                yield json.loads(raw)
    except (OSError, EOFError, ValueError):
        raise BackupError("the database dump is damaged") from None


def _row(columns: list[str], values: list[Any]) -> dict[str, Any]:
    try:
        return dict(zip(columns, (decode(v) for v in values), strict=True))
    except (ValueError, TypeError):
        raise BackupError("the database dump is damaged (a value it cannot read)") from None


def _start(target: dict[str, Table], item: dict[str, Any], loaded: Loaded) -> tuple[Table, list]:
    name, columns = item.get("table"), item.get("columns")
    table = target.get(str(name))
    if table is None or name in loaded.counts:
        raise BackupError(f"the database dump has a table its schema does not: {name!r:.60}")
    if not isinstance(columns, list) or set(columns) != {c.name for c in table.columns}:
        raise BackupError(f"the database dump's table {name} does not match its schema")
    loaded.counts[table.name] = 0
    return table, columns


def _self_parent(table: Table) -> tuple[str, str] | None:
    """(key, parent) of a table that refers to itself, e.g. accounts.parent_id -> id."""
    for fk in table.foreign_keys:
        if fk.column.table is table:
            return fk.column.name, fk.parent.name
    return None


def _insert(
    connection: Connection, table: Table, rows: list[dict[str, Any]], loaded: Loaded
) -> None:
    own = _self_parent(table)
    if own:
        rows = parents_first(rows, *own)
    if rows:
        connection.execute(insert(table), rows)
    loaded.counts[table.name] += len(rows)
    if table.name == "recordings":
        loaded.file_names.update(str(r["file_name"]) for r in rows)


def _continue_sequences(connection: Connection, found: list[Table]) -> None:
    """PostgreSQL's serial ids go on after the highest id restored (SQLite's do by themselves)."""
    for table in found:
        keys = list(table.primary_key.columns)
        if len(keys) != 1 or not isinstance(keys[0].type, Integer):
            continue
        sequence = connection.scalar(select(func.pg_get_serial_sequence(table.name, keys[0].name)))
        if sequence:
            highest = connection.scalar(select(func.max(keys[0]))) or 0
            connection.execute(select(func.setval(sequence, highest + 1, False)))
