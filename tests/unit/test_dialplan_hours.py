"""Business hours at their boundaries, without waiting for a clock: the compiled dialplan is
walked the way Asterisk runs it, its GotoIfTime read as Asterisk's main/pbx_timing.c reads it
(times to the minute, both ends inclusive, ranges of times and of days cyclic, the day of the
week Sunday first, the time zone the fifth field), and every call must reach the route the
pure decision (calls/routing.py) names: a second and a minute before, at, and after each
opening and closing, on every day, in zones off UTC by a quarter or half an hour, across
midnight, the end of the week and daylight-saving changes.

tests/integration/test_routes.py places real calls into the real Asterisk on each side of a
boundary, which proves the reading of GotoIfTime here is Asterisk's."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest

from appliance.calls import schedule
from appliance.calls import variables as var
from appliance.calls.dialplan import Settings, compile_routes
from appliance.calls.model import NumberInfo, RoutingTable
from appliance.calls.routing import RoutePlan, Target, decide
from appliance.vocabulary import TargetKind

SETTINGS = Settings("appliance-inbound", "agi://127.0.0.1:573")
NUMBER = "+12025550123"
DESK = (Target(TargetKind.ENDPOINT, "desk-1"),)
NIGHT = RoutePlan(id=9, name="Night", targets=DESK)
WEEK_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # Asterisk's order (tm_wday)
MINUTES_A_DAY = 24 * 60


# GotoIfTime as Asterisk evaluates it --------------------------------------------------------
def _cyclic(first: int, last: int, size: int) -> set[int]:
    """first..last, both included, wrapping past the end (Asterisk's ranges are cyclic)."""
    return {(first + i) % size for i in range((last - first) % size + 1)}


def _minute(text: str) -> int:
    hours, minutes = (int(part) for part in text.split(":"))
    assert 0 <= hours <= 23 and 0 <= minutes <= 59, f"Asterisk skips the time {text!r}"
    return hours * 60 + minutes


def _times(field: str) -> set[int]:
    if field == "*":
        return set(range(MINUTES_A_DAY))
    minutes: set[int] = set()
    for part in field.split("&"):
        first, _, last = part.partition("-")
        minutes |= _cyclic(_minute(first), _minute(last or first), MINUTES_A_DAY)
    return minutes


def _days(field: str) -> set[int]:
    if field == "*":
        return set(range(7))
    days: set[int] = set()
    for part in field.split("&"):
        first, _, last = part.partition("-")
        assert first in WEEK_DAYS and (last or first) in WEEK_DAYS, f"Asterisk skips {part!r}"
        days |= _cyclic(WEEK_DAYS.index(first), WEEK_DAYS.index(last or first), 7)
    return days


def asterisk_time_matches(spec: str, moment: dt.datetime) -> bool:
    """GotoIfTime's condition 'times,weekdays,mdays,months,timezone' at `moment`."""
    times, weekdays, mdays, months, zone = spec.split(",")
    assert (mdays, months) == ("*", "*"), spec  # the compiler never narrows these
    local = moment.astimezone(ZoneInfo(zone))
    weekday = (local.weekday() + 1) % 7  # tm_wday: Sunday is 0
    return weekday in _days(weekdays) and local.hour * 60 + local.minute in _times(times)


def test_the_reading_of_gotoiftime_is_asterisk_s():
    """The rules of pbx_timing.c, on their own: the end minute is inside the range, a range
    whose end comes before its start wraps past midnight, day ranges wrap past Saturday."""
    utc = dt.UTC
    monday = dt.datetime(2026, 1, 5, tzinfo=utc)
    assert asterisk_time_matches("09:00-16:59,mon,*,*,UTC", monday.replace(hour=16, minute=59))
    assert not asterisk_time_matches("09:00-16:59,mon,*,*,UTC", monday.replace(hour=17))
    assert not asterisk_time_matches("09:00-16:59,mon,*,*,UTC", monday.replace(hour=8, minute=59))
    assert asterisk_time_matches("22:00-01:59,mon,*,*,UTC", monday.replace(hour=1))
    assert not asterisk_time_matches("22:00-01:59,mon,*,*,UTC", monday.replace(hour=2))
    assert asterisk_time_matches("*,fri-mon,*,*,UTC", monday)
    assert not asterisk_time_matches("*,sat&sun,*,*,UTC", monday)
    # 09:00 in Kathmandu (UTC+5:45) is 03:15 UTC
    assert asterisk_time_matches(
        "09:00-09:00,mon,*,*,Asia/Kathmandu", monday.replace(hour=3, minute=15)
    )
    assert not asterisk_time_matches(
        "09:00-09:00,mon,*,*,Asia/Kathmandu", monday.replace(hour=3, minute=16)
    )


# the compiled dialplan, walked ----------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    app: str
    args: str


_STEP = re.compile(r"^(?:exten => [^,]+,1|\s+same => n(?:\([a-z]+\))?),(\w+)\((.*)\)$")


def contexts(text: str) -> dict[str, dict[str, list[Step]]]:
    """Context -> extension -> its steps, in order."""
    found: dict[str, dict[str, list[Step]]] = {}
    extension: list[Step] = []
    for line in text.splitlines():
        if line.startswith("["):
            current = found.setdefault(line[1 : line.index("]")], {})
        elif line.startswith("exten => "):
            extension = current.setdefault(line.split(",", 1)[0].removeprefix("exten => "), [])
        if line.startswith(("exten => ", " same => ")):
            match = _STEP.match(line)
            assert match, line
            extension.append(Step(match[1], match[2]))
    return found


def route_taken(text: str, dialled: str, moment: dt.datetime) -> tuple[int, bool]:
    """Where Asterisk sends a call to `dialled` at `moment`: the connect context's route id
    and whether the call is marked after hours."""
    plan = contexts(text)
    steps, after_hours = plan[SETTINGS.inbound_context][dialled], False
    while True:
        for step in steps:
            target = None
            if step.app == "GotoIfTime":
                condition, _, then = step.args.partition("?")
                if asterisk_time_matches(condition, moment):
                    target = then
            elif step.app == "Goto":
                target = step.args
            elif step == Step("Set", f"{var.AFTER_HOURS}=yes"):
                after_hours = True
            else:  # tagging the call (hangup handler, number): no effect on the route
                assert step.app in ("Set", "MSet") and var.AFTER_HOURS not in step.args, step
            if target is not None:
                context = target.split(",")[0]
                if context.startswith(var.CONNECT_CTX):
                    return int(context.removeprefix(var.CONNECT_CTX)), after_hours
                steps = plan[context]["s"]
                break
        else:
            raise AssertionError(f"the call fell off the end of {steps}")


# boundaries ---------------------------------------------------------------------------------
def route(route_id: int, name: str, hours: str, zone: str, after: RoutePlan) -> RoutePlan:
    return RoutePlan(route_id, name, DESK, hours=hours, timezone=zone, after_hours=after)


# after 17:00 in New York, calls go to a desk in Kolkata (the next morning there) until 21:30
OVERFLOW = route(2, "Overflow", "tue-sat 03:30-08:00", "Asia/Kolkata", NIGHT)
ROUTES = [
    route(1, "Office", "mon-fri 09:00-17:30", "America/New_York", NIGHT),
    route(1, "Late", "fri 22:00-02:00", "Asia/Kathmandu", NIGHT),
    route(1, "Weekend", "sun 23:00-01:00; sat 00:00-24:00", "Pacific/Chatham", NIGHT),
    route(1, "Minutes", "mon,wed 00:00-00:01; thu-tue 12:00-12:01", "America/St_Johns", NIGHT),
    route(1, "Shop", "sat-sun 10:00-16:00", "Australia/Lord_Howe", NIGHT),
    route(1, "Desk", "mon-fri 09:00-17:00", "America/New_York", OVERFLOW),  # two steps
]
# Mondays of weeks with ordinary days and with daylight-saving changes in these zones
WEEKS = [
    dt.date(2026, 1, 5),
    dt.date(2026, 3, 2),  # New York springs forward on Sunday 8 March
    dt.date(2026, 3, 23),  # London on the 29th
    dt.date(2026, 3, 30),  # Chatham and Lord Howe fall back on 5 April
    dt.date(2026, 9, 21),  # Chatham springs forward on the 27th
    dt.date(2026, 9, 28),  # St John's and Lord Howe on 4 October
    dt.date(2026, 10, 26),  # New York and St John's fall back on 1 November
]
AROUND = [dt.timedelta(seconds=s) for s in (-60, -1, 0, 1, 59, 60)]


def boundaries(plan: RoutePlan) -> list[dt.datetime]:
    """Every opening and closing of `plan` and of its after-hours steps in the WEEKS."""
    moments = []
    current: RoutePlan | None = plan
    while current is not None and current.hours:
        zone = ZoneInfo(current.timezone)
        for monday in WEEKS:
            assert monday.weekday() == 0, monday
            for window in schedule.parse(current.hours):
                day = dt.datetime.combine(monday, dt.time(), zone) + dt.timedelta(days=window.day)
                opens = day + dt.timedelta(seconds=window.start)
                length = (window.end - window.start) % schedule.DAY or schedule.DAY
                moments += [opens, opens + dt.timedelta(seconds=length)]
        current = current.after_hours
    return moments


def compiled(plan: RoutePlan) -> str:
    return compile_routes(RoutingTable((NumberInfo(3, 1, NUMBER, plan),)), SETTINGS).text


@pytest.mark.parametrize("plan", ROUTES, ids=[plan.name for plan in ROUTES])
def test_every_boundary_reaches_the_route_the_pure_decision_names(plan: RoutePlan):
    text = compiled(plan)
    seen = set()
    for boundary in boundaries(plan):
        for offset in AROUND:
            moment = (boundary + offset).astimezone(dt.UTC)
            expected = decide(plan, moment)
            assert expected.route is not None
            taken = route_taken(text, NUMBER, moment)
            assert taken == (expected.route.id, expected.after_hours), moment
            seen.add(taken)
    assert len(seen) == (3 if plan.after_hours is OVERFLOW else 2), seen  # open and closed


def local(text: str, zone: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))


# (route, local time in its zone, the route the call reaches, after hours)
EXPECTED = [
    (ROUTES[0], "2026-01-05 08:59:59", "Night", True),  # Monday, a second before opening
    (ROUTES[0], "2026-01-05 09:00:00", "Office", False),
    (ROUTES[0], "2026-01-05 17:29:59", "Office", False),
    (ROUTES[0], "2026-01-05 17:30:00", "Night", True),
    (ROUTES[0], "2026-01-10 12:00:00", "Night", True),  # Saturday
    (ROUTES[1], "2026-01-09 21:59:59", "Night", True),  # Friday
    (ROUTES[1], "2026-01-09 22:00:00", "Late", False),
    (ROUTES[1], "2026-01-10 01:59:59", "Late", False),  # Saturday, past midnight
    (ROUTES[1], "2026-01-10 02:00:00", "Night", True),
    (ROUTES[1], "2026-01-10 23:00:00", "Night", True),  # Saturday night is not Friday's
    (ROUTES[2], "2026-01-10 00:00:00", "Weekend", False),  # Saturday, all day
    (ROUTES[2], "2026-01-10 23:59:59", "Weekend", False),
    (ROUTES[2], "2026-01-11 00:00:00", "Night", True),  # Sunday
    (ROUTES[2], "2026-01-11 22:59:59", "Night", True),
    (ROUTES[2], "2026-01-11 23:00:00", "Weekend", False),
    (ROUTES[2], "2026-01-12 00:59:59", "Weekend", False),  # Monday, across the week's end
    (ROUTES[2], "2026-01-12 01:00:00", "Night", True),
    (ROUTES[3], "2026-01-05 00:00:59", "Minutes", False),  # open for one minute
    (ROUTES[3], "2026-01-05 00:01:00", "Night", True),
    (ROUTES[3], "2026-01-06 00:00:00", "Night", True),  # Tuesday: only at noon
    (ROUTES[3], "2026-01-06 12:00:00", "Minutes", False),
    (ROUTES[3], "2026-01-07 12:00:00", "Night", True),  # Wednesday is outside thu-tue
    (ROUTES[5], "2026-01-05 16:59:59", "Desk", False),
    (ROUTES[5], "2026-01-05 17:00:00", "Overflow", True),  # Tuesday 03:30 in Kolkata
    (ROUTES[5], "2026-01-05 21:29:59", "Overflow", True),
    (ROUTES[5], "2026-01-05 21:30:00", "Night", True),
    (ROUTES[5], "2026-01-05 08:59:59", "Night", True),
    (ROUTES[5], "2026-01-11 17:00:00", "Night", True),  # Sunday: Monday in Kolkata, closed
    (ROUTES[5], "2026-07-06 17:00:00", "Night", True),  # summer time in New York only:
    (ROUTES[5], "2026-07-06 17:59:59", "Night", True),  # an hour before Kolkata opens
    (ROUTES[5], "2026-07-06 18:00:00", "Overflow", True),
]


@pytest.mark.parametrize(("plan", "when", "name", "after_hours"), EXPECTED)
def test_the_boundaries_written_out(plan: RoutePlan, when: str, name: str, after_hours: bool):
    moment = local(when, plan.timezone).astimezone(dt.UTC)
    names = {plan.id: plan.name, OVERFLOW.id: OVERFLOW.name, NIGHT.id: NIGHT.name}
    route_id, marked = route_taken(compiled(plan), NUMBER, moment)
    assert (names[route_id], marked) == (name, after_hours)
    decided = decide(plan, moment)
    assert decided.route is not None and (decided.route.name, decided.after_hours) == (
        name,
        after_hours,
    )
