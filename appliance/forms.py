"""Fields of query strings and forms, checked: bounded text, ISO dates."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

TEXT_MAX = 100


class BadFilter(ValueError):
    """A field that cannot be used; the message starts with its name."""


def text(fields: Mapping[str, str], name: str, limit: int = TEXT_MAX) -> str | None:
    value = (fields.get(name) or "").strip()
    if len(value) > limit:
        raise BadFilter(f"{name}: at most {limit} characters")
    return value or None


def day(fields: Mapping[str, str], name: str) -> dt.date | None:
    value = text(fields, name)
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        raise BadFilter(f"{name}: a date as YYYY-MM-DD") from None


def whole(text: str) -> bool:
    """Plain ASCII digits of a sane length (str.isdigit also takes '²' and other digits)."""
    return text.isascii() and text.isdigit() and len(text) <= 9
