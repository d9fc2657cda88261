"""The call log as the admin UI, the API and exports read it: filtered, newest first, a page at
a time (keyset pagination, so a page deep in the list costs what the first one does), and never
beyond what the principal may see."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from appliance.access import Permission, Principal
from appliance.calls.annotations import effective_score, of_call
from appliance.db.models import Account, Call, CallAnalysis, Recording
from appliance.forms import BadFilter, day, text, whole
from appliance.vocabulary import is_call_id

__all__ = ["BadFilter", "CallFilter", "CallRow", "every", "one", "page", "parse_filter"]

DISPOSITIONS = ("answered", "no_answer", "busy", "failed", "abandoned")
PAGE_MAX = 200


@dataclass(frozen=True)
class CallFilter:
    since: dt.date | None = None  # first day included, in UTC
    until: dt.date | None = None  # last day included, in UTC
    number: str | None = None  # part of the tracking number or of the caller's number
    source: str | None = None
    disposition: str | None = None
    search: str | None = None  # caller name or number, route
    account_id: int | None = None


def parse_filter(fields: Any) -> CallFilter:
    """A filter from query parameters (a mapping of str), each checked."""
    disposition = text(fields, "disposition")
    if disposition is not None and disposition not in DISPOSITIONS:
        raise BadFilter(f"disposition: one of {', '.join(DISPOSITIONS)}")
    account = text(fields, "account")
    if account is not None and not whole(account):
        raise BadFilter("account: an account id")
    number = text(fields, "number")
    if number is not None:
        number = "".join(ch for ch in number if ch in "0123456789") or None
    return CallFilter(
        since=day(fields, "from"),
        until=day(fields, "to"),
        number=number,
        source=text(fields, "source"),
        disposition=disposition,
        search=text(fields, "q"),
        account_id=int(account) if account else None,
    )


@dataclass(frozen=True)
class CallRow:
    id: str
    account_id: int | None
    account: str | None
    started_at: dt.datetime
    dialled: str
    caller_number: str | None
    caller_name: str | None
    source: str | None
    route: str | None
    medium: str | None
    disposition: str | None
    ring_seconds: float | None
    talk_seconds: float | None
    first_time: bool | None
    after_hours: bool
    recorded: bool
    campaign: str | None = None
    answered_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    hangup_party: str | None = None
    answered_by: str | None = None
    consent_announced: bool = False
    recording_opted_out: bool = False
    consent_prompt: str | None = None  # the recording notice played (its sound name)
    consent_at: dt.datetime | None = None  # when it was played
    restricted: bool = False  # the caller is on the account's restrict list
    visit_id: str | None = None  # the website visit that showed the number dialled
    attribution: str | None = None  # how sure: held, after or ambiguous
    score: int | None = None  # the lead score, once the call is transcribed and analysed
    tags: tuple[str, ...] = ()
    # what integrators added (AGI scripts, plugins); read with the call: `one` fills them
    labels: tuple[str, ...] = ()
    notes: tuple[tuple[str, str], ...] = ()  # (origin, text), oldest first
    score_adjustment: int = 0

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "account_id": self.account_id,
            "started_at": self.started_at.isoformat(),
            "dialled": self.dialled,
            "caller_number": self.caller_number,
            "caller_name": self.caller_name,
            "source": self.source,
            "medium": self.medium,
            "campaign": self.campaign,
            "route": self.route,
            "disposition": self.disposition,
            "ring_seconds": self.ring_seconds,
            "talk_seconds": self.talk_seconds,
            "first_time": self.first_time,
            "after_hours": self.after_hours,
            "recorded": self.recorded,
            "answered_at": self.answered_at.isoformat() if self.answered_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "hangup_party": self.hangup_party,
            "answered_by": self.answered_by,
            "consent_announced": self.consent_announced,
            "recording_opted_out": self.recording_opted_out,
            "consent_prompt": self.consent_prompt,
            "consent_at": self.consent_at.isoformat() if self.consent_at else None,
            "restricted": self.restricted,
            "visit_id": self.visit_id,
            "attribution": self.attribution,
            "score": self.score,
            "tags": list(self.tags),
            "labels": list(self.labels),
            "notes": [{"origin": origin, "text": text} for origin, text in self.notes],
            "score_adjustment": self.score_adjustment,
        }


def _query(principal: Principal, wanted: CallFilter) -> Select:
    query = (
        select(Call, Account.name, Recording.call_id, CallAnalysis.score, CallAnalysis.tags)
        .outerjoin(Account, Account.id == Call.account_id)
        .outerjoin(Recording, Recording.call_id == Call.id)
        .outerjoin(CallAnalysis, CallAnalysis.call_id == Call.id)
        .where(principal.where(Call.account_id))
    )
    if wanted.account_id is not None:
        query = query.where(Call.account_id == wanted.account_id)
    if wanted.since is not None:
        query = query.where(Call.started_at >= _midnight(wanted.since))
    if wanted.until is not None:
        query = query.where(Call.started_at < _midnight(wanted.until + dt.timedelta(days=1)))
    if wanted.disposition is not None:
        query = query.where(Call.disposition == wanted.disposition)
    if wanted.source is not None:
        query = query.where(Call.source_name == wanted.source)
    if wanted.number is not None:
        query = query.where(
            or_(
                Call.dialled.contains(wanted.number, autoescape=True),
                Call.caller_number.contains(wanted.number, autoescape=True),
            )
        )
    if wanted.search is not None:
        query = query.where(
            or_(
                Call.caller_name.contains(wanted.search, autoescape=True),
                Call.caller_number.contains(wanted.search, autoescape=True),
                Call.route_name.contains(wanted.search, autoescape=True),
            )
        )
    return query


def _may_see_analysis(principal: Principal) -> bool:
    """Score and tags come from what was said: for those who may read it."""
    return principal.can(Permission.RECORDINGS_READ)


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC)


def _row(
    call: Call,
    account: str | None,
    recorded: str | None,
    score: int | None = None,
    tags: str | None = None,
    *,
    analysed: bool = True,
) -> CallRow:
    return CallRow(
        id=call.id,
        account_id=call.account_id,
        account=account,
        started_at=call.started_at,
        dialled=call.dialled,
        caller_number=call.caller_number,
        caller_name=call.caller_name,
        source=call.source_name,
        medium=call.medium,
        campaign=call.campaign_name,
        route=call.route_name,
        disposition=call.disposition,
        ring_seconds=call.ring_seconds,
        talk_seconds=call.talk_seconds,
        first_time=call.first_time,
        after_hours=call.after_hours,
        recorded=recorded is not None,
        answered_at=call.answered_at,
        ended_at=call.ended_at,
        hangup_party=call.hangup_party,
        answered_by=call.answered_by,
        consent_announced=call.consent_announced,
        recording_opted_out=call.recording_opted_out,
        consent_prompt=call.consent_prompt,
        consent_at=call.consent_at,
        restricted=call.restricted,
        visit_id=call.visit_id,
        attribution=call.attribution,
        score=effective_score(score, call.score_adjustment) if analysed else None,
        tags=tuple(json.loads(tags)) if tags and analysed else (),
        score_adjustment=call.score_adjustment or 0,
    )


def encode_cursor(row: CallRow) -> str:
    raw = f"{row.started_at.astimezone(dt.UTC).isoformat()}|{row.id}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        moment, call_id = raw.split("|")
        started = dt.datetime.fromisoformat(moment)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadFilter("cursor: not a cursor this call log gave out") from None
    if not is_call_id(call_id) or started.tzinfo is None:
        raise BadFilter("cursor: not a cursor this call log gave out")
    return started, call_id


def page(
    session: Session,
    principal: Principal,
    wanted: CallFilter,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[CallRow], str | None]:
    """One page of calls and the cursor of the next page (None on the last one)."""
    limit = max(1, min(limit, PAGE_MAX))
    query = _query(principal, wanted)
    if cursor:
        started, call_id = decode_cursor(cursor)
        started = started.astimezone(dt.UTC)
        query = query.where(
            or_(Call.started_at < started, and_(Call.started_at == started, Call.id < call_id))
        )
    query = query.order_by(Call.started_at.desc(), Call.id.desc()).limit(limit + 1)
    rows = [_row(*found, analysed=_may_see_analysis(principal)) for found in session.execute(query)]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1]) if more and rows else None


def every(session: Session, principal: Principal, wanted: CallFilter) -> Iterator[CallRow]:
    """All matching calls, newest first, for an export."""
    query = _query(principal, wanted).order_by(Call.started_at.desc(), Call.id.desc())
    for found in session.execute(query.execution_options(yield_per=500)):
        yield _row(*found, analysed=_may_see_analysis(principal))


def one(session: Session, principal: Principal, call_id: str) -> CallRow | None:
    """A call the principal may see, or None (whether it exists elsewhere is not told)."""
    if not is_call_id(call_id):
        return None
    found = session.execute(_query(principal, CallFilter()).where(Call.id == call_id)).first()
    if not found:
        return None
    added = of_call(session, call_id)
    row = _row(*found, analysed=_may_see_analysis(principal))
    return dataclasses.replace(row, labels=added.tags, notes=added.notes)
