"""The restrict list, pure: which caller numbers an account must never record, transcribe,
analyse or send to an ad platform, in the forms a carrier may present them as caller ID.

A number enters the list as E.164 (numbers.to_e164: one clear line for anything else); a
caller ID is matched by every E.164 it can be read as, so '+12025550123', '12025550123' and
'2025550123' are one caller. The compiled dialplan matches the digit forms (`caller_forms`)
after filtering the caller ID to digits, so a hostile caller ID never reaches the text."""

from __future__ import annotations

from collections.abc import Iterable

from appliance.numbers import MAX_INPUT, InvalidNumber, dialled_forms, dialled_to_e164, to_e164

__all__ = ["InvalidNumber", "caller_forms", "is_restricted", "normalised"]


def normalised(raw: str, region: str = "US") -> str:
    """The number to keep on the list, or InvalidNumber with one line saying why."""
    return to_e164(raw, region)


def caller_forms(e164: str) -> tuple[str, ...]:
    """The digit strings a caller ID of this number can filter down to: with and without the
    country code, with a national trunk prefix, and with the international prefix 00."""
    forms = [form for form in dialled_forms(e164) if form.isdigit()]
    return tuple(dict.fromkeys([*forms, "00" + e164[1:]]))


def is_restricted(caller_number: str | None, listed: Iterable[str], region: str = "US") -> bool:
    """Whether this caller ID is one of the listed E.164 numbers: read as a number, or (as
    the dialplan matches it) its digits are one of a listed number's forms, e.g. a national
    number of another country than the default region."""
    digits = "".join(ch for ch in (caller_number or "")[:MAX_INPUT] if ch.isdigit())
    if not digits:
        return False
    numbers = set(listed)
    if dialled_to_e164(caller_number or "", region) in numbers:
        return True
    return any(digits in caller_forms(e164) for e164 in numbers)
