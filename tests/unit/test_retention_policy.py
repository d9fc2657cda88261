"""The retention decision (privacy/retention.py): what expires when, under legal holds, and
the settings refused in one line."""

from __future__ import annotations

import datetime as dt

import pytest

from appliance.privacy import retention
from appliance.privacy.retention import Policy, RetentionRefused

NOW = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)


def days_ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


def test_nothing_expires_without_a_setting():
    assert retention.cutoff(None, Policy(), NOW) is None


def test_data_older_than_the_setting_expires_and_the_boundary_is_kept():
    cutoff = retention.cutoff(90, Policy(visit_days=90), NOW)
    assert cutoff == days_ago(90)
    assert days_ago(90.001) < cutoff <= days_ago(90)  # exactly 90 days old: kept (not <)


def test_the_account_hold_extends_every_cutoff():
    policy = Policy(call_days=400, legal_hold_days=400)
    assert retention.cutoff(400, policy, NOW) == days_ago(400)
    # a setting stored before the hold grew (never accepted now) still waits for the hold
    assert retention.cutoff(30, Policy(legal_hold_days=365), NOW) == days_ago(365)


@pytest.mark.parametrize(
    ("created", "call_held", "hold_days", "held"),
    [
        (days_ago(10), False, None, False),
        (days_ago(10), True, None, True),
        (days_ago(10), False, 30, True),
        (days_ago(30), False, 30, True),  # the boundary is held
        (days_ago(31), False, 30, False),
        (days_ago(3000), True, 30, True),
    ],
)
def test_held(created, call_held, hold_days, held):
    assert retention.held(created, call_held, Policy(legal_hold_days=hold_days), NOW) is held


def test_a_setting_shorter_than_the_legal_hold_is_refused_naming_both():
    with pytest.raises(RetentionRefused) as refused:
        retention.change(Policy(legal_hold_days=365), call_days=30)
    assert str(refused.value) == "calls: 30 days is shorter than the legal hold of 365 days"


def test_a_hold_longer_than_a_setting_is_refused():
    with pytest.raises(RetentionRefused, match=r"^visits: 90 days is shorter than the legal hold"):
        retention.change(Policy(visit_days=90), legal_hold_days=180)


def test_equal_to_the_hold_is_accepted():
    assert retention.change(Policy(legal_hold_days=90), visit_days=90).visit_days == 90


@pytest.mark.parametrize("setting", ["call_days", "transcript_days", "recording_days"])
def test_zero_or_negative_days_are_refused(setting):
    with pytest.raises(RetentionRefused, match="at least 1 day"):
        retention.change(Policy(), **{setting: 0})


def test_an_unknown_expiry_is_refused():
    with pytest.raises(RetentionRefused, match="'anonymise' or 'delete'"):
        retention.change(Policy(), call_expiry="shred")


@pytest.mark.parametrize(("typed", "days"), [("forever", None), ("", None), (" 30 ", 30)])
def test_parse_days(typed, days):
    assert retention.parse_days(typed) == days


@pytest.mark.parametrize("typed", ["-1", "1.5", "thirty", "٣", "9" * 7, "<b>1</b>"])
def test_parse_days_refuses_anything_else_in_one_line(typed):
    with pytest.raises(RetentionRefused) as refused:
        retention.parse_days(typed)
    assert "\n" not in str(refused.value) and "or 'forever'" in str(refused.value)


def test_the_audit_log_keeps_at_least_an_accounts_hold():
    assert retention.audit_cutoff(0, None, NOW) is None
    assert retention.audit_cutoff(365, None, NOW) == days_ago(365)
    assert retention.audit_cutoff(365, 1000, NOW) == days_ago(1000)


def test_defaults_are_a_valid_policy():
    assert retention.check(Policy(**retention.DEFAULTS)).call_days == 730
