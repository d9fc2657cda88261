"""Everything the box holds about one person, within the accounts of whoever asks: their
calls (with recordings, transcripts, analyses and conversions), website visits, form leads,
and the webhook and conversion payloads that mention any of these.

A number finds the calls from it and the leads that give it; an e-mail address finds the
leads that give it; a visitor id finds that visitor's visits, the calls surely attributed to
them (never an 'ambiguous' one: a recycled pool number may have been shown to another
visitor) and the leads sent from them. Visits found through a call or a lead are those the
call was surely attributed to and those the lead was sent from.

What is under legal hold is marked as such: calls marked so or younger than their account's
hold, the visits of such calls, leads younger than their account's hold, and the payloads
naming a held call or lead. An erasure keeps them."""

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
    held_visits: list[str] = field(default_factory=list)  # of `visits`: kept under hold
    held_leads: list[int] = field(default_factory=list)  # of `leads`: kept under hold
    held_deliveries: list[int] = field(default_factory=list)  # of `deliveries`: kept

    def counts(self) -> dict[str, int]:
        """How many of each kind were found (what is held is counted in its kind too)."""
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
    holds = _Holds(session)
    found.calls = [c.id for c in calls]
    found.held = [c.id for c in calls if holds.call(c.legal_hold, c.account_id, c.started_at)]
    found.leads = [lead.id for lead in leads]
    found.held_leads = [lead.id for lead in leads if holds.young(lead.account_id, lead.created_at)]
    found.visits = sorted(visits)
    found.held_visits = _held_visits(session, holds, found.visits)
    _dependants(session, found)
    found.deliveries, found.held_deliveries = _deliveries(session, principal, subject, found)
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
        sure = Call.attribution.in_(SURE)  # an 'ambiguous' call may be another visitor's
        return list(session.scalars(select(Call).where(scope, sure, _among(Call.visit_id, visits))))
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


class _Holds:
    """The legal hold as retention knows it (privacy/retention.py): a call marked so, or
    anything younger than its account's legal_hold_days."""

    def __init__(self, session: Session) -> None:
        query = select(Account.id, Account.legal_hold_days)
        self.days = {i: d for i, d in session.execute(query) if d}
        self.now = dt.datetime.now(dt.UTC)

    def call(self, marked: bool, account_id: int | None, started: dt.datetime) -> bool:
        return marked or self.young(account_id, started)

    def young(self, account_id: int | None, moment: dt.datetime | None) -> bool:
        days = self.days.get(account_id or 0)
        if not days or moment is None:
            return False
        return moment > self.now - dt.timedelta(days=days)


def _held_visits(session: Session, holds: _Holds, visits: list[str]) -> list[str]:
    """Visits a held call is tied to (whoever made the call, however sure): the evidence
    of that call's attribution."""
    query = select(Call.visit_id, Call.legal_hold, Call.account_id, Call.started_at).where(
        _among(Call.visit_id, visits)
    )
    rows = session.execute(query)
    return sorted({v for v, marked, account, at in rows if v and holds.call(marked, account, at)})


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
) -> tuple[list[int], list[int]]:
    """Payloads are JSON: each is read, and is the person's if a value is the subject or
    names one of the calls, leads or visits found (a visit only when the payload names no
    other call: a call attributed to the visit may be someone else's). Second: those of them
    naming a call or lead under hold."""
    ids = {
        "calls": set(found.calls),
        "leads": set(map(str, found.leads)),
        "visits": set(found.visits),
    }
    held = {"calls": set(found.held), "leads": set(map(str, found.held_leads))}
    query = (
        select(Delivery.id, Delivery.payload)
        .join(Destination, Destination.id == Delivery.destination_id)
        .where(principal.where(Destination.account_id))
        .order_by(Delivery.id)
        .execution_options(yield_per=BATCH)
    )
    mine, kept = [], []
    for i, payload in session.execute(query):
        named = _about(payload, subject, ids)
        if named is None:
            continue
        mine.append(i)
        if any(named[kind] & held[kind] for kind in held):
            kept.append(i)
    return mine, kept


def _about(payload: str, subject: Subject, ids: dict[str, set[str]]) -> dict[str, set[str]] | None:
    """The ids a payload names, by kind, if it is about the person; else None."""
    if not subject.may_be_in(payload) and not any(n in payload for n in _needles(ids)):
        return None
    try:
        event = json.loads(payload)
    except ValueError:
        return None
    named: dict[str, set[str]] = {kind: set() for kind in ids}
    said = False
    for key, text in strings_in(event):
        kind = ID_KEYS.get(key)
        if kind:
            named[kind].add(text)
        said = said or subject.matches(text)
    others = named["calls"] - ids["calls"]  # a call's event names the call's visit too
    mine = bool(named["calls"] & ids["calls"] or named["leads"] & ids["leads"])
    mine = mine or bool(named["visits"] & ids["visits"] and not others)
    return named if said or mine else None


def _needles(ids: dict[str, set[str]]) -> Iterator[str]:
    """Texts a payload naming one of the rows found contains (payloads are json.dumps'd)."""
    yield from ids["calls"]
    yield from ids["visits"]
    yield from (f'"lead_id": {i}' for i in ids["leads"])


def _among(column: Any, values: Iterable[object]) -> ColumnElement[bool]:
    return column.in_(sorted(set(values), key=str))
