"""What the pages and the API read about attribution: a call's visit and its pages, how full
each number pool is, calls and leads per source and campaign, and the leads list. Every query
is scoped to the accounts the principal may see."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from appliance.access import Principal
from appliance.db.models import (
    Call,
    Conversion,
    DniSite,
    Lead,
    NumberHold,
    TrackingNumber,
    Visit,
    VisitPage,
)


@dataclass(frozen=True)
class VisitView:
    id: str
    site: str
    started_at: dt.datetime
    last_seen_at: dt.datetime
    landing_page: str
    referrer: str | None
    source: str
    medium: str | None
    campaign: str | None
    keyword: str | None
    click_id_type: str | None
    click_id: str | None
    pages: list[tuple[dt.datetime, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "site": self.site,
            "started_at": self.started_at.isoformat(),
            "last_seen_at": self.last_seen_at.isoformat(),
            "landing_page": self.landing_page,
            "referrer": self.referrer,
            "source": self.source,
            "medium": self.medium,
            "campaign": self.campaign,
            "keyword": self.keyword,
            "click_id_type": self.click_id_type,
            "click_id": self.click_id,
            "pages": [{"at": at.isoformat(), "url": url} for at, url in self.pages],
        }


def visit(session: Session, principal: Principal, visit_id: str | None) -> VisitView | None:
    if not visit_id:
        return None
    found = session.execute(
        select(Visit, DniSite.name)
        .join(DniSite, DniSite.id == Visit.site_id)
        .where(Visit.id == visit_id, principal.where(Visit.account_id))
    ).first()
    if found is None:
        return None
    row, site = found
    pages = session.execute(
        select(VisitPage.at, VisitPage.url)
        .where(VisitPage.visit_id == row.id)
        .order_by(VisitPage.at, VisitPage.id)
    ).all()
    return VisitView(
        id=row.id,
        site=site,
        started_at=row.started_at,
        last_seen_at=row.last_seen_at,
        landing_page=row.landing_page,
        referrer=row.referrer,
        source=row.source_name,
        medium=row.medium,
        campaign=row.campaign_name,
        keyword=row.keyword,
        click_id_type=row.click_id_type,
        click_id=row.click_id,
        pages=[(at, url) for at, url in pages],
    )


@dataclass(frozen=True)
class PoolUse:
    size: int
    in_use: int  # numbers held by a visit now
    recycled_day: int  # times the pool ran out in the last 24 hours
    recycled_month: int  # ... in the last 30 days


def pool_use(session: Session, site: DniSite, now: dt.datetime) -> PoolUse:
    size = session.scalar(
        select(func.count())
        .select_from(TrackingNumber)
        .where(TrackingNumber.pool_site_id == site.id, TrackingNumber.released_at.is_(None))
    )
    held = session.scalar(
        select(func.count(func.distinct(NumberHold.number_id)))
        .join(Visit, Visit.id == NumberHold.visit_id)
        .join(TrackingNumber, TrackingNumber.id == NumberHold.number_id)
        .where(
            Visit.site_id == site.id,
            TrackingNumber.pool_site_id == site.id,
            NumberHold.released_at.is_(None),
            Visit.last_seen_at > now - dt.timedelta(minutes=site.hold_minutes),
        )
    )

    def recycled(since: dt.timedelta) -> int:
        return (
            session.scalar(
                select(func.count())
                .select_from(NumberHold)
                .join(Visit, Visit.id == NumberHold.visit_id)
                .where(
                    Visit.site_id == site.id,
                    NumberHold.recycled,
                    NumberHold.held_from > now - since,
                )
            )
            or 0
        )

    return PoolUse(
        size or 0, held or 0, recycled(dt.timedelta(days=1)), recycled(dt.timedelta(days=30))
    )


@dataclass(frozen=True)
class SourceRow:
    source: str
    medium: str
    campaign: str
    calls: int
    answered: int
    first_time: int
    leads: int = 0
    conversions: int = 0


def by_source(
    session: Session, principal: Principal, start: dt.datetime, stop: dt.datetime
) -> list[SourceRow]:
    """Calls (answered, first-time) and leads per source, medium and campaign, as they were
    when each came in; most calls first."""
    key = (Call.source_name, Call.medium, Call.campaign_name)
    calls = session.execute(
        select(
            *key,
            func.count(),
            func.sum(case((Call.disposition == "answered", 1), else_=0)),
            func.sum(case((Call.first_time.is_(True), 1), else_=0)),
        )
        .where(principal.where(Call.account_id), Call.started_at >= start, Call.started_at < stop)
        .group_by(*key)
    ).all()

    def counted(model: type[Lead] | type[Conversion], when: Any) -> dict[tuple[str, str, str], int]:
        return {
            (s or "", m or "", c or ""): n
            for s, m, c, n in session.execute(
                select(model.source_name, model.medium, model.campaign_name, func.count())
                .where(principal.where(model.account_id), when >= start, when < stop)
                .group_by(model.source_name, model.medium, model.campaign_name)
            ).all()
        }

    leads = counted(Lead, Lead.created_at)
    converted = counted(Conversion, Conversion.occurred_at)
    by_key = {
        (s or "", m or "", c or ""): (count, answered or 0, first or 0)
        for s, m, c, count, answered, first in calls
    }
    rows = [
        SourceRow(
            source,
            medium,
            campaign,
            *by_key.get((source, medium, campaign), (0, 0, 0)),
            leads=leads.get((source, medium, campaign), 0),
            conversions=converted.get((source, medium, campaign), 0),
        )
        for source, medium, campaign in set(by_key) | set(leads) | set(converted)
    ]
    return sorted(rows, key=lambda r: (-r.calls, -r.leads, r.source, r.campaign))


@dataclass(frozen=True)
class LeadRow:
    id: int
    created_at: dt.datetime
    site: str
    form: str
    fields: dict[str, str]
    page: str | None
    source: str | None
    medium: str | None
    campaign: str | None
    visit_id: str | None

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "created_at": self.created_at.isoformat(),
            "site": self.site,
            "form": self.form,
            "fields": self.fields,
            "page": self.page,
            "source": self.source,
            "medium": self.medium,
            "campaign": self.campaign,
            "visit_id": self.visit_id,
        }


def leads(session: Session, principal: Principal, limit: int = 200) -> Iterator[LeadRow]:
    """The newest leads first."""
    query = (
        select(Lead, DniSite.name)
        .join(DniSite, DniSite.id == Lead.site_id)
        .where(principal.where(Lead.account_id))
        .order_by(Lead.created_at.desc(), Lead.id.desc())
        .limit(limit)
    )
    for lead, site in session.execute(query):
        yield LeadRow(
            id=lead.id,
            created_at=lead.created_at,
            site=site,
            form=lead.form,
            fields=json.loads(lead.fields),
            page=lead.page,
            source=lead.source_name,
            medium=lead.medium,
            campaign=lead.campaign_name,
            visit_id=lead.visit_id,
        )
