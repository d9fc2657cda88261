"""Database values as JSON, the same from SQLite and PostgreSQL, and rows in an order that a
table referring to itself accepts. Pure.

Times are written in UTC with their offset: SQLite hands back the naive UTC times the
appliance wrote, PostgreSQL aware ones, and either is restored onto the other unchanged."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
from collections.abc import Hashable, Sequence
from typing import Any


def encode(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else {"f": repr(value)}
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return {"t": aware.astimezone(dt.UTC).isoformat()}
    if isinstance(value, dt.date):
        return {"d": value.isoformat()}
    if isinstance(value, bytes | memoryview):
        return {"b": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, decimal.Decimal):
        return {"n": str(value)}
    raise TypeError(f"a database value of type {type(value).__name__} has no backup form")


def decode(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        raise ValueError("not an encoded value")
    ((kind, text),) = value.items()
    if not isinstance(text, str):
        raise ValueError("not an encoded value")
    if kind == "t":
        return dt.datetime.fromisoformat(text)
    if kind == "d":
        return dt.date.fromisoformat(text)
    if kind == "b":
        return base64.b64decode(text, validate=True)
    if kind == "n":
        return decimal.Decimal(text)
    if kind == "f":
        return float(text)
    raise ValueError(f"unknown encoded value {kind!r}")


def parents_first(rows: Sequence[dict[str, Any]], key: str, parent: str) -> list[dict[str, Any]]:
    """Rows of a table whose column `parent` refers to its own `key`, each after its parent.
    A parent that is not among the rows counts as there (the database judges it); a cycle
    keeps its order (the database refuses it)."""
    ids: set[Hashable] = {row[key] for row in rows}
    placed: set[Hashable] = set()
    ordered: list[dict[str, Any]] = []
    waiting = list(rows)
    while waiting:
        pending = ids - placed
        ready = [r for r in waiting if r[parent] not in pending or r[parent] == r[key]]
        if not ready:
            return ordered + waiting
        ordered += ready
        placed.update(r[key] for r in ready)
        taken = {id(r) for r in ready}
        waiting = [r for r in waiting if id(r) not in taken]
    return ordered
