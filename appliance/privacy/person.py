"""Everything the box holds about one person, within the accounts of whoever asks: their
calls (with recordings, transcripts, analyses and conversions), website visits, form leads,
and the webhook and conversion payloads that mention any of these.

A number finds the calls from it and the leads that give it; an e-mail address finds the
leads that give it; a visitor id finds that visitor's visits and the calls and leads made
from them. Visits found through a call or a lead are those the call was surely attributed
to and those the lead was sent from."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from appliance.access import Principal
from appliance.db.models import (
    Account,
    Call,
    CallAnalysis,
    Conversion,
    Delivery,
    Destination,
    Lead,
    Recording,
    Transcript,
    Visit,
)
from appliance.privacy.subject import Kind, Subject, strings_in

SURE = ("held", "after")  # attributions that tie a call to the visit (as conversions do)
ID_KEYS = {"call_id": "calls", "lead_id": "leads", "visit_id": "visits"}
BATCH = 500


@dataclass
class Found:
    calls: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # of `calls`: kept under legal hold
    recordings: list[str] = field(default_factory=list)
    transcripts: list[str] = field(default_factory=list)
    analyses: list[str] = field(default_factory=list)
    conversions: list[int] = field(default_factory=list)
    visits: list[str] = field(default_factory=list)
    leads: list[int] = field(default_factory=list)
    deliveries: list[int] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """How many of each kind were found (held calls are counted in calls too)."""
        return {name: len(getattr(self, name)) for name in KINDS}

    def empty(self) -> bool:
        return not any(getattr(self, name) for name in KINDS)


KINDS = tuple(Found.__dataclass_fields__)


def find(session: Session, principal: Principal, subject: Subject) -> Found:
    found = Found()
    visits = set(_visits_of_visitor(session, principal, subject))
    calls = _calls(session, principal, subject, visits)
    leads = _leads(session, principal, subject, visits)
    visits.update(c.visit_id for c in calls if c.visit_id and c.attribution in SURE)
    visits.update(lead.visit_id for lead in leads if lead.visit_id)
    found.calls = [c.id for c in calls]
    found.held = _held(session, calls)
    found.leads = [lead.id for lead in leads]
    found.visits = sorted(visits)
    _dependants(session, found)
    found.deliveries = _deliveries(session, principal, subject, found)
    return found


def _visits_of_visitor(session: Session, principal: Principal, subject: Subject) -> list[str]:
    if subject.kind is not Kind.VISITOR:
        return []
    query = select(Visit.id).where(
        Visit.visitor == subject.value, principal.where(Visit.account_id)
    )
    return list(session.scalars(query.order_by(Visit.id)))


def _calls(
    session: Session, principal: Principal, subject: Subject, visits: set[str]
) -> list[Call]:
    scope = principal.where(Call.account_id)
    if subject.kind is Kind.VISITOR:
        return list(session.scalars(select(Call).where(scope, _among(Call.visit_id, visits))))
    if subject.kind is not Kind.NUMBER:
        return []
    query = select(Call).where(scope, Call.caller_number.contains(subject.tail()))
    rows = session.scalars(query.order_by(Call.started_at).execution_options(yield_per=BATCH))
    return [c for c in rows if subject.matches(c.caller_number)]


def _leads(
    session: Session, principal: Principal, subject: Subject, visits: set[str]
) -> list[Lead]:
    scope = principal.where(Lead.account_id)
    if subject.kind is Kind.VISITOR:
        return list(session.scalars(select(Lead).where(scope, _among(Lead.visit_id, visits))))
    # a visitor types a number as they like ('(312) 555-0111'): every lead is read
    query = select(Lead).where(scope).order_by(Lead.id).execution_options(yield_per=BATCH)
    return [lead for lead in session.scalars(query) if _gives(lead.fields, subject)]


def _gives(fields: str, subject: Subject) -> bool:
    if not subject.may_be_in(fields):
        return False
    try:
        values = json.loads(fields)
    except ValueError:
        return False
    return any(subject.matches(text) for _, text in strings_in(values))


def _held(session: Session, calls: list[Call]) -> list[str]:
    """Calls under legal hold: marked so, or younger than their account's hold."""
    days = {i: d for i, d in session.execute(select(Account.id, Account.legal_hold_days))}
    now = dt.datetime.now(dt.UTC)
    return [c.id for c in calls if c.legal_hold or _young(c, days.get(c.account_id or 0), now)]


def _young(call: Call, days: int | None, now: dt.datetime) -> bool:
    if not days:
        return False
    started = call.started_at
    if started.tzinfo is None:  # SQLite gives naive UTC back
        started = started.replace(tzinfo=dt.UTC)
    return started > now - dt.timedelta(days=days)


def _dependants(session: Session, found: Found) -> None:
    calls = found.calls
    found.recordings = _ids(session, Recording.call_id, calls)
    found.transcripts = _ids(session, Transcript.call_id, calls)
    found.analyses = _ids(session, CallAnalysis.call_id, calls)
    by_call = select(Conversion.id).where(_among(Conversion.call_id, calls))
    by_lead = select(Conversion.id).where(_among(Conversion.lead_id, found.leads))
    found.conversions = sorted(set(session.scalars(by_call)) | set(session.scalars(by_lead)))


def _ids(session: Session, column: Any, among: list[str]) -> list[str]:
    return list(session.scalars(select(column).where(_among(column, among)).order_by(column)))


def _deliveries(
    session: Session, principal: Principal, subject: Subject, found: Found
) -> list[int]:
    """Payloads are JSON: each is read, and kept if a value is the subject or names one of
    the calls, leads or visits found."""
    ids = {
        "calls": set(found.calls),
        "leads": set(map(str, found.leads)),
        "visits": set(found.visits),
    }
    query = (
        select(Delivery.id, Delivery.payload)
        .join(Destination, Destination.id == Delivery.destination_id)
        .where(principal.where(Destination.account_id))
        .order_by(Delivery.id)
        .execution_options(yield_per=BATCH)
    )
    return [i for i, payload in session.execute(query) if _mentions(payload, subject, ids)]


def _mentions(payload: str, subject: Subject, ids: dict[str, set[str]]) -> bool:
    if not subject.may_be_in(payload) and not any(n in payload for n in _needles(ids)):
        return False
    try:
        event = json.loads(payload)
    except ValueError:
        return False
    for key, text in strings_in(event):
        kind = ID_KEYS.get(key)
        if (kind and text in ids[kind]) or subject.matches(text):
            return True
    return False


def _needles(ids: dict[str, set[str]]) -> Iterator[str]:
    """Texts a payload naming one of the rows found contains (payloads are json.dumps'd)."""
    yield from ids["calls"]
    yield from ids["visits"]
    yield from (f'"lead_id": {i}' for i in ids["leads"])


def _among(column: Any, values: Iterable[object]) -> ColumnElement[bool]:
    return column.in_(sorted(set(values), key=str))
