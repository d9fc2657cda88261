"""Who a request about personal data is about: a phone number (in any format), an e-mail
address or a website visitor (`visitor:ID`). Pure: the finder asks it whether a stored value
is the subject's, however that value was written when it arrived."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from appliance.numbers import MAX_INPUT, InvalidNumber, dialled_forms, dialled_to_e164, to_e164

EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,253}\.[^@\s.]{1,63}")
VISITOR = re.compile(r"[0-9a-f]{32}")  # as the tracking snippet makes them
VISITOR_PREFIX = "visitor:"
SYNTAX = "a phone number, an e-mail address or visitor:ID"


class Kind(StrEnum):
    NUMBER = "number"
    EMAIL = "email"
    VISITOR = "visitor"


class InvalidSubject(ValueError):
    """Text that names no person: the message says what was expected."""


@dataclass(frozen=True)
class Subject:
    kind: Kind
    value: str  # E.164, a lower-case e-mail address, or a visitor id
    region: str = "US"

    def __str__(self) -> str:
        return VISITOR_PREFIX + self.value if self.kind is Kind.VISITOR else self.value

    def matches(self, stored: str | None) -> bool:
        """Whether a stored value (a caller number as the carrier sent it, a form field as a
        visitor typed it) is this subject."""
        if not stored:
            return False
        if self.kind is Kind.NUMBER:
            return same_number(stored, self.value, self.region)
        return stored.strip().casefold() == self.value

    def tail(self) -> str:
        """A piece every stored form of the subject contains, for the database to narrow a
        search before each row is checked: the last four digits of a number."""
        return self.value[-4:] if self.kind is Kind.NUMBER else self.value

    def may_be_in(self, text: str) -> bool:
        """False when a JSON text cannot hold the subject: a quick look before it is read
        value by value (digits only for a number, whatever punctuation a visitor typed; an
        e-mail address as it is or as JSON escapes it)."""
        if self.kind is Kind.NUMBER:
            return self.tail() in "".join(ch for ch in text if ch.isdigit())
        folded = text.casefold()
        return self.value in folded or json.dumps(self.value)[1:-1] in folded


def parse(text: str, region: str = "US") -> Subject:
    """The subject an admin typed, or InvalidSubject with one line saying why."""
    raw = (text or "").strip()
    if not raw or len(raw) > 254:
        raise InvalidSubject(f"say who: {SYNTAX}")
    if raw.lower().startswith(VISITOR_PREFIX):
        visitor = raw[len(VISITOR_PREFIX) :].strip().lower()
        if not VISITOR.fullmatch(visitor):
            raise InvalidSubject("a visitor id is 32 hexadecimal digits (visitor:ID)")
        return Subject(Kind.VISITOR, visitor, region)
    if "@" in raw:
        if not EMAIL.fullmatch(raw) or not raw.isprintable():
            raise InvalidSubject(f"{_show(raw)} is not an e-mail address")
        return Subject(Kind.EMAIL, raw.casefold(), region)
    try:
        return Subject(Kind.NUMBER, to_e164(raw, region), region)
    except InvalidNumber as exc:
        raise InvalidSubject(f"{exc}; give {SYNTAX}") from None


def same_number(stored: str, e164: str, region: str = "US") -> bool:
    """A number as it was stored (E.164, digits with or without a country code, national
    format with punctuation) is `e164`."""
    text = stored.strip()[:MAX_INPUT]
    digits = "".join(ch for ch in text if ch.isdigit())
    if not digits:
        return False
    normalised = dialled_to_e164(text, region)
    if normalised is not None:
        return normalised == e164
    return digits in {f.lstrip("+") for f in dialled_forms(e164)}  # e.g. '0207 123 4567'


def strings_in(value: object, key: str = "") -> Iterator[tuple[str, str]]:
    """Every (key, text) pair inside a JSON value, however deep: what a payload mentions (a
    value in a list goes with the list's key)."""
    if isinstance(value, dict):
        for name, item in value.items():
            yield from strings_in(item, str(name))
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item, key)
    elif value is not None:
        yield key, str(value)


def _show(text: str) -> str:
    return repr("".join(ch if ch.isprintable() else "?" for ch in text[:MAX_INPUT]))
