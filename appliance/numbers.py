"""Phone numbers: everything stored is E.164; everything that arrives is untrusted text."""

from __future__ import annotations

import phonenumbers

MAX_INPUT = 64


class InvalidNumber(ValueError):
    """A number that cannot be turned into a valid E.164 number."""


def to_e164(raw: str, default_region: str = "US") -> str:
    """Normalise a number as typed by a person or sent by a carrier, or raise InvalidNumber."""
    text = (raw or "").strip()
    if not text or len(text) > MAX_INPUT:
        raise InvalidNumber(f"{_show(text)} is not a phone number")
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else default_region)
    except phonenumbers.NumberParseException:
        raise InvalidNumber(f"{_show(text)} is not a phone number") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidNumber(f"{_show(text)} is not a valid number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def dialled_to_e164(dnid: str, default_region: str = "US") -> str | None:
    """The dialled number from a trunk as E.164, or None when it is not a valid number.

    Carriers send DIDs as '+15551234567', '15551234567' or '5551234567'; a bare national
    number is read in the default region, digits with a country code are tried with '+'.
    """
    digits = "".join(ch for ch in (dnid or "")[:MAX_INPUT] if ch.isdigit() or ch == "+")
    if not digits:
        return None
    candidates = [digits] if digits.startswith("+") else [digits, "+" + digits]
    for candidate in candidates:
        try:
            return to_e164(candidate, default_region)
        except InvalidNumber:
            continue
    return None


def dialled_forms(e164: str) -> tuple[str, ...]:
    """The forms in which a carrier may send this number as the dialled number: E.164 with
    and without '+', the national significant number, and the national format with its
    trunk prefix (e.g. '02071234567' in the UK)."""
    parsed = phonenumbers.parse(e164)
    national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    forms = (e164, e164[1:], str(parsed.national_number), "".join(filter(str.isdigit, national)))
    return tuple(dict.fromkeys(forms))


def national_parts(e164: str) -> tuple[str, str, tuple[str, ...]]:
    """A valid E.164 number as its country code, its national significant number and the
    national trunk prefixes it may be written with, from phonenumbers' metadata: '0' in the
    UK, '8' in Russia, '06' in Hungary; none in the NANP, where '1' is the country code."""
    parsed = phonenumbers.parse(e164)
    country = str(parsed.country_code)
    significant = phonenumbers.national_significant_number(parsed)
    national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    national = "".join(ch for ch in national if ch.isdigit())
    trunks = []
    if national.endswith(significant) and len(national) > len(significant):
        trunks.append(national[: -len(significant)])
    region = phonenumbers.region_code_for_number(parsed)
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region) if region else None
    prefix = metadata.national_prefix if metadata is not None else None
    if prefix and prefix.isdigit() and prefix != country:
        trunks.append(prefix)
    return country, significant, tuple(dict.fromkeys(trunks))


def _show(text: str) -> str:
    printable = "".join(ch if ch.isprintable() else "?" for ch in text[:MAX_INPUT])
    return repr(printable)
