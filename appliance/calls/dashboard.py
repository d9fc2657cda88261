"""The dashboard's figures for a date range, within what the principal may see: calls per day
by source, answered rate, first-time callers, top sources and campaigns. Days are UTC days."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import case, func, select
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
    answered = func.sum(case((Call.disposition == "answered", 1), else_=0))
    day = func.date(Call.started_at)
    source = func.coalesce(Source.name, NO_SOURCE)
    by_day_source = (
        select(
            day,
            source,
            func.count(),
            answered,
            func.sum(case((Call.first_time.is_(True), 1), else_=0)),
        )
        .select_from(Call)
        .outerjoin(TrackingNumber, TrackingNumber.id == Call.tracking_number_id)
        .outerjoin(Source, Source.id == TrackingNumber.source_id)
        .where(*scope)
        .group_by(day, source)
    )
    per_day: dict[str, dict[str, int]] = {}
    totals: dict[str, list[int]] = {}
    calls = answered_calls = first_time = 0
    for when, name, count, took, first in session.execute(by_day_source):
        per_day.setdefault(name, {})[str(when)[:10]] = count
        total = totals.setdefault(name, [0, 0])
        total[0] += count
        total[1] += took or 0
        calls += count
        answered_calls += took or 0
        first_time += first or 0
    campaign = func.coalesce(Campaign.name, "")
    by_campaign = (
        select(campaign, func.count(), answered)
        .select_from(Call)
        .join(TrackingNumber, TrackingNumber.id == Call.tracking_number_id)
        .join(Campaign, Campaign.id == TrackingNumber.campaign_id)
        .where(*scope)
        .group_by(campaign)
        .order_by(func.count().desc())
        .limit(TOP)
    )
    days = [(since + dt.timedelta(days=n)).isoformat() for n in range((until - since).days + 1)]
    sources = sorted(
        (Ranking(name, c, a) for name, (c, a) in totals.items()), key=lambda r: (-r.calls, r.name)
    )
    return Dashboard(
        since=since,
        until=until,
        calls=calls,
        answered=answered_calls,
        first_time=first_time,
        per_day=per_day,
        days=days,
        sources=sources[:TOP],
        campaigns=[Ranking(n, c, a or 0) for n, c, a in session.execute(by_campaign)],
    )
