"""The dashboard's figures for a date range, within what the principal may see: calls per day
by source, answered rate, first-time callers, top sources and campaigns. Days are the days of
a time zone (the account's).

One small query a day, from an index that holds every column it needs: the calls between the
day's first and last instant (exact in any time zone, daylight saving included), grouped by
tracking number; sources and campaigns are looked up per number afterwards."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, case, func, select
from sqlalchemy.orm import Session

from appliance.access import Principal
from appliance.db.models import Call

DAYS_MAX = 366
TOP = 10
NO_SOURCE = "(no source)"


class BadRange(ValueError):
    """A date range the dashboard cannot show; the message says why."""


@dataclass(frozen=True)
class Ranking:
    name: str
    calls: int
    answered: int


@dataclass(frozen=True)
class Dashboard:
    since: dt.date
    until: dt.date
    calls: int
    answered: int
    first_time: int
    per_day: dict[str, dict[str, int]]  # source -> {"YYYY-MM-DD": calls}
    days: list[str]
    sources: list[Ranking]
    campaigns: list[Ranking]

    @property
    def answered_rate(self) -> float | None:
        return self.answered / self.calls if self.calls else None


def date_range(
    since: str | None, until: str | None, today: dt.date | None = None
) -> tuple[dt.date, dt.date]:
    """From the page's fields; the last 90 days by default."""
    today = today or dt.datetime.now(dt.UTC).date()
    try:
        last = dt.date.fromisoformat(until) if until else today
        first = dt.date.fromisoformat(since) if since else last - dt.timedelta(days=89)
    except ValueError:
        raise BadRange("dates are YYYY-MM-DD") from None
    if first > last:
        raise BadRange("the first day comes after the last")
    if (last - first).days >= DAYS_MAX:
        raise BadRange(f"at most {DAYS_MAX} days at a time")
    return first, last


def day_bounds(
    since: dt.date, until: dt.date, zone: ZoneInfo
) -> list[tuple[str, dt.datetime, dt.datetime]]:
    """Pure: each local day from `since` to `until` with its first and next day's instant, UTC."""
    days = []
    day = since
    while day <= until:
        start = dt.datetime.combine(day, dt.time(), zone).astimezone(dt.UTC)
        stop = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC)
        days.append((day.isoformat(), start, stop))
        day += dt.timedelta(days=1)
    return days


def build(
    session: Session,
    principal: Principal,
    since: dt.date,
    until: dt.date,
    account_id: int | None = None,
    zone: ZoneInfo | None = None,
) -> Dashboard:
    zone = zone or ZoneInfo("UTC")
    scope = [
        principal.where(Call.account_id),
        Call.started_at >= bindparam("start"),
        Call.started_at < bindparam("stop"),
    ]
    if account_id is not None:
        scope.append(Call.account_id == account_id)
    one_day = (
        select(
            Call.source_name,
            Call.campaign_name,
            func.count(),
            func.sum(case((Call.disposition == "answered", 1), else_=0)),
            func.sum(case((Call.first_time.is_(True), 1), else_=0)),
        )
        .where(*scope)
        .group_by(Call.source_name, Call.campaign_name)
    )
    days = day_bounds(since, until, zone)
    rows = [
        (name, *row)
        for name, start, stop in days
        for row in session.execute(one_day, {"start": start, "stop": stop})
    ]
    per_day: dict[str, Counter[str]] = {}
    calls, answered, first_time = Counter[str](), Counter[str](), 0
    campaign_calls, campaign_answered = Counter[str](), Counter[str]()
    for when, source_name, campaign, count, took, first in rows:
        source = source_name or NO_SOURCE
        per_day.setdefault(source, Counter())[when] += count
        calls[source] += count
        answered[source] += took or 0
        first_time += first or 0
        if campaign:
            campaign_calls[campaign] += count
            campaign_answered[campaign] += took or 0
    return Dashboard(
        since=since,
        until=until,
        calls=sum(calls.values()),
        answered=sum(answered.values()),
        first_time=first_time,
        per_day={source: dict(counts) for source, counts in per_day.items()},
        days=[name for name, _, _ in days],
        sources=_top(calls, answered),
        campaigns=_top(campaign_calls, campaign_answered),
    )


def _top(calls: Counter[str], answered: Counter[str]) -> list[Ranking]:
    ranked = sorted(calls.items(), key=lambda item: (-item[1], item[0]))[:TOP]
    return [Ranking(name, count, answered[name]) for name, count in ranked]
