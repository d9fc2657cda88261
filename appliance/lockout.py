"""Sign-in lockout, pure: when wrong answers (passwords, TOTP codes) lock a client network out
of a user, so that nobody can lock the user out for everyone.

A lock holds for one user *and one client network* (ratelimit.client_key: an IPv4 address,
an IPv6 /64). Five wrong answers in a row from a network lock that network out of that user
for a quarter of an hour, the right password included; every other network still signs in
with the right password (and the code, where two-step sign-in is on). After its lock, a
network that answers wrong again is locked again at once: a persistent guesser gets one guess
a quarter of an hour.

The safety net against a guesser spread over many networks counts the user's wrong answers
from all networks together. When they pass UNDER_ATTACK without a quiet quarter of an hour,
each network is allowed one wrong answer instead of five before its lock. It only ever
shortens a guessing network's allowance: a network that has not answered wrong (the owner's)
still signs in at once with the right password, so the net cannot be turned against the owner.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

LOCK_AFTER = 5  # wrong answers in a row from one network
LOCK_FOR = dt.timedelta(minutes=15)
FORGET_AFTER = dt.timedelta(days=1)  # a network's wrong answers are forgotten after this
UNDER_ATTACK = 10  # the user's wrong answers from all networks...
QUIET = dt.timedelta(minutes=15)  # ...counted until none came for this long


@dataclass(frozen=True)
class Strikes:
    """Wrong answers in a row from one network for one user, and its lock."""

    count: int = 0
    last: dt.datetime | None = None
    locked_until: dt.datetime | None = None


def current(strikes: Strikes, now: dt.datetime) -> Strikes:
    """The strikes that still count: none after a quiet day (a lock is far shorter)."""
    if strikes.last is None or now - strikes.last >= FORGET_AFTER:
        return Strikes()
    return strikes


def locked(strikes: Strikes, now: dt.datetime) -> bool:
    return strikes.locked_until is not None and strikes.locked_until > now


def recent(count: int, last: dt.datetime | None, now: dt.datetime) -> int:
    """The user's wrong answers from all networks, since the last quiet quarter of an hour."""
    return count if last is not None and now - last < QUIET else 0


def allowance(user_recent: int) -> int:
    """Wrong answers a network may give before its lock, given the user's recent ones."""
    return 1 if user_recent >= UNDER_ATTACK else LOCK_AFTER


def strike(strikes: Strikes, user_recent: int, now: dt.datetime) -> Strikes:
    """After a wrong answer from a network that was not locked."""
    count = current(strikes, now).count + 1
    until = now + LOCK_FOR if count >= allowance(user_recent) else None
    return Strikes(count, now, until)
