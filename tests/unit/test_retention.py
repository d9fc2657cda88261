import datetime as dt

from appliance.recordings.retention import Limits, Stored, judge

NOW = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)
MB = 1_000_000


def stored(name: str, days_ago: float, size: int = MB) -> Stored:
    return Stored(name, NOW - dt.timedelta(days=days_ago), size)


def test_no_limits_keep_everything():
    verdict = judge([stored("a", 400), stored("b", 1)], Limits(), NOW)
    assert verdict.delete == () and not verdict.paused and not verdict.warn


def test_age_limit_removes_old_recordings():
    verdict = judge([stored("old", 31), stored("new", 29)], Limits(days=30), NOW)
    assert verdict.delete == ("old",) and verdict.used_bytes == MB


def test_quota_removes_the_oldest_first():
    records = [stored("c", 1), stored("a", 3), stored("b", 2)]
    verdict = judge(records, Limits(quota_bytes=2 * MB), NOW)
    assert verdict.delete == ("a",) and verdict.used_bytes == 2 * MB
    assert verdict.warn  # at 100 % of the quota


def test_quota_with_pause_keeps_everything_and_pauses():
    verdict = judge(
        [stored("a", 3), stored("b", 2)], Limits(quota_bytes=MB, when_full="pause"), NOW
    )
    assert verdict.delete == () and verdict.paused and verdict.warn


def test_warning_before_the_limit():
    assert judge([stored("a", 1, 91)], Limits(quota_bytes=100), NOW).warn
    assert not judge([stored("a", 1, 89)], Limits(quota_bytes=100), NOW).warn


def test_a_held_recording_is_kept_whatever_its_age():
    held = Stored("held", NOW - dt.timedelta(days=400), MB, held=True)
    verdict = judge([held, stored("old", 400)], Limits(days=30), NOW)
    assert verdict.delete == ("old",)


def test_the_quota_never_deletes_a_held_recording_and_still_counts_it():
    held = Stored("held", NOW - dt.timedelta(days=9), MB, held=True)
    records = [held, stored("b", 2), stored("c", 1)]
    verdict = judge(records, Limits(quota_bytes=2 * MB), NOW)
    assert verdict.delete == ("b",) and verdict.used_bytes == 2 * MB
