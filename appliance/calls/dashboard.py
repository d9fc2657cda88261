"""The dashboard's figures for a date range, within what the principal may see: calls per day
by source, answered rate, first-time callers, top sources and campaigns. Days are the days of
a time zone (the account's).

One pass over the calls, grouped by day and tracking number (from an index that holds every
column it needs); sources and campaigns are looked up per number afterwards. PostgreSQL knows
time zones; on SQLite the days are taken at the zone's offset of each local midnight, in runs
of days that share it (so on the night a clock changes, the hour after the change can count
to the day before)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, case, cast, func, select
from sqlalchemy.orm import Session

from appliance.access import Principal
from appliance.db.models import Call, Campaign, Source, TrackingNumber

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


@dataclass(frozen=True)
class Stretch:
    """Local days [since, until) as UTC instants, and the zone's offset at their midnights."""

    start: dt.datetime
    stop: dt.datetime
    minutes: int


def stretches(since: dt.date, until: dt.date, zone: ZoneInfo) -> list[Stretch]:
    """Pure: the local days from `since` to `until`, in runs that share a UTC offset."""
    runs: list[Stretch] = []
    day = since
    while day <= until:
        start = dt.datetime.combine(day, dt.time(), zone)
        stop = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone)
        offset = start.utcoffset()
        minutes = int(offset.total_seconds() // 60) if offset is not None else 0
        if runs and runs[-1].minutes == minutes:
            runs[-1] = Stretch(runs[-1].start, stop.astimezone(dt.UTC), minutes)
        else:
            runs.append(Stretch(start.astimezone(dt.UTC), stop.astimezone(dt.UTC), minutes))
        day += dt.timedelta(days=1)
    return runs


def _day(session: Session, zone: ZoneInfo, minutes: int) -> Any:
    """A call's local day, as each database does it cheaply."""
    if session.get_bind().dialect.name != "sqlite":
        return cast(func.timezone(zone.key, Call.started_at), Date)
    if minutes == 0:  # stored as 'YYYY-MM-DD HH:MM:SS' in UTC
        return func.substr(Call.started_at, 1, 10)
    return func.substr(func.datetime(Call.started_at, f"{minutes:+d} minutes"), 1, 10)


def build(
    session: Session,
    principal: Principal,
    since: dt.date,
    until: dt.date,
    account_id: int | None = None,
    zone: ZoneInfo | None = None,
) -> Dashboard:
    zone = zone or ZoneInfo("UTC")
    runs = stretches(since, until, zone)
    if session.get_bind().dialect.name != "sqlite":  # one pass: the database knows the zone
        runs = [Stretch(runs[0].start, runs[-1].stop, 0)]
    rows: list[Any] = []
    for run in runs:
        scope = [
            principal.where(Call.account_id),
            Call.started_at >= run.start,
            Call.started_at < run.stop,
        ]
        if account_id is not None:
            scope.append(Call.account_id == account_id)
        day = _day(session, zone, run.minutes)
        grouped = (
            select(
                day,
                Call.tracking_number_id,
                func.count(),
                func.sum(case((Call.disposition == "answered", 1), else_=0)),
                func.sum(case((Call.first_time.is_(True), 1), else_=0)),
            )
            .where(*scope)
            .group_by(day, Call.tracking_number_id)
        )
        rows += session.execute(grouped).all()
    names = {
        number: (source or NO_SOURCE, campaign)
        for number, source, campaign in session.execute(
            select(TrackingNumber.id, Source.name, Campaign.name)
            .outerjoin(Source, Source.id == TrackingNumber.source_id)
            .outerjoin(Campaign, Campaign.id == TrackingNumber.campaign_id)
            .where(principal.where(TrackingNumber.account_id))
        )
    }
    per_day: dict[str, Counter[str]] = {}
    calls, answered, first_time = Counter[str](), Counter[str](), 0
    campaign_calls, campaign_answered = Counter[str](), Counter[str]()
    for when, number, count, took, first in rows:
        source, campaign = names.get(number, (NO_SOURCE, None))
        per_day.setdefault(source, Counter())[str(when)[:10]] += count
        calls[source] += count
        answered[source] += took or 0
        first_time += first or 0
        if campaign:
            campaign_calls[campaign] += count
            campaign_answered[campaign] += took or 0
    days = [(since + dt.timedelta(days=n)).isoformat() for n in range((until - since).days + 1)]
    return Dashboard(
        since=since,
        until=until,
        calls=sum(calls.values()),
        answered=sum(answered.values()),
        first_time=first_time,
        per_day={source: dict(counts) for source, counts in per_day.items()},
        days=days,
        sources=_top(calls, answered),
        campaigns=_top(campaign_calls, campaign_answered),
    )


def _top(calls: Counter[str], answered: Counter[str]) -> list[Ranking]:
    ranked = sorted(calls.items(), key=lambda item: (-item[1], item[0]))[:TOP]
    return [Ranking(name, count, answered[name]) for name, count in ranked]
