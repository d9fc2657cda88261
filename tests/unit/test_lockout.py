"""Sign-in lockout per user and client network, pure."""

import datetime as dt

from appliance import lockout
from appliance.lockout import Strikes

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)


def wrong(times: int, strikes: Strikes = Strikes(), user_recent: int = 0, at=T0) -> Strikes:
    for n in range(times):
        strikes = lockout.strike(strikes, user_recent, at + n * MINUTE)
    return strikes


def test_five_wrong_answers_in_a_row_lock_the_network_for_a_quarter_hour():
    four = wrong(4)
    assert four.count == 4 and not lockout.locked(four, T0 + 4 * MINUTE)
    five = wrong(5)
    assert lockout.locked(five, T0 + 5 * MINUTE)
    assert five.locked_until == T0 + 4 * MINUTE + lockout.LOCK_FOR
    assert not lockout.locked(five, five.locked_until)


def test_after_its_lock_a_network_that_guesses_again_is_locked_again_at_once():
    five = wrong(5)
    later = five.locked_until + MINUTE
    again = lockout.strike(lockout.current(five, later), 0, later)
    assert again.count == 6 and lockout.locked(again, later)


def test_a_network_quiet_for_a_day_is_forgotten():
    four = wrong(4)
    next_day = T0 + lockout.FORGET_AFTER + 4 * MINUTE
    assert lockout.current(four, next_day) == Strikes()
    assert not lockout.locked(lockout.strike(four, 0, next_day), next_day)


def test_many_wrong_answers_for_the_user_leave_each_network_one():
    assert lockout.allowance(lockout.UNDER_ATTACK - 1) == lockout.LOCK_AFTER
    assert lockout.allowance(lockout.UNDER_ATTACK) == 1
    first = lockout.strike(Strikes(), lockout.UNDER_ATTACK, T0)
    assert lockout.locked(first, T0)


def test_the_users_count_lasts_until_a_quiet_quarter_hour():
    assert lockout.recent(12, T0, T0 + 14 * MINUTE) == 12
    assert lockout.recent(12, T0, T0 + lockout.QUIET) == 0
    assert lockout.recent(12, None, T0) == 0


def test_a_network_that_never_answered_wrong_is_never_locked():
    assert not lockout.locked(Strikes(), T0)
    assert not lockout.locked(lockout.current(Strikes(), T0), T0)
