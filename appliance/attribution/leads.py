"""What of a submitted form is kept as a lead, pure: names and values as inert text of bounded
size, and never a password, a card number or a security code, whatever the page sent."""

from __future__ import annotations

import json
import re

from appliance.attribution.touch import BadInput, inert

MAX_FIELDS = 30
MAX_NAME = 100
MAX_VALUE = 1000
SENSITIVE_NAME = re.compile(
    r"pass|pwd|card|cc-?(num|csc|exp)|cvv|cvc|csc|iban|ssn|social.?sec|secur|pin\b|token|secret",
    re.IGNORECASE,
)
DIGIT_RUN = re.compile(r"(?:\d[ -]?){13,19}")


def luhn(digits: str) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def looks_like_card(value: str) -> bool:
    for run in DIGIT_RUN.findall(value):
        digits = re.sub(r"\D", "", run)
        if 13 <= len(digits) <= 19 and luhn(digits):
            return True
    return False


def clean_fields(raw: object) -> str:
    """The fields to store, as a JSON object; BadInput when they are not name -> text."""
    if not isinstance(raw, dict) or len(raw) > MAX_FIELDS:
        raise BadInput(f"fields: an object of at most {MAX_FIELDS} names")
    kept: dict[str, str] = {}
    for name, value in raw.items():
        if not isinstance(value, str) or len(name) > MAX_NAME or len(value) > MAX_VALUE:
            raise BadInput(f"fields: text values of at most {MAX_VALUE} characters")
        name, value = inert(name, MAX_NAME), inert(value, MAX_VALUE)
        if name and value and not SENSITIVE_NAME.search(name) and not looks_like_card(value):
            kept[name] = value
    return json.dumps(kept, ensure_ascii=False)
