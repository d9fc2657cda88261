"""What of a submitted form is kept as a lead, pure: names and values as inert text of bounded
size, and never a password, a card number or a security code, whatever the page sent."""

from __future__ import annotations

import json
import re

from appliance.attribution.touch import BadInput, inert

MAX_FIELDS = 30
MAX_NAME = 100
MAX_VALUE = 1000
SENSITIVE_NAME = re.compile(  # short words whole (not "shipping"), longer ones anywhere
    r"(?<![a-z])(cc|pin|otp|cvv|cvc|csc|ssn|dob|pwd|iban|tax|acct|exp)(?![a-z])"
    r"|pass|card|secur|social.?sec|one.?time|token|secret|routing|sort.?code|account.?(n|#)"
    r"|licen[cs]e|birth|expir",
    re.IGNORECASE,
)
DIGIT_RUN = re.compile(r"(?:\d[^0-9A-Za-z]?){13,19}")
SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")


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
    """The fields to store, as a JSON object: the first MAX_FIELDS, each cut to size;
    BadInput when they are not name -> text."""
    if not isinstance(raw, dict):
        raise BadInput("fields: an object of names and texts")
    kept: dict[str, str] = {}
    for name, value in list(raw.items())[:MAX_FIELDS]:
        if not isinstance(value, str):
            raise BadInput("fields: each value is text")
        name, value = inert(name, MAX_NAME), inert(value, MAX_VALUE)
        if name and value and not sensitive(name, value):
            kept[name] = value
    return json.dumps(kept, ensure_ascii=False)


def sensitive(name: str, value: str) -> bool:
    return bool(SENSITIVE_NAME.search(name) or SSN.search(value) or looks_like_card(value))
