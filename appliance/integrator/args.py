"""The AGI scripts' arguments and the values they set, checked once (pure).

Arguments come from a dialplan the appliance did not write, and values partly from website
visitors (keywords, landing pages, lead fields): each argument is checked against a strict
form, and free text set on the channel keeps no character that means something to the
dialplan, so it cannot split an application's arguments or open an expression.
"""

from __future__ import annotations

import re

from appliance.asterisk.agi_protocol import AgiRequest
from appliance.vocabulary import is_call_id

NUMBER = re.compile(r"\+?[0-9]{3,20}")
LINKEDID = re.compile(r"[A-Za-z0-9._-]{1,64}")
DIALPLAN_SPECIAL = set("$,;|()[]{}\"'\\^&`")
TEXT_CHARS = 200


class Refused(Exception):
    """The script does nothing; `reason` (a short word) goes into APPLIANCE_STATUS."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


def at_most(request: AgiRequest, count: int) -> tuple[str, ...]:
    if len(request.args) > count:
        raise Refused("bad-args", f"at most {count} argument(s), got {len(request.args)}")
    return request.args


def number(request: AgiRequest) -> str:
    """The tracking number the caller dialled: the first argument, else the channel's
    dialled number (agi_dnid), else its extension; '+' and 3 to 20 digits."""
    given = request.args[0] if request.args else ""
    text = given or request.get("dnid") or request.get("extension")
    if not NUMBER.fullmatch(text):
        raise Refused("bad-number", f"{text[:40]!r} is not a phone number")
    return text


def call_id(text: str) -> str:
    if not is_call_id(text):
        raise Refused("bad-call-id", f"{text[:40]!r} is not a call id (32 hex digits)")
    return text


def linkedid(value: str | None) -> str:
    if value is None or not LINKEDID.fullmatch(value):
        raise Refused("no-channel", "the channel's linkedid could not be read")
    return value


def split_call(args: tuple[str, ...]) -> tuple[tuple[str, ...], str | None]:
    """Free text arguments (tags, a note: Asterisk splits them at commas) and, when the last
    argument has a call id's form, that call id."""
    if len(args) > 1 and is_call_id(args[-1]):
        return args[:-1], args[-1]
    return args, None


def inert(value: object, limit: int = TEXT_CHARS) -> str:
    """Free text for a channel variable: printable, one line, nothing the dialplan reads as
    syntax, at most `limit` characters."""
    if value is None:
        return ""
    text = "".join(ch for ch in str(value) if ch.isprintable() and ch not in DIALPLAN_SPECIAL)
    return text[:limit]


def flag(value: bool | None) -> str:
    return "" if value is None else ("1" if value else "0")
