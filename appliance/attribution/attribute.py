"""Which website visit a call to a pool number came from: the visit that held the number when
the call came in, or the last one to hold it within a grace period after. Run by the call
writer when it records a call, beside the call path: a call never waits for it.

Confidence: 'held' (the number was shown to that visit alone at the time), 'after' (its hold
had ended, within the grace period) or 'ambiguous' (the pool had run out and recycled the
number from another visit, whose page may still have shown it). An ambiguous call is tied to
no visit and keeps the number's own source and campaign: either visitor may have called, and
the visit that took the number may be someone taking numbers on purpose, so nothing of its
marketing (source, campaign, keyword, click id) is credited with the call."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from appliance.db.models import Call, DniSite, NumberHold, TrackingNumber, Visit

GRACE = 300.0


def confidence(
    when: dt.datetime, ends: dt.datetime, recycled: bool, grace: float = GRACE
) -> str | None:
    """How sure a call at `when` came from a hold that ends at `ends` (and began before)."""
    if when <= ends:
        return "ambiguous" if recycled else "held"
    if when <= ends + dt.timedelta(seconds=grace):
        return "after"
    return None


def attribute(session: Session, call: Call, number: TrackingNumber, grace: float = GRACE) -> None:
    """Tie a call on a pool number to its visit, with the visit's source, medium and campaign;
    a call on a recycled number is marked ambiguous, and that is all."""
    if number.pool_site_id is None or call.attribution is not None:
        return
    when = call.started_at
    found = session.execute(
        select(NumberHold, Visit, DniSite.hold_minutes)
        .join(Visit, Visit.id == NumberHold.visit_id)
        .join(DniSite, DniSite.id == Visit.site_id)
        .where(NumberHold.number_id == number.id, NumberHold.held_from <= when)
        .order_by(NumberHold.held_from.desc(), NumberHold.id.desc())
        .limit(1)
    ).first()
    if found is None:
        return
    hold, visit, minutes = found
    ends = visit.last_seen_at + dt.timedelta(minutes=minutes)
    if hold.released_at is not None:
        ends = min(ends, hold.released_at)
    sure = confidence(when, ends, hold.recycled, grace)
    if sure is None:
        return
    call.attribution = sure
    if sure == "ambiguous":
        return
    call.visit_id = visit.id
    call.source_name, call.medium = visit.source_name, visit.medium
    call.campaign_name = visit.campaign_name
