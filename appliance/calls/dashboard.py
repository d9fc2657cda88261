"""The dashboard's figures for a date range, within what the principal may see: calls per day
by source, answered rate, first-time callers, top sources and campaigns. Days are UTC days.

One pass over the calls, grouped by day and tracking number (from an index that holds every
column it needs); sources and campaigns are looked up per number afterwards."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

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


def _day(session: Session) -> Any:
    """The UTC day of a call, as each database does it cheaply."""
    if session.get_bind().dialect.name == "sqlite":
        return func.substr(Call.started_at, 1, 10)  # stored as 'YYYY-MM-DD HH:MM:SS' in UTC
    return cast(func.timezone("UTC", Call.started_at), Date)


def build(
    session: Session,
    principal: Principal,
    since: dt.date,
    until: dt.date,
    account_id: int | None = None,
) -> Dashboard:
    start = dt.datetime.combine(since, dt.time(), dt.UTC)
    stop = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), dt.UTC)
    scope = [principal.where(Call.account_id), Call.started_at >= start, Call.started_at < stop]
    if account_id is not None:
        scope.append(Call.account_id == account_id)
    day = _day(session)
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
    for when, number, count, took, first in session.execute(grouped):
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
