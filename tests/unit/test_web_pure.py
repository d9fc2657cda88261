"""Pure parts of the web side: Range parsing (RFC 9110), the permission table, call log
filters and cursors, with hostile input; the tally of refused requests."""

import pytest

from appliance.access import ROLE_PERMISSIONS, SCOPES, Permission, Principal, parse_scopes
from appliance.calls import log as call_log
from appliance.vocabulary import Role, values
from appliance.web import ranges
from appliance.web.auth import local_path
from appliance.web.refusals import OTHERS, Minute, Tally
from tests.hostile import STRINGS


@pytest.mark.parametrize(
    ("header", "total", "expected"),
    [
        (None, 100, ranges.Whole()),
        ("bytes=0-0", 100, ranges.Part(0, 1)),
        ("bytes=0-99", 100, ranges.Part(0, 100)),
        ("bytes=50-500", 100, ranges.Part(50, 100)),
        ("bytes=99-", 100, ranges.Part(99, 100)),
        ("bytes=-1", 100, ranges.Part(99, 100)),
        ("bytes=-500", 100, ranges.Part(0, 100)),
        ("bytes = 1-2", 100, ranges.Part(1, 3)),
        ("bytes=100-", 100, ranges.Unsatisfiable()),
        ("bytes=-0", 100, ranges.Unsatisfiable()),
        ("bytes=-5", 0, ranges.Unsatisfiable()),
        ("bytes=5-1", 100, ranges.Whole()),
        ("bytes=0-1,3-4", 100, ranges.Whole()),
        ("bytes=-", 100, ranges.Whole()),
        ("bytes=abc", 100, ranges.Whole()),
        ("lines=1-2", 100, ranges.Whole()),
        ("bytes=" + "9" * 40 + "-", 100, ranges.Whole()),
    ],
)
def test_ranges(header, total, expected):
    assert ranges.wanted(header, total) == expected


@pytest.mark.parametrize("header", STRINGS)
def test_hostile_range_headers_send_the_whole_body(header):
    assert ranges.wanted(header, 1000) == ranges.Whole()
    if not header.lstrip("-").isdigit():  # "-1" is a fine suffix range
        assert ranges.wanted("bytes=" + header, 1000) == ranges.Whole()


def test_every_role_has_permissions_and_only_admins_change_things():
    assert set(ROLE_PERMISSIONS) == set(values(Role))
    writers = {r for r, p in ROLE_PERMISSIONS.items() if Permission.CONFIG_WRITE in p}
    assert writers == {Role.OWNER, Role.ADMIN}
    assert ROLE_PERMISSIONS[Role.CLIENT_VIEWER] == {
        Permission.CALLS_READ,
        Permission.RECORDINGS_READ,
    }


def test_scopes_are_checked():
    assert parse_scopes("calls:read, calls:read recordings:read") == (
        "calls:read",
        "recordings:read",
    )
    with pytest.raises(ValueError, match="unknown scope"):
        parse_scopes("calls:read admin")
    assert set(SCOPES) == {p.value for p in Permission}


def principal(accounts, agency):
    return Principal(1, "u", "analyst", 1, frozenset(accounts), agency, frozenset())


def test_tenants_see_their_accounts_and_the_agency_unowned_calls():
    client = principal({2}, agency=False)
    assert client.sees(2) and not client.sees(3) and not client.sees(None)
    agency = principal({1, 2, 3}, agency=True)
    assert agency.sees(3) and agency.sees(None) and not agency.sees(4)


@pytest.mark.parametrize("value", STRINGS)
def test_hostile_filters_and_cursors_are_refused_or_harmless(value):
    for field in ("from", "to", "disposition", "account", "number", "source", "q"):
        try:
            wanted = call_log.parse_filter({field: value})
        except call_log.BadFilter as exc:
            assert str(exc).startswith(field)
            continue
        if field == "number" and wanted.number is not None:
            assert wanted.number.isdigit()
    with pytest.raises(call_log.BadFilter, match="cursor"):
        call_log.decode_cursor(value)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/calls?x=1", "/calls?x=1"),
        ("//evil.example", "/calls"),
        ("/\\evil.example", "/calls"),
        ("https://evil.example/", "/calls"),
        ("javascript:alert(1)", "/calls"),
        ("/\t/evil.example/", "/calls"),  # browsers drop the tab: //evil.example/
        ("/\n/evil.example/", "/calls"),
        ("/calls\x7f", "/calls"),
        ("", "/calls"),
        (None, "/calls"),
    ],
)
def test_only_local_paths_after_sign_in(target, expected):
    assert local_path(target) == expected


def test_totp_codes_match_their_step_within_one_step_of_now():
    import datetime as dt

    import pyotp

    from appliance import totp

    secret = totp.new_secret()
    assert totp.valid_secret(secret) and not totp.valid_secret(secret.lower())
    now = dt.datetime(2026, 11, 29, 12, 0, 10, tzinfo=dt.UTC)
    step = int(now.timestamp()) // 30
    generator = pyotp.TOTP(secret)
    for offset in (-1, 0, 1):
        assert totp.matching_step(secret, generator.at(now.timestamp() + 30 * offset), now) == (
            step + offset
        )
    assert totp.matching_step(secret, generator.at(now.timestamp() + 60), now) is None
    code = generator.at(now.timestamp())
    assert totp.matching_step(secret, f"{code[:3]} {code[3:]}", now) == step
    for bad in ("", "12345", "1234567", "abcdef", "١٢٣٤٥٦"):
        assert totp.matching_step(secret, bad, now) is None


def test_local_days_are_bounded_by_their_own_midnights():
    import datetime as dt
    from zoneinfo import ZoneInfo

    from appliance.calls.dashboard import day_bounds

    new_york = ZoneInfo("America/New_York")  # clocks go forward on 2026-03-08: a 23-hour day
    days = day_bounds(dt.date(2026, 3, 7), dt.date(2026, 3, 9), new_york)
    assert [name for name, _, _ in days] == ["2026-03-07", "2026-03-08", "2026-03-09"]
    assert days[0][1] == dt.datetime(2026, 3, 7, 5, tzinfo=dt.UTC)
    assert days[1][1] == days[0][2] == dt.datetime(2026, 3, 8, 5, tzinfo=dt.UTC)
    assert days[1][2] - days[1][1] == dt.timedelta(hours=23)
    assert days[2][2] == dt.datetime(2026, 3, 10, 4, tzinfo=dt.UTC)
    ((_, start, stop),) = day_bounds(dt.date(2026, 3, 8), dt.date(2026, 3, 8), ZoneInfo("UTC"))
    assert (start.hour, stop - start) == (0, dt.timedelta(days=1))


def test_refusals_beyond_the_first_of_a_minute_are_counted_and_summed_up_once_it_is_over():
    tally = Tally(per_minute=30)
    at = 60 * 1000 + 5.0
    written = [tally.take("198.51.100.7", at + n / 10) for n in range(100)]
    assert written == [True] * 30 + [False] * 70
    assert tally.take("2001:db8::/64", at)  # another network has its own 30
    assert tally.close(at + 50) == []  # the minute goes on
    assert tally.close(at + 60) == [Minute("198.51.100.7", 1000, 30, 70)]  # the other: all written
    assert tally.close(at + 120) == []  # each minute once
    assert tally.take("198.51.100.7", at + 60)  # a new minute, a new 30


def test_at_the_end_the_minute_going_on_is_summed_up_too():
    tally = Tally(per_minute=1)
    for _ in range(3):
        tally.take("192.0.2.1", 120.0)
    assert tally.close(121.0, everything=True) == [Minute("192.0.2.1", 2, 1, 2)]
    minute = Minute("192.0.2.1", 2, 1, 2)
    assert minute.detail() == (
        "3 requests refused in the minute from 1970-01-01 00:02 UTC; "
        "2 of them not written one by one"
    )


def test_networks_beyond_the_bound_are_counted_together():
    tally = Tally(per_minute=1, networks=2)
    for network in ("192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.3"):
        tally.take(network, 0.0)
    assert tally.close(60.0) == [Minute(OTHERS, 0, 1, 2)]
