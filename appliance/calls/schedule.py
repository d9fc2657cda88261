"""Business hours: a small text format, parsed and evaluated with no I/O.

    "mon-fri 09:00-17:30; sat 10:00-14:00"

Days are mon..sun, single or as a range (wrapping ranges such as fri-mon work); times are
HH:MM in the route's time zone (Asterisk matches time to the minute), the start inclusive and
the end exclusive, 24:00 for midnight at the end; a window may cross midnight
("fri 22:00-02:00" is open from Friday 22:00 to Saturday 02:00).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_ZONE = re.compile(r"[A-Za-z][A-Za-z0-9_+-]{0,30}(/[A-Za-z0-9_+-]{1,30}){0,2}")
DAY = 24 * 3600
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(
    r"^(?P<days>[a-z]{3}(?:-[a-z]{3})?(?:,[a-z]{3}(?:-[a-z]{3})?)*)\s+"
    r"(?P<start>\d{1,2}:\d{2})-(?P<end>\d{1,2}:\d{2})$"
)


class InvalidSchedule(ValueError):
    """Business hours that cannot be parsed; the message quotes the bad part."""


@dataclass(frozen=True)
class Window:
    day: int  # 0 = Monday
    start: int  # seconds after midnight
    end: int  # seconds after midnight; <= start means the window ends the next day


def _seconds(text: str) -> int:
    hours, minutes = (int(p) for p in text.split(":"))
    if hours > 24 or minutes > 59 or (hours == 24 and minutes):
        raise InvalidSchedule(f"{text!r} is not a time of day")
    return hours * 3600 + minutes * 60


def _days(text: str) -> list[int]:
    days: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise InvalidSchedule(f"{part!r} is not a day or a range of days (mon..sun)")
        a, b = DAYS.index(first), DAYS.index(last or first)
        days += [(a + i) % 7 for i in range((b - a) % 7 + 1)]
    return days


def parse(text: str) -> tuple[Window, ...]:
    windows: list[Window] = []
    for chunk in (c.strip().lower() for c in text.split(";")):
        if not chunk:
            continue
        match = _WINDOW.match(chunk)
        if not match:
            raise InvalidSchedule(
                f"{chunk[:60]!r} is not like 'mon-fri 09:00-17:00' (hours and minutes)"
            )
        start, until = _seconds(match["start"]), _seconds(match["end"])
        end = until % DAY  # a window that ends at or before its start ends the next day
        if start >= DAY:
            raise InvalidSchedule(f"{chunk!r} opens at 24:00 (write 00:00)")
        if start == until:
            raise InvalidSchedule(f"{chunk!r} opens and closes at the same time")
        windows += [Window(day, start, end) for day in _days(match["days"])]
    if not windows:
        raise InvalidSchedule("no opening hours given")
    return tuple(windows)


def zone(name: str) -> ZoneInfo:
    if not _ZONE.fullmatch(name):
        raise InvalidSchedule(f"{name[:60]!r} is not a time zone (e.g. America/New_York)")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidSchedule(f"{name[:60]!r} is not a time zone (e.g. America/New_York)") from None


def is_open(windows: tuple[Window, ...], tz: ZoneInfo, now: dt.datetime) -> bool:
    """Whether `now` (an aware datetime) falls inside any window, in the schedule's zone."""
    local = now.astimezone(tz)
    second = local.hour * 3600 + local.minute * 60 + local.second
    today, yesterday = local.weekday(), (local.weekday() - 1) % 7
    for w in windows:
        if w.end > w.start:
            if w.day == today and w.start <= second < w.end:
                return True
        elif (w.day == today and second >= w.start) or (w.day == yesterday and second < w.end):
            return True
    return False


def minute_ranges(window: Window) -> tuple[tuple[int, int, int], ...]:
    """The window as (day, first minute, last minute) ranges within single days, both ends
    inclusive, the way Asterisk's time matching reads them: a window across midnight is split
    into its two days."""
    first, end = window.start // 60, window.end // 60
    if window.end > window.start:
        return ((window.day, first, end - 1),)
    today = (window.day, first, 24 * 60 - 1)
    if end == 0:
        return (today,)
    return (today, ((window.day + 1) % 7, 0, end - 1))
