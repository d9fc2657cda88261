"""The restrict list, pure: which caller numbers an account must never record, transcribe,
analyse or send to an ad platform, in the forms a carrier may present them as caller ID.

A number enters the list as E.164 (numbers.to_e164: one clear line for anything else). A
caller ID is filtered to the digits 0-9, as the compiled dialplan does with
${FILTER(0-9,${CALLERID(num)})}, and is restricted exactly when those digits are one of a
listed number's `caller_forms`: the dialplan's contexts list those same forms, so what the
call's record says and what Asterisk did never differ, and a hostile caller ID never reaches
the dialplan's text."""

from __future__ import annotations

import functools
from collections.abc import Iterable

from appliance.numbers import InvalidNumber, national_parts, to_e164

__all__ = ["InvalidNumber", "caller_digits", "caller_forms", "is_restricted", "normalised"]

# Before the country code: the ITU's usual international prefix, and the NANP's (how US and
# Canadian carriers present a call from abroad: 011 44 20 7123 4567).
INTERNATIONAL_PREFIXES = ("00", "011")


def normalised(raw: str, region: str = "US") -> str:
    """The number to keep on the list, or InvalidNumber with one line saying why."""
    return to_e164(raw, region)


@functools.lru_cache(maxsize=8192)  # read on every call's record: a number's forms never change
def caller_forms(e164: str) -> tuple[str, ...]:
    """Every digit string a caller ID of this number is recognised by: with and without the
    country code, with the national trunk prefix (also after the country code, as in
    '+44 (0) 20 7123 4567'), and each international form after 00 or 011. The compiled
    dialplan lists these, and `is_restricted` matches these and nothing else."""
    country, significant, trunks = national_parts(e164)
    nationals = (significant, *(trunk + significant for trunk in trunks))
    internationals = tuple(country + national for national in nationals)
    forms = (
        internationals[0],
        *nationals,
        *internationals[1:],
        *(prefix + form for prefix in INTERNATIONAL_PREFIXES for form in internationals),
    )
    return tuple(dict.fromkeys(forms))


def caller_digits(caller_number: str | None) -> str:
    """The caller ID as the dialplan looks it up: only the characters 0 to 9 kept."""
    return "".join(ch for ch in caller_number or "" if ch in "0123456789")


def is_restricted(caller_number: str | None, listed: Iterable[str]) -> bool:
    """Whether this caller ID is one of the listed E.164 numbers: its digits are one of a
    listed number's caller forms, exactly as the compiled dialplan decides."""
    digits = caller_digits(caller_number)
    return bool(digits) and any(digits in caller_forms(e164) for e164 in set(listed))
