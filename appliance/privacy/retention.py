"""How long each kind of an account's data lives, as a pure decision: the settings, their
checks against the legal hold, and the moment before which each kind expires. Applied daily by
privacy/retention_job.py; recordings keep their own decision (recordings/retention.py judge())."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields, replace
from typing import Any

# what a new account starts with (an upgraded one keeps what it had: nothing expires);
# transcripts go with their recording unless transcript_days says sooner
DEFAULTS = {
    "call_days": 730,
    "call_expiry": "anonymise",
    "visit_days": 90,
    "lead_days": 365,
    "delivery_days": 30,
}
MOST_DAYS = 36500  # a century: longer is "forever" (and past what dates can count back)
EXPIRIES = ("anonymise", "delete")
# the settings as the command line and the settings page name them
LABELS = {
    "recording_days": "recordings",
    "transcript_days": "transcripts",
    "call_days": "calls",
    "visit_days": "visits",
    "lead_days": "leads",
    "delivery_days": "deliveries",
}


class RetentionRefused(ValueError):
    """A setting that cannot be applied; the message says why in one line."""


@dataclass(frozen=True)
class Policy:
    """An account's retention in days per kind of data; None keeps it until erased."""

    recording_days: int | None = None
    transcript_days: int | None = None
    call_days: int | None = None
    call_expiry: str = "anonymise"
    visit_days: int | None = None
    lead_days: int | None = None
    delivery_days: int | None = None
    legal_hold_days: int | None = None

    def days(self) -> dict[str, int | None]:
        return {name: getattr(self, name) for name in LABELS}


def of(row: object) -> Policy:
    """The policy of anything with the same attribute names (an Account row)."""
    return Policy(**{f.name: getattr(row, f.name) for f in fields(Policy)})


def check(policy: Policy) -> Policy:
    """The policy if it may be applied; else RetentionRefused naming the setting."""
    if policy.call_expiry not in EXPIRIES:
        raise RetentionRefused("call expiry: 'anonymise' or 'delete'")
    hold = policy.legal_hold_days
    if hold is not None and not 1 <= hold <= MOST_DAYS:
        raise RetentionRefused(f"legal hold: 1 to {MOST_DAYS} days")
    for name, days in policy.days().items():
        if days is None:
            continue
        if days < 1:
            raise RetentionRefused(f"{LABELS[name]}: at least 1 day ('forever' keeps them)")
        if days > MOST_DAYS:
            raise RetentionRefused(f"{LABELS[name]}: at most {MOST_DAYS} days, or 'forever'")
        if hold is not None and days < hold:
            raise RetentionRefused(
                f"{LABELS[name]}: {days} days is shorter than the legal hold of {hold} days"
            )
    return policy


def change(policy: Policy, **settings: Any) -> Policy:
    return check(replace(policy, **settings))


def parse_days(text: str) -> int | None:
    """Days as typed: a whole number, or 'forever' (also an empty field) for no limit."""
    text = text.strip().lower()
    if text in ("", "forever"):
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 6:
        raise RetentionRefused(f"{text[:20]!r} is not a number of days or 'forever'")
    return int(text)


def cutoff(days: int | None, policy: Policy, now: dt.datetime) -> dt.datetime | None:
    """Data older than this expires (None: nothing does); never younger than the hold."""
    if days is None:
        return None
    return now - dt.timedelta(days=max(days, policy.legal_hold_days or 0))


def hold_cutoff(policy: Policy, now: dt.datetime) -> dt.datetime | None:
    """Anything younger than this is under the account's legal hold."""
    if policy.legal_hold_days is None:
        return None
    return now - dt.timedelta(days=policy.legal_hold_days)


def held(created_at: dt.datetime, call_held: bool, policy: Policy, now: dt.datetime) -> bool:
    """Whether a call's data is kept whatever the settings: the call is held, or younger
    than the account's legal hold."""
    start = hold_cutoff(policy, now)
    return call_held or (start is not None and created_at >= start)


def audit_cutoff(days: int, hold_days: int | None, now: dt.datetime) -> dt.datetime | None:
    """Audit entries older than this go (0: kept for ever); an account's hold extends it."""
    if days == 0:
        return None
    return now - dt.timedelta(days=max(days, hold_days or 0))


def describe(days: int | None) -> str:
    return "forever" if days is None else f"{days} days"
