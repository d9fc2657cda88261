import datetime as dt

import pytest

from appliance.calls.schedule import InvalidSchedule, Window, is_open, minute_ranges, parse, zone

NY = zone("America/New_York")


def at(text: str, tz=NY) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=tz)


def test_parse_days_and_ranges():
    assert parse("mon-wed 09:00-17:00")[0] == Window(0, 9 * 3600, 17 * 3600)
    assert [w.day for w in parse("fri-mon 10:00-11:00")] == [4, 5, 6, 0]
    assert len(parse("mon,wed 09:00-12:00; sun 12:00-13:00")) == 3
    assert parse("sun 00:00-24:00") == (Window(6, 0, 0),)
    assert parse("sat 18:00-24:00") == (Window(5, 18 * 3600, 0),)


def test_minute_ranges_are_what_asterisk_matches_with_the_end_inclusive():
    assert minute_ranges(Window(0, 9 * 3600, 17 * 3600)) == ((0, 540, 1019),)
    assert minute_ranges(Window(4, 22 * 3600, 2 * 3600)) == ((4, 1320, 1439), (5, 0, 119))
    assert minute_ranges(Window(6, 22 * 3600, 2 * 3600)) == ((6, 1320, 1439), (0, 0, 119))
    assert minute_ranges(Window(5, 18 * 3600, 0)) == ((5, 1080, 1439),)
    assert minute_ranges(Window(6, 0, 0)) == ((6, 0, 1439),)


def test_every_minute_of_a_week_agrees_with_the_minute_ranges():
    """The pure schedule and the ranges Asterisk is given decide every minute the same."""
    windows = parse("mon-fri 09:00-17:30; fri 22:00-02:00; sun 23:59-00:01; sat 00:00-24:00")
    ranges = [r for w in windows for r in minute_ranges(w)]
    start = dt.datetime(2026, 11, 30, tzinfo=NY)  # a Monday
    for minute in range(7 * 24 * 60):
        now = start + dt.timedelta(minutes=minute)
        day, of_day = now.weekday(), now.hour * 60 + now.minute
        asterisk = any(d == day and first <= of_day <= last for d, first, last in ranges)
        assert is_open(windows, NY, now) == asterisk, now


@pytest.mark.parametrize(
    "text",
    [
        "",
        "mon",
        "funday 09:00-10:00",
        "mon 25:00-26:00",
        "mon 09:00-09:00",
        "mon 9-17",
        "mon 09:60-10:00",
        "sat 10:00:30-10:00:45",
        "mon 24:00-02:00",
        "mon 09:00-09:00",
    ],
)
def test_bad_schedules_are_refused(text):
    with pytest.raises(InvalidSchedule):
        parse(text)


@pytest.mark.parametrize(
    "name", ["Mars/Olympus", "../../etc/passwd", "UTC?x", "Europe/Paris,1", "a" * 100, ""]
)
def test_bad_time_zone_is_refused(name):
    with pytest.raises(InvalidSchedule, match="not a time zone"):
        zone(name)


def test_boundaries_are_start_inclusive_end_exclusive():
    windows = parse("mon-fri 09:00-17:00")
    assert not is_open(windows, NY, at("2026-11-30 08:59:59"))  # a Monday
    assert is_open(windows, NY, at("2026-11-30 09:00:00"))
    assert is_open(windows, NY, at("2026-11-30 16:59:59"))
    assert not is_open(windows, NY, at("2026-11-30 17:00:00"))
    assert not is_open(windows, NY, at("2026-11-29 12:00:00"))  # Sunday


def test_evaluated_in_the_schedule_time_zone():
    windows = parse("mon-fri 09:00-17:00")
    utc = dt.UTC
    assert not is_open(windows, NY, at("2026-11-30 13:59:00", utc))  # 08:59 in New York
    assert is_open(windows, NY, at("2026-11-30 14:00:00", utc))


def test_windows_across_midnight_and_daylight_saving():
    windows = parse("fri 22:00-02:00")
    assert is_open(windows, NY, at("2026-12-04 23:00"))
    assert is_open(windows, NY, at("2026-12-05 01:59"))
    assert not is_open(windows, NY, at("2026-12-05 02:00"))
    assert not is_open(windows, NY, at("2026-12-03 23:00"))
    # 2026-03-08 is the spring-forward Sunday in New York; 09:30 local is 13:30 UTC.
    sunday = parse("sun 09:00-10:00")
    assert is_open(sunday, NY, at("2026-03-08 13:30:00", dt.UTC))
